package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var (
	errTransient = errors.New("transient")
	errFatal     = errors.New("fatal")
	errCleanup   = errors.New("cleanup failed")
)

// codeError is a typed attempt error, to check errors.As through wrappers.
type codeError struct{ Code int }

func (e *codeError) Error() string { return fmt.Sprintf("code %d", e.Code) }

// fakeSleep records the requested waits and returns at once (or ctx's error).
type fakeSleep struct{ waits []time.Duration }

func (s *fakeSleep) sleep(ctx context.Context, d time.Duration) error {
	s.waits = append(s.waits, d)
	return ctx.Err()
}

var testPolicy = Policy{MaxAttempts: 4, Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Multiplier: 3}

func TestDo(t *testing.T) {
	ms := time.Millisecond
	type between struct {
		attempt int
		err     error
	}
	// show prints between calls by message: fresh error values compare by text.
	show := func(bs []between) string {
		var out []string
		for _, b := range bs {
			out = append(out, fmt.Sprintf("%d:%v", b.attempt, b.err))
		}
		return fmt.Sprint(out)
	}
	tests := []struct {
		name        string
		policy      Policy
		results     []error // attempt i returns results[i-1]; past the end: nil
		classify    Classifier
		betweenErr  error // returned by the Between hook
		wantCalls   int
		wantWaits   []time.Duration
		wantBetween []between
		wantErrIs   []error
		wantSame    bool // the returned error is the last attempt's error itself
		wantType    any  // errors.As target type, e.g. (*ExhaustedError)(nil)
	}{
		{name: "first try", policy: testPolicy, wantCalls: 1},
		{name: "success on third", policy: testPolicy, results: []error{errTransient, errTransient},
			wantCalls: 3, wantWaits: []time.Duration{10 * ms, 30 * ms},
			wantBetween: []between{{1, errTransient}, {2, errTransient}}},
		{name: "exhausted", policy: testPolicy,
			results:   []error{errTransient, &codeError{500}, errTransient, &codeError{503}},
			wantCalls: 4, wantWaits: []time.Duration{10 * ms, 30 * ms, 50 * ms},
			wantBetween: []between{{1, errTransient}, {2, &codeError{500}}, {3, errTransient}},
			wantErrIs:   []error{errTransient}, wantType: (*ExhaustedError)(nil)},
		{name: "no retry policy", policy: Policy{MaxAttempts: 1}, results: []error{errTransient},
			wantCalls: 1, wantErrIs: []error{errTransient}, wantType: (*ExhaustedError)(nil)},
		{name: "permanent stops at once", policy: testPolicy,
			results:   []error{errTransient, Permanent(errFatal)},
			wantCalls: 2, wantWaits: []time.Duration{10 * ms}, wantBetween: []between{{1, errTransient}},
			wantErrIs: []error{errFatal}, wantSame: true, wantType: (*PermanentError)(nil)},
		{name: "wrapped permanent", policy: testPolicy,
			results:   []error{fmt.Errorf("create: %w", Permanent(errFatal))},
			wantCalls: 1, wantErrIs: []error{errFatal}, wantSame: true},
		{name: "classifier rejects", policy: testPolicy,
			results:   []error{errTransient, errFatal},
			classify:  func(err error) bool { return !errors.Is(err, errFatal) },
			wantCalls: 2, wantWaits: []time.Duration{10 * ms}, wantBetween: []between{{1, errTransient}},
			wantErrIs: []error{errFatal}, wantSame: true},
		{name: "retry-after longer than backoff and Max", policy: testPolicy,
			results:   []error{RetryAfter(errTransient, time.Minute), errTransient},
			wantCalls: 3, wantWaits: []time.Duration{time.Minute, 30 * ms},
			wantBetween: []between{{1, RetryAfter(errTransient, time.Minute)}, {2, errTransient}}},
		{name: "retry-after shorter than backoff", policy: testPolicy,
			results:   []error{errTransient, RetryAfter(errTransient, ms)},
			wantCalls: 3, wantWaits: []time.Duration{10 * ms, 30 * ms},
			wantBetween: []between{{1, errTransient}, {2, RetryAfter(errTransient, ms)}}},
		{name: "retry-after overrides classifier", policy: testPolicy,
			results:   []error{RetryAfter(errFatal, 5*ms)},
			classify:  func(err error) bool { return false },
			wantCalls: 2, wantWaits: []time.Duration{10 * ms}, wantBetween: []between{{1, RetryAfter(errFatal, 5*ms)}}},
		{name: "between fails", policy: testPolicy, results: []error{&codeError{409}},
			betweenErr: errCleanup, wantCalls: 1, wantBetween: []between{{1, &codeError{409}}},
			wantErrIs: []error{errCleanup}, wantType: (*BetweenError)(nil)},
		{name: "invalid policy", policy: Policy{MaxAttempts: 2}, wantCalls: 0,
			wantErrIs: []error{ErrInvalidPolicy}, wantType: (*PolicyError)(nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fs fakeSleep
			var calls []int
			var betweens []between
			opts := []Option{
				WithSleep(fs.sleep),
				WithBetween(func(ctx context.Context, attempt int, err error) error {
					betweens = append(betweens, between{attempt, err})
					return tt.betweenErr
				}),
			}
			if tt.classify != nil {
				opts = append(opts, WithClassifier(tt.classify))
			}
			var last error
			err := Do(context.Background(), tt.policy, func(ctx context.Context, attempt int) error {
				calls = append(calls, attempt)
				last = nil
				if attempt <= len(tt.results) {
					last = tt.results[attempt-1]
				}
				return last
			}, opts...)

			if want := seq(tt.wantCalls); !slices.Equal(calls, want) {
				t.Errorf("attempts = %v, want %v", calls, want)
			}
			if !slices.Equal(fs.waits, tt.wantWaits) {
				t.Errorf("waits = %v, want %v", fs.waits, tt.wantWaits)
			}
			if show(betweens) != show(tt.wantBetween) {
				t.Errorf("between calls = %v, want %v", betweens, tt.wantBetween)
			}
			if tt.wantErrIs == nil && tt.wantType == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("err = nil")
			}
			for _, want := range tt.wantErrIs {
				if !errors.Is(err, want) {
					t.Errorf("err = %v, want errors.Is %v", err, want)
				}
			}
			if tt.wantSame && err != last {
				t.Errorf("err = %#v, want the attempt's error itself %#v", err, last)
			}
			switch tt.wantType.(type) {
			case *ExhaustedError:
				var ee *ExhaustedError
				if !errors.As(err, &ee) || len(ee.Attempts) != tt.wantCalls || ee.Last() != last {
					t.Errorf("err = %#v, want *ExhaustedError with %d attempts ending in %v", err, tt.wantCalls, last)
				}
			case *PermanentError:
				var pe *PermanentError
				if !errors.As(err, &pe) {
					t.Errorf("err = %#v, want *PermanentError", err)
				}
			case *BetweenError:
				var be *BetweenError
				if !errors.As(err, &be) || be.Err != tt.betweenErr || be.Cause != last || be.Attempt != tt.wantCalls {
					t.Errorf("err = %#v, want *BetweenError{Attempt: %d, Err: %v, Cause: %v}", err, tt.wantCalls, tt.betweenErr, last)
				}
				if !errors.Is(err, last) {
					t.Errorf("BetweenError does not reach the attempt's error")
				}
			case *PolicyError:
				var pe *PolicyError
				if !errors.As(err, &pe) {
					t.Errorf("err = %#v, want *PolicyError", err)
				}
			}
		})
	}
}

