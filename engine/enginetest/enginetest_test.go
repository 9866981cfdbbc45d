package enginetest_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/engine/enginetest"
	"github.com/ostask/ostask/flow"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// CrashStore keeps the save that crashes it and refuses everything after,
// and counts the executions and reverts that were recorded.
func TestCrashStore(t *testing.T) {
	ctx := context.Background()
	mem := engine.NewMemory()
	cs := enginetest.NewCrashStore(mem)
	cs.CrashAfter(3, false)
	f := flow.Linear("l", enginetest.Step("a", nil), enginetest.Step("b", nil))
	e, err := engine.New(f, engine.WithStorage(cs))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Run(ctx); !errors.Is(err, enginetest.ErrCrashed) {
		t.Fatal(err)
	}
	if !cs.Crashed() {
		t.Fatal("not crashed")
	}
	want := []string{"values", ":PENDING>RUNNING", "a:PENDING>RUNNING"}
	if got := cs.Saves(); !slices.Equal(got, want) {
		t.Fatal(got)
	}
	snap, err := mem.Load(ctx)
	if err != nil || snap.Atoms["a"].State != flow.StateRunning || len(snap.Atoms) != 1 {
		t.Fatalf("%+v %v", snap, err)
	}
	if _, err := cs.Load(ctx); !errors.Is(err, enginetest.ErrCrashed) {
		t.Fatal(err)
	}

	// A new engine on what was recorded finishes the run; the wrapper counts.
	rs := enginetest.NewCrashStore(cs.Inner())
	e, _ = engine.New(f, engine.WithStorage(rs))
	if err := e.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rs.Executions(), rs.Reverts()); got != "map[a:1 b:1] map[]" {
		t.Fatal(got)
	}
}

// forgetful is a broken Storage: it does not keep retry decisions.
type forgetful struct{ *engine.Memory }

func (f forgetful) SaveAtom(ctx context.Context, from flow.State, rec engine.AtomRecord) error {
	rec.Decision = 0
	return f.Memory.SaveAtom(ctx, from, rec)
}

// failed runs check with a testing.TB that records its first failure.
func failed(check func(t testing.TB)) (msg string) {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r)
	}()
	<-done
	return r.msg
}

type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (r *recorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

// The checks pass on a Storage that keeps what it is given, and catch one
// that loses part of it.
func TestChecksCatchABrokenStorage(t *testing.T) {
	var times enginetest.Case
	for _, c := range enginetest.Cases() {
		if c.Name == "times third attempt/serial" {
			times = c
		}
	}
	good := func() engine.Storage { return engine.NewMemory() }
	bad := func() engine.Storage { return forgetful{engine.NewMemory()} }
	checks := map[string]func(t testing.TB, newStorage func() engine.Storage){
		"crash at every save": func(t testing.TB, s func() engine.Storage) { enginetest.CrashAtEverySave(t, times, s) },
		"crash every save":    func(t testing.TB, s func() engine.Storage) { enginetest.CrashEvery(t, times, 1, s) },
	}
	for name, check := range checks {
		t.Run(name, func(t *testing.T) {
			if msg := failed(func(t testing.TB) { check(t, good) }); msg != "" {
				t.Fatalf("a good storage fails: %s", msg)
			}
			if msg := failed(func(t testing.TB) { check(t, bad) }); !strings.Contains(msg, "crash") {
				t.Fatal("a storage losing decisions passes")
			}
		})
	}
}
