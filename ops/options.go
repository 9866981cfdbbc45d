package ops

import (
	"fmt"
	"time"

	"github.com/ostask/ostask/retry"
)

// Cleanup says what a create does with the failed resources it meets:
// the wreck of each failed attempt, and those an earlier run left under
// its idempotency key.
type Cleanup int

const (
	// CleanupDelete (the default) deletes each failed resource and waits
	// until it is gone: before the next attempt, after the last attempt
	// (the operation then fails with nothing left behind), and before a
	// new create under a key that holds failed ones. Each delete is tried
	// up to 3 times. A cancelled operation leaves its resource as it is.
	CleanupDelete Cleanup = iota
	// CleanupKeep leaves every failed resource in place, the last
	// attempt's and those under the key included, for inspection. A
	// retried create then makes a new resource each attempt.
	CleanupKeep
)

// Option tunes one operation.
type Option func(*callOpts)

type callOpts struct {
	timeout   time.Duration
	attempts  int
	backoff   retry.Policy
	cleanup   Cleanup
	key       string
	keySet    bool
	adminPass bool
	err       error
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

// WithRetries sets the total number of attempts (1, the default, means no
// retry) of operations that can be retried: creates, snapshots and
// deletes. It must be >= 1; anything else is ErrInvalidOption.
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

// WithIdempotencyKey records key in the resource's metadata (an image's
// properties for snapshots) so that a create re-run after a crash adopts
// the resource an earlier run made instead of making a duplicate, and
// removes the failed ones it left. Without it, a create makes up a key of
// its own, which protects it against lost answers within this call.
func WithIdempotencyKey(key string) Option {
	return func(o *callOpts) {
		if key == "" || len(key) > 255 {
			o.err = fmt.Errorf("%w: idempotency key must be 1..255 characters", ErrInvalidOption)
		}
		o.key, o.keySet = key, true
	}
}

// WithAdminPass keeps the adminPass of Nova's answer to a server create in
// Initial().Body; by default it is dropped, since the answer is held for
// the life of the operation.
func WithAdminPass() Option { return func(o *callOpts) { o.adminPass = true } }

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
	if err := o.backoff.Validate(); err != nil {
		return o, fmt.Errorf("%w: backoff: %w", ErrInvalidOption, err)
	}
	return o, nil
}
