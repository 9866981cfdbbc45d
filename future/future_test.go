package future

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	errA = errors.New("a")
	errB = errors.New("b")
)

// mustPanic runs fn and returns what it panicked with; it fails the test if
// fn returns normally.
func mustPanic(t *testing.T, fn func()) (r any) {
	t.Helper()
	defer func() { r = recover() }()
	fn()
	t.Fatal("expected a panic")
	return nil
}

func TestCompleteFirstWins(t *testing.T) {
	type op struct {
		kind string // "resolve", "reject", "complete"
		v    int
		err  error
		want bool
	}
	tests := []struct {
		name    string
		ops     []op
		wantV   int
		wantErr error
	}{
		{"resolve", []op{{"resolve", 1, nil, true}}, 1, nil},
		{"reject", []op{{"reject", 0, errA, true}}, 0, errA},
		{"resolve then reject", []op{{"resolve", 1, nil, true}, {"reject", 0, errA, false}}, 1, nil},
		{"reject then resolve", []op{{"reject", 0, errA, true}, {"resolve", 2, nil, false}}, 0, errA},
		{"resolve twice", []op{{"resolve", 1, nil, true}, {"resolve", 2, nil, false}}, 1, nil},
		{"reject twice", []op{{"reject", 0, errA, true}, {"reject", 0, errB, false}}, 0, errA},
		{"complete ok", []op{{"complete", 3, nil, true}}, 3, nil},
		{"complete error drops value", []op{{"complete", 3, errA, true}}, 0, errA},
		{"complete after resolve", []op{{"resolve", 1, nil, true}, {"complete", 3, errA, false}}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, p := New[int]()
			if p.Future() != f {
				t.Fatal("Promise.Future is not the future from New")
			}
			for i, o := range tt.ops {
				var got bool
				switch o.kind {
				case "resolve":
					got = p.Resolve(o.v)
				case "reject":
					got = p.Reject(o.err)
				case "complete":
					got = p.Complete(o.v, o.err)
				}
				if got != o.want {
					t.Errorf("op %d %s = %v, want %v", i, o.kind, got, o.want)
				}
			}
			v, err, ok := f.Peek()
			if !ok || v != tt.wantV || err != tt.wantErr {
				t.Errorf("Peek = %v, %v, %v; want %v, %v, true", v, err, ok, tt.wantV, tt.wantErr)
			}
		})
	}
}

func TestConstructors(t *testing.T) {
	tests := []struct {
		name    string
		f       *Future[string]
		wantV   string
		wantErr error
	}{
		{"Resolved", Resolved("x"), "x", nil},
		{"Failed", Failed[string](errA), "", errA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.f.Ready() {
				t.Fatal("not ready")
			}
			select {
			case <-tt.f.Done():
			default:
				t.Fatal("Done not closed")
			}
			v, err := tt.f.Result(context.Background())
			if v != tt.wantV || err != tt.wantErr {
				t.Errorf("Result = %q, %v; want %q, %v", v, err, tt.wantV, tt.wantErr)
			}
		})
	}
}

