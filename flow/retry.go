package flow

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// Decision is what a retry controller wants after a failure in its scope.
// The zero Decision means that none was made; a controller that returns it,
// or any other unknown value, is taken to mean RevertAll.
type Decision uint8

const (
	// Retry reverts the controller's subflow and runs it again.
	Retry Decision = iota + 1
	// Revert reverts the subflow and hands the failure to the enclosing
	// controller (or fails the flow when there is none).
	Revert
	// RevertAll reverts the whole flow, ignoring enclosing controllers.
	RevertAll
)

var decisionNames = [...]string{Retry: "RETRY", Revert: "REVERT", RevertAll: "REVERT_ALL"}

// String returns TaskFlow's name of the decision ("" for the zero Decision).
func (d Decision) String() string {
	if d == 0 {
		return ""
	}
	if int(d) < len(decisionNames) {
		return decisionNames[d]
	}
	return fmt.Sprintf("Decision(%d)", uint8(d))
}

// MarshalText makes decisions readable in JSON and other text encodings.
func (d Decision) MarshalText() ([]byte, error) {
	if int(d) >= len(decisionNames) {
		return nil, fmt.Errorf("flow: invalid decision %d", uint8(d))
	}
	return []byte(d.String()), nil
}

// UnmarshalText parses the output of MarshalText.
func (d *Decision) UnmarshalText(b []byte) error {
	for i, n := range decisionNames {
		if n == string(b) {
			*d = Decision(i)
			return nil
		}
	}
	return fmt.Errorf("flow: unknown decision %q", b)
}

// Attempt is one run of a retry controller's subflow.
type Attempt struct {
	Result   any        `json:"result,omitempty"`   // what the controller's Execute returned
	Failures []*Failure `json:"failures,omitempty"` // what failed during the attempt
}

// History lists the attempts of a retry controller, oldest first.
type History struct {
	Attempts []Attempt `json:"attempts"`
}

// Len is the number of attempts so far.
func (h History) Len() int { return len(h.Attempts) }

// Last returns the latest attempt (zero when there is none).
func (h History) Last() Attempt {
	if len(h.Attempts) == 0 {
		return Attempt{}
	}
	return h.Attempts[len(h.Attempts)-1]
}

// Retrier is a retry controller, attached to a flow with [Flow.WithRetry].
// It runs before the flow's items, and its result is provided (Spec.Provides)
// to them. When an atom of the flow fails, OnFailure decides what happens.
type Retrier interface {
	Spec() Spec
	// Execute starts an attempt; h holds the previous attempts.
	Execute(ctx context.Context, in Inputs, h History) (any, error)
	// OnFailure decides after a failure; h's last attempt holds it, in has
	// the same inputs as Execute.
	OnFailure(in Inputs, h History) Decision
}

// Delayer is implemented by retry controllers that wait between attempts.
// The engine waits Delay(h) (through its clock, cancellable) before the
// next attempt; h holds the attempts so far.
type Delayer interface {
	Delay(h History) time.Duration
}

// RetryOption configures the built-in controllers.
type RetryOption func(*Controller)

// RevertAllOnGiveUp makes the controller revert the whole flow when it gives
// up, rather than only its subflow (TaskFlow's revert_all=True).
func RevertAllOnGiveUp() RetryOption { return func(c *Controller) { c.giveUp = RevertAll } }

// Delay waits d before every new attempt.
func Delay(d time.Duration) RetryOption {
	return func(c *Controller) { c.delay, c.maxDelay = d, d }
}

// Backoff waits initial before the second attempt, doubling each time up to max.
func Backoff(initial, max time.Duration) RetryOption {
	return func(c *Controller) { c.delay, c.maxDelay = initial, max }
}

// ProvidesAs sets the name under which the controller's value is provided.
func ProvidesAs(name string) RetryOption {
	return func(c *Controller) { c.spec.Provides = []string{name} }
}

