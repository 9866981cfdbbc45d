package future

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
)

func TestThen(t *testing.T) {
	boom := errors.New("boom")
	type setup struct {
		src     *Future[int]
		resolve func() // completes src after Then is called (may be nil)
		ctx     context.Context
		cancel  func() // called after Then and before resolve (may be nil)
		next    func(context.Context, int) *Future[string]
	}
	itoa := func(_ context.Context, v int) *Future[string] { return Resolved(strconv.Itoa(v)) }
	tests := []struct {
		name     string
		setup    func() setup
		wantV    string
		wantErrs []error
		wantCall bool
	}{
		{"success", func() setup {
			return setup{src: Resolved(7), ctx: context.Background(), next: itoa}
		}, "7", nil, true},
		{"source completes later", func() setup {
			f, p := New[int]()
			return setup{src: f, resolve: func() { p.Resolve(8) }, ctx: context.Background(), next: itoa}
		}, "8", nil, true},
		{"source error short-circuits", func() setup {
			return setup{src: Failed[int](errA), ctx: context.Background(), next: itoa}
		}, "", []error{errA}, false},
		{"step fails", func() setup {
			return setup{src: Resolved(1), ctx: context.Background(),
				next: func(context.Context, int) *Future[string] { return Failed[string](errB) }}
		}, "", []error{errB}, true},
		{"step panics", func() setup {
			return setup{src: Resolved(1), ctx: context.Background(),
				next: func(context.Context, int) *Future[string] { panic(boom) }}
		}, "", []error{boom}, true},
		{"step returns nil", func() setup {
			return setup{src: Resolved(1), ctx: context.Background(),
				next: func(context.Context, int) *Future[string] { return nil }}
		}, "", []error{ErrNilFuture}, true},
		{"ctx already done", func() setup {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return setup{src: Resolved(1), ctx: ctx, next: itoa}
		}, "", []error{context.Canceled}, false},
		{"ctx cancelled before source completes: next step not started", func() setup {
			f, p := New[int]()
			ctx, cancel := context.WithCancel(context.Background())
			return setup{src: f, resolve: func() { p.Resolve(1) }, ctx: ctx, cancel: cancel, next: itoa}
		}, "", []error{context.Canceled}, false},
		{"ctx cancelled while step pending", func() setup {
			ctx, cancel := context.WithCancel(context.Background())
			return setup{src: Resolved(1), ctx: ctx, cancel: cancel,
				next: func(context.Context, int) *Future[string] { f, _ := New[string](); return f }}
		}, "", []error{context.Canceled}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.setup()
			var called atomic.Bool
			stepStarted := make(chan struct{})
			out := Then(s.ctx, s.src, func(ctx context.Context, v int) *Future[string] {
				called.Store(true)
				defer close(stepStarted)
				return s.next(ctx, v)
			})
			if tt.wantCall && s.cancel != nil && s.resolve == nil {
				<-stepStarted // cancel while the step's future is pending
			}
			if s.cancel != nil {
				s.cancel()
			}
			if s.resolve != nil {
				s.resolve()
			}
			v, err := out.Result(context.Background())
			if v != tt.wantV {
				t.Errorf("value = %q, want %q", v, tt.wantV)
			}
			if tt.wantErrs == nil && err != nil {
				t.Errorf("err = %v, want nil", err)
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want errors.Is %v", err, want)
				}
			}
			if tt.wantCall {
				<-stepStarted // the step ran (and its goroutine ends)
			}
			if called.Load() != tt.wantCall {
				t.Errorf("step called = %v, want %v", called.Load(), tt.wantCall)
			}
		})
	}
}

func TestThenChain(t *testing.T) {
	ctx := context.Background()
	add := func(n int) func(context.Context, int) *Future[int] {
		return func(ctx context.Context, v int) *Future[int] {
			return Go(ctx, func(context.Context) (int, error) { return v + n, nil })
		}
	}
	f := Then(ctx, Then(ctx, Then(ctx, Resolved(1), add(1)), add(10)), add(100))
	if v, err := f.Result(ctx); v != 112 || err != nil {
		t.Fatalf("chain = %v, %v; want 112, nil", v, err)
	}
}

