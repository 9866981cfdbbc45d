package ops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/retry"
)

// Clock is the time source of a Cloud's retries: the waits between the
// attempts of a call or of an operation, the retry budget, and the
// monitors' backoff after failed rounds. Tests pass one whose After fires
// at once, so that retries never wait in real time. (The monitors'
// regular intervals and the operations' deadlines use the system clock.)
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// sleepOn waits d on clock, or until ctx ends.
func sleepOn(ctx context.Context, clock Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-clock.After(d):
		return nil
	}
}

// callPolicy is how often one synchronous call is tried on throttling,
// server errors and lost answers: 5 attempts, waiting about 1, 2, 4 and
// 8 s between them (longer when a Retry-After asks), within the retry
// budget.
var callPolicy = retry.Policy{MaxAttempts: 5, Initial: time.Second, Max: 16 * time.Second, Multiplier: 2, Jitter: 0.2}

// caller makes the synchronous calls of a Cloud: one retry loop with one
// budget, so that retries never multiply (gophercloud's own 429 retries
// are off).
type caller struct {
	clock           Clock
	budget          time.Duration
	responseTimeout time.Duration // how long a request waits for its answer
	policy          retry.Policy
}

func newCaller(cfg Config) caller {
	return caller{clock: cfg.Clock, budget: cfg.RetryBudget, responseTimeout: cfg.ResponseTimeout, policy: callPolicy}
}

// budgetEnd carries the end of the budget of the call a nested call (a
// check after a lost answer, say) runs in: the nested call spends from it.
type budgetEnd struct{}

// errBudgetSpent is the cause of a call's context when its retry budget
// runs out; the transport turns a request cut by it into an
// *UnresponsiveError.
var errBudgetSpent = errors.New("ostask: retry budget spent")

// run makes one synchronous call: do, repeated on throttling (429 and
// 503, waiting at least their Retry-After), server errors and transport
// failures, up to the policy's attempts and within the budget (a nested
// call spends from its caller's budget).
//
// took is nil for a request that may be repeated blindly: a read, or a
// delete. Every other request (a POST) must not be sent again before we
// know that it did not take effect. After a failure that may have taken
// effect (a lost answer, a 5xx other than 503) — and after a rejection
// (4xx) that follows one, which may be the cloud's answer to our own
// earlier attempt — run asks took. Yes ends the call as a success (took
// records what it found); no sends the request again, or returns the
// rejection; a check that fails ends the call with an
// *UnknownOutcomeError, and the request is not sent again.
func (cl caller) run(ctx context.Context, do func(context.Context) error, took func(context.Context) (bool, error)) error {
	parent := ctx
	now := cl.clock.Now()
	end := now.Add(cl.budget)
	if outer, ok := ctx.Value(budgetEnd{}).(time.Time); ok && outer.Before(end) {
		end = outer
	}
	ctx = context.WithValue(ctx, budgetEnd{}, end)
	// The budget also cuts a request that is still waiting for its answer.
	ctx, cancel := context.WithTimeoutCause(ctx, end.Sub(now), errBudgetSpent)
	defer cancel()
	var last error
	attempts := 0
	ambiguousBefore := false
	err := retry.Do(ctx, cl.policy, func(ctx context.Context, attempt int) error {
		attempts = attempt
		err := do(ctx)
		if err == nil {
			return nil
		}
		last = err
		maybe := mayHaveCommitted(err)
		if took != nil && (maybe || ambiguousBefore && rejected(err)) {
			ok, terr := cl.check(parent, took, errors.Is(err, ErrUnresponsive))
			switch {
			case terr != nil:
				last = &UnknownOutcomeError{Err: err, CheckErr: terr}
				return retry.Permanent(last)
			case ok:
				return nil
			}
		}
		ambiguousBefore = ambiguousBefore || maybe
		if !retryableCall(err) {
			return retry.Permanent(err)
		}
		if d := retryAfterOf(err); d > 0 {
			return retry.RetryAfter(err, d)
		}
		return err
	}, retry.WithSleep(func(ctx context.Context, d time.Duration) error {
		if cl.clock.Now().Add(d).After(end) {
			return errBudgetSpent
		}
		return sleepOn(ctx, cl.clock, d)
	}))
	if err == nil {
		return nil
	}
	var pe *retry.PermanentError
	var ex *retry.ExhaustedError
	switch {
	case last == nil: // stopped before the first attempt
		return err
	case errors.As(err, &pe):
		return pe.Err
	case errors.As(err, &ex):
		return fmt.Errorf("%w (gave up after %s)", last, plural(attempts, "attempt"))
	case errors.Is(err, errBudgetSpent) || errors.Is(context.Cause(ctx), errBudgetSpent):
		return fmt.Errorf("%w (gave up after %s: the retry budget of %s is spent)", last, plural(attempts, "attempt"), cl.budget)
	case errors.Is(last, context.Canceled) || errors.Is(last, context.DeadlineExceeded):
		return last
	}
	return errors.Join(last, context.Cause(ctx))
}

// check asks took whether a request whose answer was lost took effect.
// It has a budget of its own: the call's may have been spent by the very
// wait that lost the answer, and giving up the check would leave the
// outcome unknown (and what the request made, unowned).
//
// A request that got no answer at all may still sit in the cloud's queue
// (a busy API keeps its requests after the client gave up on them) and
// take effect later, so in that case a "no" is looked at again, every
// quarter of the response timeout, until a whole response timeout has
// passed: only then is the request sent again.
func (cl caller) check(ctx context.Context, took func(context.Context) (bool, error), unanswered bool) (bool, error) {
	budget := max(cl.budget, cl.responseTimeout+cl.responseTimeout/4)
	end := cl.clock.Now().Add(budget)
	ctx = context.WithValue(ctx, budgetEnd{}, end)
	ctx, cancel := context.WithTimeoutCause(ctx, budget, errBudgetSpent)
	defer cancel()
	ok, err := took(ctx)
	if err != nil || ok || !unanswered || cl.responseTimeout <= 0 {
		return ok, err
	}
	step := cl.responseTimeout / 4
	for waited := time.Duration(0); waited < cl.responseTimeout; waited += step {
		if err := sleepOn(ctx, cl.clock, step); err != nil {
			return false, err
		}
		if ok, err = took(ctx); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// getOrNil makes get as one call (retried like any); a 404 gives nil and
// no error: the resource does not exist.
func getOrNil[T any](ctx context.Context, c *Cloud, get func(ctx context.Context) (*T, error)) (*T, error) {
	var v *T
	err := c.call.run(ctx, func(ctx context.Context) (err error) {
		v, err = get(ctx)
		return err
	}, nil)
	if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return nil, nil
	}
	return v, err
}

// retryableCall reports whether a failed request is worth sending again:
// throttling, server errors and transport failures.
func retryableCall(err error) bool {
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		return ue.Actual == http.StatusTooManyRequests || ue.Actual >= 500
	}
	return ambiguous(err)
}

// rejected reports a 4xx answer other than throttling: after an earlier
// lost answer it may be the cloud refusing what our first attempt already
// did (409 on a second stop, 400 on a second attach, 404 on a second
// detach).
func rejected(err error) bool {
	var ue gophercloud.ErrUnexpectedResponseCode
	return errors.As(err, &ue) && ue.Actual >= 400 && ue.Actual < 500 && ue.Actual != http.StatusTooManyRequests
}

// retryAfterOf is the Retry-After of a 429 or 503 answer, or 0.
func retryAfterOf(err error) time.Duration {
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		return retryAfter(ue.ResponseHeader)
	}
	return 0
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