func TestProgrammerErrorsPanic(t *testing.T) {
	tests := []struct {
		name string
		fn   func()
	}{
		{"Reject nil", func() { _, p := New[int](); p.Reject(nil) }},
		{"Failed nil", func() { Failed[int](nil) }},
		{"OnDone nil", func() { f, _ := New[int](); f.OnDone(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := mustPanic(t, tt.fn); r == nil {
				t.Fatal("nil panic value")
			}
		})
	}
}

func TestPendingState(t *testing.T) {
	f, p := New[int]()
	if f.Ready() {
		t.Fatal("new future is ready")
	}
	if v, err, ok := f.Peek(); ok || v != 0 || err != nil {
		t.Fatalf("Peek on pending = %v, %v, %v", v, err, ok)
	}
	d1, d2 := f.Done(), f.Done()
	if d1 != d2 {
		t.Fatal("Done returned different channels")
	}
	select {
	case <-d1:
		t.Fatal("Done closed while pending")
	default:
	}
	p.Resolve(7)
	<-d1 // must be closed now; a bug hangs here and the test times out
	if f.Done() != d1 {
		t.Fatal("Done changed after completion")
	}
	if !f.Ready() {
		t.Fatal("not ready after Resolve")
	}
}

// TestCompletionRace completes one future from many goroutines at once:
// exactly one call must win and the future must hold the winner's result.
func TestCompletionRace(t *testing.T) {
	const goroutines = 64
	for round := range 50 {
		f, p := New[int]()
		done := f.Done() // make sure the lazily created channel is part of the race
		var wins atomic.Int32
		var winner atomic.Int64
		var start, wg sync.WaitGroup
		start.Add(1)
		for g := range goroutines {
			wg.Go(func() {
				start.Wait()
				var won bool
				if g%2 == 0 {
					won = p.Resolve(g)
				} else {
					won = p.Reject(fmt.Errorf("g%d", g))
				}
				if won {
					wins.Add(1)
					winner.Store(int64(g))
				}
			})
		}
		start.Done()
		wg.Wait()
		<-done
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d winners, want 1", round, n)
		}
		g := int(winner.Load())
		v, err, _ := f.Peek()
		if g%2 == 0 && (v != g || err != nil) {
			t.Fatalf("round %d: winner %d resolved but future holds %v, %v", round, g, v, err)
		}
		if g%2 == 1 && (v != 0 || err == nil || err.Error() != fmt.Sprintf("g%d", g)) {
			t.Fatalf("round %d: winner %d rejected but future holds %v, %v", round, g, v, err)
		}
	}
}

// TestOnDoneConcurrentWithCompletion adds callbacks while the future is being
// completed; every callback must run exactly once, with the final result.
func TestOnDoneConcurrentWithCompletion(t *testing.T) {
	const adders, perAdder = 16, 50
	for round := range 20 {
		f, p := New[int]()
		var counts [adders * perAdder]atomic.Int32
		var bad atomic.Int32
		var start, wg sync.WaitGroup
		start.Add(1)
		for a := range adders {
			wg.Go(func() {
				start.Wait()
				for i := range perAdder {
					c := &counts[a*perAdder+i]
					f.OnDone(func(v int, err error) {
						if v != 42 || err != nil {
							bad.Add(1)
						}
						c.Add(1)
					})
				}
			})
		}
		wg.Go(func() {
			start.Wait()
			p.Resolve(42)
		})
		start.Done()
		wg.Wait()
		for i := range counts {
			if n := counts[i].Load(); n != 1 {
				t.Fatalf("round %d: callback %d ran %d times", round, i, n)
			}
		}
		if bad.Load() != 0 {
			t.Fatalf("round %d: %d callbacks saw a wrong result", round, bad.Load())
		}
	}
}

func TestOnDoneWhereAndOrder(t *testing.T) {
	t.Run("pending: on completer, in order, after Done", func(t *testing.T) {
		f, p := New[int]()
		done := f.Done()
		var order []int
		for i := range 3 {
			f.OnDone(func(int, error) {
				select {
				case <-done:
				default:
					t.Error("callback ran before Done was closed")
				}
				order = append(order, i) // no lock: must run on this goroutine
			})
		}
		if len(order) != 0 {
			t.Fatal("callback ran before completion")
		}
		p.Resolve(1)
		if fmt.Sprint(order) != "[0 1 2]" {
			t.Fatalf("order = %v, want [0 1 2] before Resolve returns", order)
		}
	})
	t.Run("complete: on caller, before OnDone returns", func(t *testing.T) {
		f := Failed[int](errA)
		var got error
		f.OnDone(func(_ int, err error) { got = err })
		if got != errA {
			t.Fatalf("callback result = %v, want %v before OnDone returns", got, errA)
		}
	})
	t.Run("OnDone inside a callback of the same future", func(t *testing.T) {
		f, p := New[int]()
		var inner int
		f.OnDone(func(int, error) { f.OnDone(func(v int, _ error) { inner = v }) })
		p.Resolve(5)
		if inner != 5 {
			t.Fatalf("inner callback got %d, want 5", inner)
		}
	})
}

