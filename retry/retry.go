package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// PermanentError marks an error not worth retrying; see Permanent.
type PermanentError struct {
	Err error
}

// Permanent marks err as not worth retrying: Do stops at once and returns
// the error as the attempt returned it. The mark is transparent: Error is
// err's message and errors.Is/As see err. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// RetryAfterError asks for at least Delay before the next attempt; see
// RetryAfter.
type RetryAfterError struct {
	Err   error
	Delay time.Duration
}

// RetryAfter marks err as retryable after at least d (an HTTP 429 or 503
// Retry-After): the next wait is the larger of d and the policy's backoff,
// even above Policy.Max. The mark overrides the Classifier. Like Permanent
// it is transparent to Error and errors.Is/As. RetryAfter(nil, d) is nil.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryAfterError{Err: err, Delay: d}
}

func (e *RetryAfterError) Error() string { return e.Err.Error() }
func (e *RetryAfterError) Unwrap() error { return e.Err }

// ExhaustedError is returned when every attempt failed with a retryable
// error. errors.Is and errors.As reach each attempt's error.
type ExhaustedError struct {
	// Attempts holds each attempt's error, in order.
	Attempts []error
}

func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("retry: gave up after %d attempts: last error: %v", len(e.Attempts), e.Last())
}

// Unwrap returns every attempt's error.
func (e *ExhaustedError) Unwrap() []error { return e.Attempts }

// Last returns the error of the last attempt.
func (e *ExhaustedError) Last() error {
	if len(e.Attempts) == 0 {
		return nil
	}
	return e.Attempts[len(e.Attempts)-1]
}

// BetweenError is returned when the Between hook fails: it carries the
// hook's error and the error of the attempt that preceded it; errors.Is and
// errors.As reach both.
type BetweenError struct {
	Attempt int   // the failed attempt the hook ran after (1-based)
	Err     error // the hook's error
	Cause   error // that attempt's error
}

func (e *BetweenError) Error() string {
	return fmt.Sprintf("retry: before attempt %d: %v (after attempt %d failed: %v)",
		e.Attempt+1, e.Err, e.Attempt, e.Cause)
}

// Unwrap returns the hook's error and the attempt's error.
func (e *BetweenError) Unwrap() []error { return []error{e.Err, e.Cause} }

// Classifier reports whether an attempt's error is worth another attempt.
type Classifier func(error) bool

// BetweenFunc runs after failed attempt number attempt (1-based), whose
// error is err, and before the wait for the next attempt.
type BetweenFunc func(ctx context.Context, attempt int, err error) error

// SleepFunc waits for d or until ctx is done, returning ctx's error then.
type SleepFunc func(ctx context.Context, d time.Duration) error

// Option adjusts one call of Do or DoValue.
type Option func(*config)

type config struct {
	classify Classifier
	between  BetweenFunc
	sleep    SleepFunc
	rand     func() float64
}

// WithClassifier retries only errors for which c returns true (Permanent and
// RetryAfter marks take precedence). Without it every error is retryable.
func WithClassifier(c Classifier) Option { return func(cf *config) { cf.classify = c } }

// WithBetween runs fn before each new attempt: after a retryable failure,
// when another attempt is allowed and ctx is not done, before the backoff
// wait. It does not run after the last attempt. If fn fails, Do stops with a
// *BetweenError. This is the place to clean up a failed attempt's wreck.
func WithBetween(fn BetweenFunc) Option { return func(cf *config) { cf.between = fn } }

// WithSleep replaces the wait between attempts; tests pass a fake that
// records the durations and returns at once.
func WithSleep(fn SleepFunc) Option { return func(cf *config) { cf.sleep = fn } }

// WithRand draws the jitter from r instead of the global source, for
// reproducible waits. r is not safe for concurrent use: do not share it
// between concurrent calls.
func WithRand(r *rand.Rand) Option { return func(cf *config) { cf.rand = r.Float64 } }

// Do calls fn until it returns nil, the policy's attempts run out, or an
// error is not worth retrying. attempt is 1-based.
//
// It returns nil on success; the policy's Validate error if the policy is
// invalid (fn is not called); an attempt's error unchanged if it is
// Permanent or rejected by the Classifier; a *BetweenError if the hook
// failed; an *ExhaustedError when attempts ran out. If ctx ends (before an
// attempt, during one, or while waiting, which stops at once) the error wraps
// ctx.Err() and the last attempt's error.
func Do(ctx context.Context, p Policy, fn func(ctx context.Context, attempt int) error, opts ...Option) error {
	_, err := DoValue(ctx, p, func(ctx context.Context, attempt int) (struct{}, error) {
		return struct{}{}, fn(ctx, attempt)
	}, opts...)
	return err
}

// DoValue is Do for an attempt that returns a value: the value of the
// successful attempt, or the zero T with the error.
func DoValue[T any](ctx context.Context, p Policy, fn func(ctx context.Context, attempt int) (T, error), opts ...Option) (T, error) {
	var zero T
	if err := p.Validate(); err != nil {
		return zero, err
	}
	cf := config{sleep: sleep, rand: rand.Float64}
	for _, o := range opts {
		o(&cf)
	}
	var errs []error
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return zero, stopped(ctx.Err(), errs)
		}
		v, err := fn(ctx, attempt)
		if err == nil {
			return v, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			return zero, stopped(ctx.Err(), errs)
		}
		var ra *RetryAfterError
		hasRetryAfter := errors.As(err, &ra)
		var pe *PermanentError
		switch {
		case errors.As(err, &pe):
			return zero, err
		case !hasRetryAfter && cf.classify != nil && !cf.classify(err):
			return zero, err
		case attempt >= p.MaxAttempts:
			return zero, &ExhaustedError{Attempts: errs}
		}
		if cf.between != nil {
			if herr := cf.between(ctx, attempt, err); herr != nil {
				return zero, &BetweenError{Attempt: attempt, Err: herr, Cause: err}
			}
		}
		d := p.delay(attempt, cf.rand())
		if hasRetryAfter && ra.Delay > d {
			d = ra.Delay
		}
		if serr := cf.sleep(ctx, d); serr != nil {
			return zero, stopped(serr, errs)
		}
	}
}

// stopped is the error for a wait or attempt cut short by ctx (or by an
// injected sleep's error).
func stopped(cause error, errs []error) error {
	if len(errs) == 0 {
		return fmt.Errorf("retry: stopped before the first attempt: %w", cause)
	}
	return fmt.Errorf("retry: stopped after %d attempts: %w; last error: %w", len(errs), cause, errs[len(errs)-1])
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
