package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/retry"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var errTransient = errors.New("connection reset (test)")

// faulty wraps a real driver and fails Apply as told.
type faulty struct {
	store.Driver
	applies    atomic.Int32
	failBefore atomic.Int32 // fail this many Applies without writing
	failAfter  atomic.Int32 // write, then report a failure this many times
	failGet    atomic.Int32
	creates    atomic.Bool // count and fail creations too (else they pass untouched)
	err        error
}

func (f *faulty) Apply(ctx context.Context, b *store.Batch) error {
	if b.Create != nil && !f.creates.Load() {
		return f.Driver.Apply(ctx, b)
	}
	f.applies.Add(1)
	if f.failBefore.Load() > 0 {
		f.failBefore.Add(-1)
		return f.err
	}
	if err := f.Driver.Apply(ctx, b); err != nil {
		return err
	}
	if f.failAfter.Load() > 0 {
		f.failAfter.Add(-1)
		return f.err // the commit happened; the answer was lost
	}
	return nil
}

func (f *faulty) GetRun(ctx context.Context, id string) (store.RunRow, error) {
	if f.failGet.Load() > 0 {
		f.failGet.Add(-1)
		return store.RunRow{}, f.err
	}
	return f.Driver.GetRun(ctx, id)
}

func (f *faulty) Retryable(err error) bool {
	return errors.Is(err, errTransient) || f.Driver.Retryable(err)
}

// sleeps records the waits between retries without waiting.
type sleeps struct{ d []time.Duration }

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.d = append(s.d, d)
	return ctx.Err()
}

var policy = retry.Policy{MaxAttempts: 4, Initial: 10 * time.Millisecond, Max: time.Second, Multiplier: 2}