func TestMap(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name     string
		src      *Future[int]
		fn       func(int) (string, error)
		wantV    string
		wantErr  error
		wantCall bool
	}{
		{"success", Resolved(3), func(v int) (string, error) { return strconv.Itoa(v), nil }, "3", nil, true},
		{"source error", Failed[int](errA), func(v int) (string, error) { return "x", nil }, "", errA, false},
		{"fn error", Resolved(3), func(int) (string, error) { return "ignored", errB }, "", errB, true},
		{"fn panic", Resolved(3), func(int) (string, error) { panic(boom) }, "", boom, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			out := Map(tt.src, func(v int) (string, error) { called = true; return tt.fn(v) })
			v, err, ok := out.Peek() // source is complete: Map ran synchronously
			if !ok {
				t.Fatal("Map of a complete future is pending")
			}
			if v != tt.wantV || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Map = %q, %v; want %q, %v", v, err, tt.wantV, tt.wantErr)
			}
			if called != tt.wantCall {
				t.Errorf("fn called = %v, want %v", called, tt.wantCall)
			}
		})
	}
	t.Run("pending source", func(t *testing.T) {
		f, p := New[int]()
		out := Map(f, func(v int) (int, error) { return v * 2, nil })
		if out.Ready() {
			t.Fatal("ready before source")
		}
		p.Resolve(21)
		if v, err, ok := out.Peek(); !ok || v != 42 || err != nil {
			t.Fatalf("Map = %v, %v, %v", v, err, ok)
		}
	})
}

// completion describes how a test completes input i: with a value or error.
type completion struct {
	i   int
	v   int
	err error
}

func TestAll(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		steps     []completion
		wantReady int // out must be complete right after this step (-1: at the end)
		wantV     []int
		wantErr   error
	}{
		{"empty", 0, nil, -1, []int{}, nil},
		{"in order", 3, []completion{{0, 10, nil}, {1, 11, nil}, {2, 12, nil}}, 2, []int{10, 11, 12}, nil},
		{"reverse completion keeps input order", 3, []completion{{2, 12, nil}, {1, 11, nil}, {0, 10, nil}}, 2, []int{10, 11, 12}, nil},
		{"fast fail with others pending", 3, []completion{{1, 0, errA}}, 0, nil, errA},
		{"first error wins", 3, []completion{{0, 1, nil}, {2, 0, errB}, {1, 0, errA}}, 1, nil, errB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			futs, ps := make([]*Future[int], tt.n), make([]Promise[int], tt.n)
			for i := range tt.n {
				futs[i], ps[i] = New[int]()
			}
			out := All(futs...)
			for s, c := range tt.steps {
				if out.Ready() && (tt.wantReady < 0 || s <= tt.wantReady) {
					t.Fatalf("ready before step %d", s)
				}
				ps[c.i].Complete(c.v, c.err)
				if s == tt.wantReady && !out.Ready() {
					t.Fatalf("not ready after step %d", s)
				}
			}
			v, err, ok := out.Peek()
			if !ok {
				t.Fatal("All not complete")
			}
			if err != tt.wantErr || !slices.Equal(v, tt.wantV) || (v == nil) != (tt.wantV == nil) {
				t.Errorf("All = %v, %v; want %v, %v", v, err, tt.wantV, tt.wantErr)
			}
			for _, p := range ps { // late completions are harmless
				p.Resolve(-1)
			}
			if v2, err2, _ := out.Peek(); err2 != err || !slices.Equal(v2, v) {
				t.Error("All result changed after late completions")
			}
		})
	}
}