func TestOnDonePanic(t *testing.T) {
	boom := errors.New("boom")
	t.Run("pending", func(t *testing.T) {
		f, p := New[int]()
		var ran []string
		f.OnDone(func(int, error) { ran = append(ran, "first") })
		f.OnDone(func(int, error) { panic(boom) })
		f.OnDone(func(int, error) { panic("second panic") })
		f.OnDone(func(int, error) { ran = append(ran, "last") })
		r := mustPanic(t, func() { p.Resolve(3) })
		pe, ok := r.(*PanicError)
		if !ok {
			t.Fatalf("panic value %T, want *PanicError", r)
		}
		if !errors.Is(pe, boom) || pe.Value != boom {
			t.Errorf("PanicError value %v, want the first panic %v", pe.Value, boom)
		}
		if !strings.Contains(string(pe.Stack), "TestOnDonePanic") {
			t.Errorf("stack does not show the panicking callback:\n%s", pe.Stack)
		}
		if fmt.Sprint(ran) != "[first last]" {
			t.Errorf("callbacks run = %v, want [first last]", ran)
		}
		if v, err, ok := f.Peek(); !ok || v != 3 || err != nil {
			t.Errorf("future after panic = %v, %v, %v; want 3, nil, true", v, err, ok)
		}
		if p.Resolve(4) {
			t.Error("future completed twice after a callback panic")
		}
		var late int
		f.OnDone(func(v int, _ error) { late = v })
		if late != 3 {
			t.Errorf("late callback got %d, want 3", late)
		}
	})
	t.Run("complete", func(t *testing.T) {
		f := Resolved(1)
		r := mustPanic(t, func() { f.OnDone(func(int, error) { panic("late") }) })
		if pe, ok := r.(*PanicError); !ok || pe.Value != "late" {
			t.Fatalf("panic value %#v, want *PanicError{Value: late}", r)
		}
		if !f.Ready() {
			t.Fatal("future broken by a panicking callback")
		}
	})
}

func TestResult(t *testing.T) {
	cause := errors.New("operator gave up")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	withCause, cancelCause := context.WithCancelCause(context.Background())
	cancelCause(cause)

	tests := []struct {
		name     string
		f        *Future[int]
		ctx      context.Context
		wantV    int
		wantErrs []error // each must match errors.Is; nil means success
	}{
		{"done wins over cancelled ctx", Resolved(1), cancelled, 1, nil},
		{"failed future", Failed[int](errA), context.Background(), 0, []error{errA}},
		{"pending, ctx cancelled", pending(), cancelled, 0, []error{ErrNotDone, context.Canceled}},
		{"pending, ctx cancelled with cause", pending(), withCause, 0, []error{ErrNotDone, context.Canceled, cause}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.f.Result(tt.ctx)
			if v != tt.wantV {
				t.Errorf("value = %d, want %d", v, tt.wantV)
			}
			if tt.wantErrs == nil && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want errors.Is %v", err, want)
				}
			}
		})
	}
}

func pending() *Future[int] { f, _ := New[int](); return f }

func TestResultDoesNotAffectFuture(t *testing.T) {
	f, p := New[int]()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Result(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if f.Ready() {
		t.Fatal("abandoned wait completed the future")
	}
	p.Resolve(9)
	if v, err := f.Result(context.Background()); v != 9 || err != nil {
		t.Fatalf("Result = %v, %v; want 9, nil", v, err)
	}
}

func TestResultWaits(t *testing.T) {
	f, p := New[string]()
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		<-release
		p.Resolve("ok")
	})
	got := make(chan string)
	go func() {
		v, _ := f.Result(context.Background())
		got <- v
	}()
	close(release)
	if v := <-got; v != "ok" {
		t.Fatalf("Result = %q", v)
	}
	wg.Wait()
}