// ValuesFrom makes a ParameterizedForEach read its values from another name.
func ValuesFrom(name string) RetryOption {
	return func(c *Controller) { c.spec.Rebind = map[string]string{"values": name} }
}

// Controller is a built-in retry controller: see [Times], [ForEach] and
// [ParameterizedForEach].
type Controller struct {
	spec     Spec
	attempts int                            // Times
	values   func(in Inputs) ([]any, error) // ForEach
	giveUp   Decision                       // Revert or RevertAll
	delay    time.Duration                  // before the 2nd attempt
	maxDelay time.Duration                  // cap of the doubling
}

func newController(name string, opts []RetryOption) *Controller {
	c := &Controller{spec: Spec{Name: name}, giveUp: Revert}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Times runs its subflow up to n times in all. Each attempt provides its
// 1-based number (name it with ProvidesAs).
func Times(name string, n int, opts ...RetryOption) *Controller {
	c := newController(name, opts)
	c.attempts = n
	return c
}

// ForEach runs its subflow once per value until an attempt succeeds; each
// attempt provides the next value (name it with ProvidesAs).
func ForEach[T any](name string, values []T, opts ...RetryOption) *Controller {
	c := newController(name, opts)
	vs := make([]any, len(values))
	for i, v := range values {
		vs[i] = v
	}
	c.values = func(Inputs) ([]any, error) { return vs, nil }
	return c
}

// ParameterizedForEach is ForEach over a collection read from the required
// value "values" (rebind it with ValuesFrom): any slice or array, e.g. a
// []int or a []any.
func ParameterizedForEach(name string, opts ...RetryOption) *Controller {
	c := newController(name, opts)
	c.spec.Requires = []string{"values"}
	c.values = func(in Inputs) ([]any, error) {
		v, ok := in.Lookup("values")
		if !ok {
			return nil, &InputError{Name: "values", err: ErrNotFound}
		}
		if vs, ok := v.([]any); ok {
			return vs, nil
		}
		if raw, ok := v.(json.RawMessage); ok { // read back from a store
			vs, err := rawValues(raw)
			if err != nil {
				return nil, &InputError{Name: "values", Want: "a slice or an array", Got: v, err: ErrWrongType, cause: err}
			}
			return vs, nil
		}
		rv := reflect.ValueOf(v)
		if k := rv.Kind(); k != reflect.Slice && k != reflect.Array {
			return nil, &InputError{Name: "values", Want: "a slice or an array", Got: v, err: ErrWrongType}
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = rv.Index(i).Interface()
		}
		return out, nil
	}
	return c
}

// Spec implements Retrier.
func (c *Controller) Spec() Spec { return c.spec }

// Execute implements Retrier.
func (c *Controller) Execute(_ context.Context, in Inputs, h History) (any, error) {
	if c.values == nil {
		return len(h.Attempts) + 1, nil
	}
	vs, err := c.values(in)
	if err != nil {
		return nil, err
	}
	if i := len(h.Attempts); i < len(vs) {
		return vs[i], nil
	}
	return nil, fmt.Errorf("flow: retry %q: no values left after %d attempts", c.spec.Name, len(h.Attempts))
}

// OnFailure implements Retrier.
func (c *Controller) OnFailure(in Inputs, h History) Decision {
	limit := c.attempts
	if c.values != nil {
		// The collection cannot change between attempts of one run; an
		// unreadable one gives up.
		limit = 0
		if vs, err := c.values(in); err == nil {
			limit = len(vs)
		}
	}
	if len(h.Attempts) < limit {
		return Retry
	}
	return c.giveUp
}

// Delay implements Delayer.
func (c *Controller) Delay(h History) time.Duration {
	if c.delay <= 0 {
		return 0
	}
	d := c.delay
	for i := 1; i < len(h.Attempts) && d < c.maxDelay; i++ {
		d *= 2
	}
	return min(d, c.maxDelay)
}

// RetryReverter is implemented by retry controllers that undo something
// when their subflow is reverted for good.
type RetryReverter interface {
	Revert(ctx context.Context, in Inputs, h History) error
}