func seq(n int) []int {
	var s []int
	for i := 1; i <= n; i++ {
		s = append(s, i)
	}
	return s
}

func TestExhaustedErrorReachesEveryAttempt(t *testing.T) {
	errs := []error{&codeError{500}, errTransient, fmt.Errorf("wrapped: %w", &codeError{503})}
	var fs fakeSleep
	err := Do(context.Background(), testPolicy, func(_ context.Context, attempt int) error {
		if attempt <= len(errs) {
			return errs[attempt-1]
		}
		return errFatal
	}, WithSleep(fs.sleep), WithClassifier(func(error) bool { return true }))

	var ee *ExhaustedError
	if !errors.As(err, &ee) {
		t.Fatalf("err = %v, want *ExhaustedError", err)
	}
	for _, want := range []error{errTransient, errFatal} {
		if !errors.Is(err, want) {
			t.Errorf("errors.Is(err, %v) = false", want)
		}
	}
	var codes []int
	for _, e := range ee.Unwrap() {
		var ce *codeError
		if errors.As(e, &ce) {
			codes = append(codes, ce.Code)
		}
	}
	if !slices.Equal(codes, []int{500, 503}) {
		t.Errorf("codes = %v, want [500 503]", codes)
	}
	var ce *codeError
	if !errors.As(err, &ce) || ce.Code != 500 {
		t.Errorf("errors.As = %v, want the first attempt's *codeError", ce)
	}
	if want := "retry: gave up after 4 attempts: last error: fatal"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

func TestContextCancel(t *testing.T) {
	long := Policy{MaxAttempts: 5, Initial: time.Hour, Max: time.Hour, Multiplier: 1}
	tests := []struct {
		name     string
		run      func(ctx context.Context, cancel context.CancelFunc) error
		wantLast bool // the error wraps errTransient
	}{
		{"before first attempt", func(ctx context.Context, cancel context.CancelFunc) error {
			cancel()
			return Do(ctx, long, func(context.Context, int) error { return errTransient })
		}, false},
		{"during the real wait: returns at once", func(ctx context.Context, cancel context.CancelFunc) error {
			return Do(ctx, long, func(context.Context, int) error {
				// Cancel from another goroutine while Do waits an hour.
				time.AfterFunc(time.Millisecond, cancel)
				return errTransient
			})
		}, true},
		{"during an attempt", func(ctx context.Context, cancel context.CancelFunc) error {
			return Do(ctx, long, func(ctx context.Context, _ int) error {
				cancel()
				return fmt.Errorf("%w: %w", errTransient, ctx.Err())
			})
		}, true},
		{"Between not called when cancelled", func(ctx context.Context, cancel context.CancelFunc) error {
			return Do(ctx, long, func(ctx context.Context, _ int) error {
				cancel()
				return errTransient
			}, WithBetween(func(context.Context, int, error) error {
				panic("Between ran after cancel")
			}))
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err := tt.run(ctx, cancel)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want errors.Is context.Canceled", err)
			}
			if errors.Is(err, errTransient) != tt.wantLast {
				t.Fatalf("err = %v: wraps the last attempt's error = %v, want %v", err, !tt.wantLast, tt.wantLast)
			}
		})
	}
}

