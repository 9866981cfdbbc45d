package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/retry"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/postgres"
	"github.com/ostask/ostask/store/postgres/pgtest"
)

// proxy stands between the store and the server on loopback; stopping it
// is the server going away, starting it again is the server back.
type proxy struct {
	t        *testing.T
	addr     string
	upstream string
	mu       sync.Mutex
	ln       net.Listener
	conns    map[net.Conn]bool
	wg       sync.WaitGroup
}

func newProxy(t *testing.T, upstream string) *proxy {
	p := &proxy{t: t, upstream: upstream, conns: map[net.Conn]bool{}}
	p.start("127.0.0.1:0")
	t.Cleanup(func() {
		p.stop()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) start(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
				p.wg.Add(1)
				go func() {
					defer p.wg.Done()
					io.Copy(pair[0], pair[1])
					pair[0].Close()
					pair[1].Close()
				}()
			}
		}
	}()
}

// stop refuses new connections and breaks the open ones.
func (p *proxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *proxy) restart() { p.start(p.addr) }

func proxied(t *testing.T, p *proxy, base string) string {
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.addr
	return u.String()
}

var fastPolicy = retry.Policy{MaxAttempts: 5, Initial: time.Millisecond, Max: time.Millisecond, Multiplier: 1}

func TestServerGoneAndBack(t *testing.T) {
	ctx := context.Background()
	base, schema := pgtest.Schema(t)
	u, _ := url.Parse(base)
	p := newProxy(t, u.Host)
	waits, restartAt := 0, 0
	sleep := func(ctx context.Context, d time.Duration) error {
		waits++
		if waits == restartAt {
			p.restart()
		}
		return nil
	}
	db, err := postgres.Open(ctx, proxied(t, p, base), []postgres.Option{postgres.WithSchema(schema)},
		store.WithRetryPolicy(fastPolicy), store.WithRetrySleep(sleep))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	run, err := db.Create(ctx, store.NewRun{ID: "gone", Flow: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.SaveAtom(ctx, flow.StatePending, engine.AtomRecord{Name: "a", State: flow.StateRunning}); err != nil {
		t.Fatal(err)
	}

	t.Run("restart mid-flow", func(t *testing.T) {
		p.stop()
		waits, restartAt = 0, 3
		err := run.SaveAtom(ctx, flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess, Result: "r"})
		if err != nil || waits != 3 {
			t.Fatalf("SaveAtom = %v after %d waits", err, waits)
		}
	})

	t.Run("gone for good", func(t *testing.T) {
		p.stop()
		waits, restartAt = 0, -1
		err := run.SaveFlow(ctx, flow.StatePending, flow.StateRunning)
		var ue *store.UnavailableError
		if !errors.As(err, &ue) || ue.Attempts != fastPolicy.MaxAttempts || ue.Run != "gone" {
			t.Fatalf("SaveFlow = %v, want an *UnavailableError after %d attempts", err, fastPolicy.MaxAttempts)
		}
		// Back again: the run resumes from what was recorded.
		p.restart()
		r, err := db.Acquire(ctx, "gone", "")
		if err != nil {
			t.Fatal(err)
		}
		snap, err := r.Load(ctx)
		if err != nil || snap.Flow != flow.StatePending || snap.Atoms["a"].State != flow.StateSuccess {
			t.Fatalf("resumed snapshot %+v %v", snap, err)
		}
	})
}

// The server ends our sessions (as a restart or an administrator does):
// the next write retries on a new connection.
func TestSessionsTerminated(t *testing.T) {
	ctx := context.Background()
	base, schema := pgtest.Schema(t)
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("application_name", schema)
	u.RawQuery = q.Encode()
	waits := 0
	db, err := postgres.Open(ctx, u.String(), []postgres.Option{postgres.WithSchema(schema)},
		store.WithRetryPolicy(fastPolicy), store.WithRetrySleep(func(context.Context, time.Duration) error { waits++; return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	run, err := db.Create(ctx, store.NewRun{ID: "term", Flow: "f"})
	if err != nil {
		t.Fatal(err)
	}
	var killed int
	// Run on a separate connection: the pool's own would kill itself.
	other, err := postgres.NewDriver(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Pool().QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", schema).Scan(&killed); err != nil {
		t.Fatal(err)
	}
	if killed == 0 {
		t.Fatal("no session to end")
	}
	if err := run.SaveFlow(ctx, flow.StatePending, flow.StateRunning); err != nil {
		t.Fatalf("SaveFlow after the sessions ended: %v", err)
	}
	if waits == 0 {
		t.Fatal("the write did not meet the ended session")
	}
}