func TestAny(t *testing.T) {
	tests := []struct {
		name     string
		n        int
		steps    []completion
		wantV    int
		wantErrs []error
	}{
		{"empty", 0, nil, 0, []error{ErrNoFutures}},
		{"first success", 3, []completion{{2, 12, nil}}, 12, nil},
		{"success after failures", 3, []completion{{0, 0, errA}, {2, 0, errB}, {1, 11, nil}}, 11, nil},
		{"all failed", 2, []completion{{1, 0, errB}, {0, 0, errA}}, 0, []error{ErrAllFailed, errA, errB}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			futs, ps := make([]*Future[int], tt.n), make([]Promise[int], tt.n)
			for i := range tt.n {
				futs[i], ps[i] = New[int]()
			}
			out := Any(futs...)
			for _, c := range tt.steps {
				ps[c.i].Complete(c.v, c.err)
			}
			v, err, ok := out.Peek()
			if !ok {
				t.Fatal("Any not complete")
			}
			if v != tt.wantV || (tt.wantErrs == nil) != (err == nil) {
				t.Fatalf("Any = %v, %v; want %v, %v", v, err, tt.wantV, tt.wantErrs)
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want errors.Is %v", err, want)
				}
			}
		})
	}
	t.Run("all failed: errors in input order", func(t *testing.T) {
		e0, e1 := errors.New("zero"), errors.New("one")
		a, pa := New[int]()
		b, pb := New[int]()
		out := Any(a, b)
		pb.Reject(e1)
		pa.Reject(e0)
		_, err := out.Result(context.Background())
		if want := "future: all futures failed (2): zero\none"; err.Error() != want {
			t.Fatalf("Error() = %q, want %q", err.Error(), want)
		}
	})
}

func TestAsCompleted(t *testing.T) {
	tests := []struct {
		name      string
		n         int
		pre       []int // completed before ranging, in this order
		during    []int // completed one by one as each future is yielded
		breakAt   int   // stop the loop after this many yields (0: never)
		cancelAt  int   // cancel ctx after this many yields (0: never)
		wantOrder []int
	}{
		{"empty", 0, nil, nil, 0, 0, nil},
		{"already complete: input order", 3, []int{2, 0, 1}, nil, 0, 0, []int{0, 1, 2}},
		{"completion order", 4, []int{2}, []int{3, 0, 1}, 0, 0, []int{2, 3, 0, 1}},
		{"break early", 3, []int{1}, []int{2, 0}, 2, 0, []int{1, 2}},
		{"cancel while waiting", 3, []int{1}, nil, 0, 1, []int{1}},
		{"cancel with more complete: stops at once", 3, []int{0, 1, 2}, nil, 0, 1, []int{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			futs, ps := make([]*Future[int], tt.n), make([]Promise[int], tt.n)
			index := map[*Future[int]]int{}
			for i := range tt.n {
				futs[i], ps[i] = New[int]()
				index[futs[i]] = i
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for _, i := range tt.pre {
				ps[i].Resolve(i)
			}
			var order []int
			next := 0
			for f := range AsCompleted(ctx, futs...) {
				if !f.Ready() {
					t.Fatalf("yielded a pending future")
				}
				order = append(order, index[f])
				if len(order) == tt.breakAt {
					break
				}
				if len(order) == tt.cancelAt {
					cancel()
					continue
				}
				if next < len(tt.during) {
					ps[tt.during[next]].Resolve(0)
					next++
				}
			}
			if fmt.Sprint(order) != fmt.Sprint(tt.wantOrder) {
				t.Fatalf("order = %v, want %v", order, tt.wantOrder)
			}
			for _, p := range ps { // complete the rest: their callbacks must not block
				p.Resolve(0)
			}
		})
	}
}

func TestAsCompletedConcurrent(t *testing.T) {
	const n = 100
	futs := make([]*Future[int], n)
	for i := range futs {
		futs[i] = Go(context.Background(), func(context.Context) (int, error) { return i, nil })
	}
	seen := make([]bool, n)
	count := 0
	for f := range AsCompleted(context.Background(), futs...) {
		v, _, _ := f.Peek()
		if seen[v] {
			t.Fatalf("future %d yielded twice", v)
		}
		seen[v] = true
		count++
	}
	if count != n {
		t.Fatalf("yielded %d futures, want %d", count, n)
	}
	// Ranging again yields them all again (each range waits afresh).
	count = 0
	for range AsCompleted(context.Background(), futs...) {
		count++
	}
	if count != n {
		t.Fatalf("second range yielded %d futures, want %d", count, n)
	}
}