func setup(t *testing.T) (*faulty, *store.DB, *store.Run, *sleeps) {
	t.Helper()
	d, err := sqlite.NewDriver(filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	f := &faulty{Driver: d, err: errTransient}
	s := &sleeps{}
	db, err := store.New(context.Background(), f, store.WithRetryPolicy(policy), store.WithRetrySleep(s.sleep))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	run, err := db.Create(context.Background(), store.NewRun{ID: "r", Flow: "f"})
	if err != nil {
		t.Fatal(err)
	}
	return f, db, run, s
}

func state(t *testing.T, run *store.Run, atom string) flow.State {
	t.Helper()
	snap, err := run.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap.Atoms[atom].State
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	running := engine.AtomRecord{Name: "a", State: flow.StateRunning}

	t.Run("transient failures are retried with backoff", func(t *testing.T) {
		f, _, run, s := setup(t)
		f.failBefore.Store(2)
		if err := run.SaveAtom(ctx, flow.StatePending, running); err != nil {
			t.Fatal(err)
		}
		if f.applies.Load() != 3 || len(s.d) != 2 || s.d[0] != 10*time.Millisecond || s.d[1] != 20*time.Millisecond {
			t.Fatalf("%d applies, waits %v", f.applies.Load(), s.d)
		}
		if state(t, run, "a") != flow.StateRunning {
			t.Fatal("not written")
		}
	})

	t.Run("bounded, then a typed error, then the handle stays stopped", func(t *testing.T) {
		f, _, run, s := setup(t)
		f.failBefore.Store(1000)
		err := run.SaveAtom(ctx, flow.StatePending, running)
		var ue *store.UnavailableError
		if !errors.As(err, &ue) || !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, errTransient) ||
			ue.Attempts != policy.MaxAttempts || ue.Run != "r" || ue.Op != "save" {
			t.Fatalf("err = %v", err)
		}
		if f.applies.Load() != int32(policy.MaxAttempts) || len(s.d) != policy.MaxAttempts-1 {
			t.Fatalf("%d applies, %d waits", f.applies.Load(), len(s.d))
		}
		f.failBefore.Store(0)
		if err2 := run.SaveAtom(ctx, flow.StatePending, running); !errors.Is(err2, store.ErrUnavailable) {
			t.Fatalf("next write = %v, want the same unavailable error", err2)
		}
		if f.applies.Load() != int32(policy.MaxAttempts) {
			t.Fatal("a stopped handle wrote again")
		}
	})

	t.Run("a lost answer to a commit that happened is not a conflict", func(t *testing.T) {
		f, _, run, _ := setup(t)
		f.failAfter.Store(1)
		if err := run.SaveAtom(ctx, flow.StatePending, running); err != nil {
			t.Fatalf("SaveAtom = %v", err)
		}
		if f.applies.Load() != 2 {
			t.Fatalf("%d applies", f.applies.Load())
		}
		// The handle's sequence followed the commit: the next write works.
		if err := run.SaveAtom(ctx, flow.StateRunning, engine.AtomRecord{Name: "a", State: flow.StateSuccess}); err != nil {
			t.Fatal(err)
		}
		if state(t, run, "a") != flow.StateSuccess {
			t.Fatal("not written")
		}
	})

	t.Run("a lost answer to a creation that happened is no ErrExists", func(t *testing.T) {
		f, db, _, _ := setup(t)
		f.creates.Store(true)
		f.failAfter.Store(1)
		run, err := db.Create(ctx, store.NewRun{ID: "c", Flow: "f"})
		if err != nil {
			t.Fatalf("Create = %v", err)
		}
		if f.applies.Load() != 2 {
			t.Fatalf("%d applies", f.applies.Load())
		}
		if err := run.SaveAtom(ctx, flow.StatePending, running); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a lost answer to a creation, then a failed read of it, is no ErrExists", func(t *testing.T) {
		f, db, _, _ := setup(t)
		f.creates.Store(true)
		f.failAfter.Store(1)
		f.failGet.Store(1) // the look at whose run it is fails once
		if _, err := db.Create(ctx, store.NewRun{ID: "c", Flow: "f"}); err != nil {
			t.Fatalf("Create = %v, want the run it created", err)
		}
		if f.applies.Load() != 3 {
			t.Fatalf("%d applies, want 3: the lost one, one refused while the read failed, one that found it", f.applies.Load())
		}
	})

	t.Run("a taken id is ErrExists after a failed attempt too", func(t *testing.T) {
		f, db, _, _ := setup(t)
		f.creates.Store(true)
		f.failBefore.Store(1)
		if _, err := db.Create(ctx, store.NewRun{ID: "r", Flow: "f", Owner: "another"}); !errors.Is(err, store.ErrExists) {
			t.Fatalf("Create = %v, want ErrExists", err)
		}
		if f.applies.Load() != 2 {
			t.Fatalf("%d applies", f.applies.Load())
		}
	})

	t.Run("errors no retry can fix stop at once", func(t *testing.T) {
		f, _, run, s := setup(t)
		f.err = errors.New("syntax error (test)")
		f.failBefore.Store(5)
		err := run.SaveAtom(ctx, flow.StatePending, running)
		if !errors.Is(err, f.err) || errors.Is(err, store.ErrUnavailable) || f.applies.Load() != 1 || len(s.d) != 0 {
			t.Fatalf("err = %v after %d applies", err, f.applies.Load())
		}
	})

	t.Run("a cancelled context ends the retries", func(t *testing.T) {
		f, _, run, _ := setup(t)
		f.failBefore.Store(1000)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := run.SaveAtom(cctx, flow.StatePending, running)
		if !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.Canceled) || f.applies.Load() > 1 {
			t.Fatalf("err = %v after %d applies", err, f.applies.Load())
		}
	})

	t.Run("reads are retried", func(t *testing.T) {
		f, db, _, s := setup(t)
		f.failGet.Store(2)
		if _, err := db.Get(ctx, "r"); err != nil || len(s.d) != 2 {
			t.Fatalf("Get = %v after %d waits", err, len(s.d))
		}
	})

	t.Run("closed", func(t *testing.T) {
		_, db, run, _ := setup(t)
		db.Close()
		if err := run.SaveAtom(ctx, flow.StatePending, running); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("SaveAtom after Close = %v", err)
		}
		if _, err := db.Get(ctx, "r"); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Get after Close = %v", err)
		}
	})
}