func TestResultTimeout(t *testing.T) {
	tests := []struct {
		name     string
		f        *Future[int]
		wantV    int
		wantErrs []error
	}{
		{"done", Resolved(2), 2, nil},
		{"pending", pending(), 0, []error{ErrNotDone, context.DeadlineExceeded}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tt.f.ResultTimeout(time.Millisecond)
			if v != tt.wantV || (tt.wantErrs == nil) != (err == nil) {
				t.Fatalf("ResultTimeout = %v, %v", v, err)
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want errors.Is %v", err, want)
				}
			}
		})
	}
}

func TestGo(t *testing.T) {
	boom := errors.New("boom")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name      string
		ctx       context.Context
		fn        func(context.Context) (int, error)
		wantV     int
		wantErr   error // errors.Is
		wantPanic any   // non-nil: want a *PanicError with this Value
		wantRun   bool
	}{
		{"value", context.Background(), func(context.Context) (int, error) { return 4, nil }, 4, nil, nil, true},
		{"error", context.Background(), func(context.Context) (int, error) { return 4, errA }, 0, errA, nil, true},
		{"panic value", context.Background(), func(context.Context) (int, error) { panic("kaput") }, 0, nil, "kaput", true},
		{"panic error", context.Background(), func(context.Context) (int, error) { panic(boom) }, 0, boom, boom, true},
		{"ctx already done", cancelled, func(context.Context) (int, error) { return 1, nil }, 0, context.Canceled, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ran atomic.Bool
			f := Go(tt.ctx, func(ctx context.Context) (int, error) {
				ran.Store(true)
				return tt.fn(ctx)
			})
			v, err := f.Result(context.Background())
			if ran.Load() != tt.wantRun {
				t.Errorf("fn ran = %v, want %v", ran.Load(), tt.wantRun)
			}
			if v != tt.wantV {
				t.Errorf("value = %d, want %d", v, tt.wantV)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.wantErr)
			}
			if tt.wantPanic == nil {
				if tt.wantErr == nil && err != nil {
					t.Errorf("err = %v, want nil", err)
				}
				return
			}
			var pe *PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v, want *PanicError", err)
			}
			if pe.Value != tt.wantPanic {
				t.Errorf("panic value = %v, want %v", pe.Value, tt.wantPanic)
			}
			if !strings.Contains(string(pe.Stack), "TestGo") {
				t.Errorf("stack does not show the panicking function:\n%s", pe.Stack)
			}
			if !strings.Contains(pe.Error(), fmt.Sprint(tt.wantPanic)) {
				t.Errorf("Error() = %q lacks the panic value", pe.Error())
			}
		})
	}
}

func TestGoPassesContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	f := Go(ctx, func(ctx context.Context) (int, error) {
		close(started)
		<-ctx.Done()
		return 0, ctx.Err()
	})
	<-started
	cancel()
	if _, err := f.Result(context.Background()); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// TestPendingFutureMemory holds the design target: a pending future costs
// under 200 bytes, including one callback (how the monitor and the
// combinators attach) and, for pointer results, a Done channel created by a
// waiter.
func TestPendingFutureMemory(t *testing.T) {
	type big struct{ a, b [64]byte }
	tests := []struct {
		name string
		make func() any
		max  float64
	}{
		{"New[int]", func() any { f, _ := New[int](); return f }, 64},
		{"New[int] + OnDone", func() any { f, _ := New[int](); f.OnDone(noopInt); return f }, 80},
		{"New[string] + OnDone", func() any { f, _ := New[string](); f.OnDone(noopString); return f }, 96},
		{"New[*big] + OnDone + Done", func() any {
			f, _ := New[*big]()
			f.OnDone(func(*big, error) {})
			f.Done()
			return f
		}, 199},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const n = 10_000
			keep := make([]any, n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range keep {
				keep[i] = tt.make()
			}
			runtime.ReadMemStats(&after)
			per := float64(after.TotalAlloc-before.TotalAlloc) / n
			t.Logf("%s: %.1f bytes per pending future", tt.name, per)
			// The runtime allocates a little on its own: allow 4 bytes of noise.
			if per > tt.max+4 {
				t.Errorf("%.1f bytes per pending future, want <= %.0f", per, tt.max)
			}
			runtime.KeepAlive(keep)
		})
	}
}

func noopInt(int, error)       {}
func noopString(string, error) {}
