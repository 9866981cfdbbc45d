package retry

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Defaults of DefaultPolicy.
const (
	DefaultMaxAttempts = 3
	DefaultInitial     = 1 * time.Second
	DefaultMax         = 30 * time.Second
	DefaultMultiplier  = 2.0
	DefaultJitter      = 0.2
)

// Policy is how many attempts to make and how long to wait between them.
//
// The wait after failed attempt n (1-based) is d = Initial·Multiplier^(n-1),
// capped at Max, of which the fraction Jitter is randomised: the wait is
// drawn uniformly from [(1-Jitter)·d, d]. Max is therefore a true upper bound
// (except for RetryAfter), and Jitter 1 is "full jitter".
type Policy struct {
	// MaxAttempts is the total number of attempts, the first included;
	// 1 means no retry. Must be at least 1.
	MaxAttempts int
	// Initial is the wait after the first failed attempt. Must be positive
	// when MaxAttempts > 1.
	Initial time.Duration
	// Max caps every wait. Must be at least Initial.
	Max time.Duration
	// Multiplier grows the wait after each failed attempt; 1 keeps it
	// constant. Must be finite and at least 1 when MaxAttempts > 1.
	Multiplier float64
	// Jitter is the randomised fraction of each wait, in [0, 1].
	Jitter float64
}

// DefaultPolicy returns 3 attempts waiting about 1s, then 2s, with 20% jitter
// and waits capped at 30s.
func DefaultPolicy() Policy {
	return Policy{
		MaxAttempts: DefaultMaxAttempts,
		Initial:     DefaultInitial,
		Max:         DefaultMax,
		Multiplier:  DefaultMultiplier,
		Jitter:      DefaultJitter,
	}
}

// ErrInvalidPolicy is matched (errors.Is) by every *PolicyError.
var ErrInvalidPolicy = errors.New("retry: invalid policy")

// PolicyError reports one invalid field of a Policy.
type PolicyError struct {
	Field  string // the Policy field, e.g. "Jitter"
	Value  any    // its value
	Reason string // what it must be
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("retry: invalid policy: %s = %v: %s", e.Field, e.Value, e.Reason)
}

// Is makes errors.Is(err, ErrInvalidPolicy) true.
func (e *PolicyError) Is(target error) bool { return target == ErrInvalidPolicy }

// Validate reports every invalid field, as *PolicyError values joined with
// errors.Join (errors.As finds the first), or nil if the policy is usable.
// The backoff fields are only required when the policy retries
// (MaxAttempts > 1); values that are nonsense (negative, NaN, out of range)
// are always reported.
func (p Policy) Validate() error {
	var errs []error
	bad := func(field string, v any, reason string) {
		errs = append(errs, &PolicyError{Field: field, Value: v, Reason: reason})
	}
	if p.MaxAttempts < 1 {
		bad("MaxAttempts", p.MaxAttempts, "must be at least 1")
	}
	retries := p.MaxAttempts > 1
	switch {
	case p.Initial < 0:
		bad("Initial", p.Initial, "must not be negative")
	case retries && p.Initial == 0:
		bad("Initial", p.Initial, "must be positive when MaxAttempts > 1")
	}
	switch {
	case p.Max < 0:
		bad("Max", p.Max, "must not be negative")
	case p.Max < p.Initial:
		bad("Max", p.Max, fmt.Sprintf("must be at least Initial (%v)", p.Initial))
	}
	switch {
	case math.IsNaN(p.Multiplier) || math.IsInf(p.Multiplier, 0) || p.Multiplier < 0:
		bad("Multiplier", p.Multiplier, "must be finite and not negative")
	case retries && p.Multiplier < 1:
		bad("Multiplier", p.Multiplier, "must be at least 1 when MaxAttempts > 1")
	}
	if !(p.Jitter >= 0 && p.Jitter <= 1) { // also catches NaN
		bad("Jitter", p.Jitter, "must be in [0, 1]")
	}
	return errors.Join(errs...)
}

// Delay is the wait after failed attempt n (1-based) when the jitter draw
// is u in [0, 1): for callers that pace their own loop (a poller backing
// off after failed rounds) with the same formula as Do. n < 1 counts as 1;
// the policy should be valid (Validate).
func (p Policy) Delay(n int, u float64) time.Duration {
	return p.delay(max(n, 1), u)
}

// delay is the wait after failed attempt n (1-based); u in [0, 1) draws the
// jitter. The policy must be valid.
func (p Policy) delay(n int, u float64) time.Duration {
	d := float64(p.Initial) * math.Pow(p.Multiplier, float64(n-1))
	if d > float64(p.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(p.Max)
	}
	return time.Duration(d * (1 - p.Jitter*u))
}