func TestDoValue(t *testing.T) {
	var fs fakeSleep
	v, err := DoValue(context.Background(), testPolicy, func(_ context.Context, attempt int) (string, error) {
		if attempt < 2 {
			return "partial", errTransient
		}
		return fmt.Sprintf("ok on %d", attempt), nil
	}, WithSleep(fs.sleep))
	if v != "ok on 2" || err != nil {
		t.Fatalf("DoValue = %q, %v", v, err)
	}
	v, err = DoValue(context.Background(), Policy{MaxAttempts: 1}, func(context.Context, int) (string, error) {
		return "partial", errTransient
	})
	if v != "" || !errors.Is(err, errTransient) {
		t.Fatalf("DoValue = %q, %v; want zero value and the error", v, err)
	}
}

func TestJitterWithSeededRand(t *testing.T) {
	p := Policy{MaxAttempts: 6, Initial: 100 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.5}
	run := func(seed uint64) []time.Duration {
		var fs fakeSleep
		_ = Do(context.Background(), p, func(context.Context, int) error { return errTransient },
			WithSleep(fs.sleep), WithRand(rand.New(rand.NewPCG(seed, seed))))
		return fs.waits
	}
	a, b, c := run(1), run(1), run(2)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different waits: %v vs %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Fatalf("different seeds, same waits: %v", a)
	}
	bases := []time.Duration{100, 200, 400, 800, 1000}
	for i, d := range a {
		base := bases[i] * time.Millisecond
		if d < base/2 || d > base {
			t.Errorf("wait %d = %v, want in [%v, %v]", i+1, d, base/2, base)
		}
	}
}

func TestMarkersOfNil(t *testing.T) {
	if Permanent(nil) != nil || RetryAfter(nil, time.Second) != nil {
		t.Fatal("markers of nil must be nil")
	}
	p := Permanent(errFatal)
	if p.Error() != errFatal.Error() || !errors.Is(p, errFatal) {
		t.Fatalf("Permanent not transparent: %v", p)
	}
	ra := RetryAfter(errTransient, time.Second)
	if ra.Error() != errTransient.Error() || !errors.Is(ra, errTransient) {
		t.Fatalf("RetryAfter not transparent: %v", ra)
	}
}
