package ops

import (
	"fmt"
	"time"

	"github.com/ostask/ostask/retry"
)

// Cleanup says what to do with a resource whose create failed before the
// next attempt.
type Cleanup int

const (
	// CleanupDelete deletes the failed resource and waits until it is gone
	// before the next attempt (the default).
	CleanupDelete Cleanup = iota
	// CleanupKeep leaves failed resources in place, for debugging. A
	// retried create then makes a new resource each attempt.
	CleanupKeep
)

// Option tunes one operation.
type Option func(*callOpts)

type callOpts struct {
	timeout  time.Duration
	attempts int
	backoff  retry.Policy
	cleanup  Cleanup
	key      string
	keySet   bool
	err      error
}

// WithTimeout bounds the wait for the operation (per attempt). It must be > 0.
func WithTimeout(d time.Duration) Option {
	return func(o *callOpts) {
		if d <= 0 {
			o.err = fmt.Errorf("%w: timeout %s must be > 0", ErrInvalidOption, d)
		}
		o.timeout = d
	}
}

// WithRetries sets the maximum number of attempts (1 = no retry) for
// operations that can be retried (creates). It must be >= 1.
func WithRetries(maxAttempts int) Option {
	return func(o *callOpts) {
		if maxAttempts < 1 {
			o.err = fmt.Errorf("%w: retries %d must be >= 1 (the number of attempts)", ErrInvalidOption, maxAttempts)
		}
		o.attempts = maxAttempts
	}
}

// WithBackoff sets the wait between attempts (its MaxAttempts is ignored;
// use WithRetries).
func WithBackoff(p retry.Policy) Option {
	return func(o *callOpts) { o.backoff = p }
}

// WithCleanup sets the cleanup policy between attempts.
func WithCleanup(c Cleanup) Option { return func(o *callOpts) { o.cleanup = c } }

// WithIdempotencyKey records key in the resource's metadata so that a
// create retried after a lost response, or re-run after a crash, adopts
// the resource that already exists instead of making a duplicate.
func WithIdempotencyKey(key string) Option {
	return func(o *callOpts) {
		if key == "" || len(key) > 255 {
			o.err = fmt.Errorf("%w: idempotency key must be 1..255 characters", ErrInvalidOption)
		}
		o.key, o.keySet = key, true
	}
}

func (c *Cloud) resolve(options []Option) (callOpts, error) {
	if c.closed.Load() {
		return callOpts{}, ErrMonitorClosed
	}
	o := callOpts{timeout: c.cfg.DefaultTimeout, attempts: 1,
		backoff: retry.Policy{MaxAttempts: 1, Initial: time.Second, Max: 30 * time.Second, Multiplier: 2, Jitter: 0.2}}
	for _, opt := range options {
		opt(&o)
		if o.err != nil {
			return o, o.err
		}
	}
	o.backoff.MaxAttempts = o.attempts
	if o.attempts > 1 {
		if err := o.backoff.Validate(); err != nil {
			return o, fmt.Errorf("%w: backoff: %w", ErrInvalidOption, err)
		}
	}
	return o, nil
}