func TestParseMigrations(t *testing.T) {
	ok := fstest.MapFS{"0001_a.sql": {Data: []byte("A")}, "0002_b.sql": {Data: []byte("B")}}
	ms, err := store.ParseMigrations(ok)
	if err != nil || len(ms) != 2 || ms[1].Version != 2 || ms[1].SQL != "B" || ms[0].Name != "0001_a.sql" {
		t.Fatalf("%+v %v", ms, err)
	}
	bad := map[string]fstest.MapFS{
		"gap":       {"0001_a.sql": {}, "0003_c.sql": {}},
		"no number": {"init.sql": {}},
		"zero":      {"0000_a.sql": {}},
		"not sql":   {"0001_a.txt": {}},
		"duplicate": {"0001_a.sql": {}, "0001_b.sql": {}},
		"directory": {"0001_a.sql/x": {}},
	}
	for name, fsys := range bad {
		t.Run(name, func(t *testing.T) {
			if _, err := store.ParseMigrations(fsys); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestSecretKey(t *testing.T) {
	tests := map[string]bool{
		"password": true, "adminPass": true, "X-Auth-Token": true, "application_credential_secret": true,
		"db_password": true, "passwd": true, "private_key": true, "Passphrase": true, "token": true,
		"id": false, "name": false, "key_name": false, "tokens_used": false, "secretary": false, "": false,
	}
	for key, want := range tests {
		if got := store.SecretKey(key); got != want {
			t.Errorf("SecretKey(%q) = %v, want %v", key, got, want)
		}
	}
}

// The write hook sees each stage of each write, in order, and AfterWrite
// only for a write that committed.
func TestWriteHook(t *testing.T) {
	ctx := context.Background()
	var stages []store.WriteStage
	d, err := sqlite.NewDriver(filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.New(ctx, d, store.WithWriteHook(func(s store.WriteStage) { stages = append(stages, s) }))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	run, err := db.Create(ctx, store.NewRun{ID: "h", Flow: "f"})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.SaveFlow(ctx, flow.StatePending, flow.StateRunning); err != nil {
		t.Fatal(err)
	}
	if err := run.SaveFlow(ctx, flow.StatePending, flow.StateRunning); !errors.Is(err, engine.ErrConflict) {
		t.Fatal(err)
	}
	want := []store.WriteStage{store.BeforeWrite, store.InsideWrite, store.AfterWrite, store.BeforeWrite}
	if fmt.Sprint(stages) != fmt.Sprint(want) {
		t.Fatalf("stages %v, want %v", stages, want)
	}
}

// A database that stays down stops the engine with a typed error after
// bounded retries; nothing more is recorded, and the run resumes once the
// database is back.
func TestEngineStopsOnStorageFailureAndResumes(t *testing.T) {
	ctx := context.Background()
	f, db, run, _ := setup(t)
	ran := map[string]int{}
	task := func(name string) flow.Task {
		return flow.TaskFunc(name, func(context.Context, flow.Inputs) (string, error) {
			ran[name]++
			if name == "a" && ran[name] == 1 {
				f.failBefore.Store(1000) // the database goes away while a runs
			}
			return name, nil
		})
	}
	fl := flow.Linear("l", task("a"), task("b"))
	e, err := engine.New(fl, engine.WithStorage(run))
	if err != nil {
		t.Fatal(err)
	}
	err = e.Run(ctx)
	var fe *engine.FlowError
	if !errors.As(err, &fe) || !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, engine.ErrStorage) {
		t.Fatalf("Run = %v, want a *FlowError with the store's unavailable error", err)
	}
	if n := f.applies.Load(); n > int32(1+policy.MaxAttempts) {
		t.Fatalf("%d writes: the engine kept writing after the store failed", n)
	}
	info, err := db.Get(ctx, "r")
	if err != nil || info.State != flow.StateRunning {
		t.Fatalf("recorded flow state %v (%v), want RUNNING: resumable", info.State, err)
	}
	f.failBefore.Store(0)
	again, err := db.Acquire(ctx, "r", "")
	if err != nil {
		t.Fatal(err)
	}
	e, _ = engine.New(fl, engine.WithStorage(again))
	if err := e.Run(ctx); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if ran["a"] != 2 || ran["b"] != 1 {
		t.Fatalf("ran %v: a's SUCCESS was never recorded, so a runs again; b once", ran)
	}
}
