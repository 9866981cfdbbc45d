package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/future"
	"github.com/ostask/ostask/retry"
)

// Initial is what the synchronous HTTP call of an operation returned: the
// 202 (or 200/204) answer, like the seed API's sync_result.
type Initial struct {
	StatusCode int
	// Location is the Location header, where the cloud sent one.
	Location string
	// Body is the JSON answer, if there was one, kept compact (an
	// operation is held by the monitor until it completes).
	Body json.RawMessage
	// ID is the resource the operation acts on (for creates: the new one).
	ID string
	// RequestID is the cloud's request id (X-Openstack-Request-Id); for Nova
	// it names the instance action the call recorded.
	RequestID string
	// Adopted is set when a create found an existing resource under its
	// idempotency key — made by an earlier run — and adopted it instead of
	// making a new one.
	Adopted bool
	// Recovered is set when the call's answer was lost (a dropped
	// connection, a 5xx that may have committed) and the operation found
	// out that the call had taken effect: the resource it made (by its
	// idempotency key), the instance action it started, the attachment.
	// The operation watches that outcome; nothing was done twice.
	Recovered bool
}

// Operation is one background OpenStack operation: the HTTP call has been
// made (Initial), and the embedded Future resolves when the cloud has
// really finished — or fails with a FaultError, TimeoutError,
// DeletedError, RolledBackError or RetriesExhaustedError.
type Operation[T any] struct {
	*future.Future[T]
	mu       sync.Mutex
	initial  Initial
	attempts int
	errs     []error // errors of the failed attempts so far
}

// AttemptErrors returns the errors of the attempts that failed, also when
// a later attempt succeeded (what the retries hid).
func (o *Operation[T]) AttemptErrors() []error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]error(nil), o.errs...)
}

// Initial returns the answer of the operation's latest HTTP call.
func (o *Operation[T]) Initial() Initial {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.initial
}

// Attempts is how many attempts the operation has made so far.
func (o *Operation[T]) Attempts() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.attempts
}

func (o *Operation[T]) setAttempt(in Initial, n int) {
	o.mu.Lock()
	o.initial, o.attempts = in, n
	o.mu.Unlock()
}

func (o *Operation[T]) addErr(err error) {
	o.mu.Lock()
	o.errs = append(o.errs, err)
	o.mu.Unlock()
}

// ID returns the resource id of the latest attempt.
func (o *Operation[T]) ID() string { return o.Initial().ID }

func initialFrom(r gophercloud.Result, id string) Initial {
	in := Initial{StatusCode: http.StatusAccepted, ID: id, RequestID: requestID(r.Header)}
	if r.Header != nil {
		in.Location = r.Header.Get("Location")
	}
	if r.Body != nil {
		if b, err := json.Marshal(r.Body); err == nil {
			in.Body = b
		}
	}
	return in
}

func requestID(h http.Header) string {
	if h == nil {
		return ""
	}
	if v := h.Get("X-Openstack-Request-Id"); v != "" {
		return v
	}
	return h.Get("X-Compute-Request-Id")
}

// Retryable reports whether err is worth another attempt: failures in the
// cloud (fault, timeout, vanished, rolled back), throttling and server-side
// errors. Bad requests, forbidden (quota), not found and conflicts are not.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrMonitorClosed) {
		return false
	}
	var ce *CleanupError
	if errors.As(err, &ce) {
		return false
	}
	if errors.Is(err, ErrFault) || errors.Is(err, ErrTimeout) || errors.Is(err, ErrDeleted) || errors.Is(err, ErrRolledBack) {
		return true
	}
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		return ue.Actual == 429 || ue.Actual >= 500
	}
	return ambiguous(err)
}

// ambiguous reports a transport failure after which the request may or may
// not have taken effect (a lost response).
func ambiguous(err error) bool {
	var ne net.Error
	var oe *net.OpError
	// net/http reports transport failures as *url.Error, a net.Error.
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// mayHaveCommitted reports whether a failed call may still have taken
// effect: transport errors and 5xx other than 503/429.
func mayHaveCommitted(err error) bool {
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		return ue.Actual >= 500 && ue.Actual != 503
	}
	return ambiguous(err)
}

// attemptSpec describes an operation whose attempts can be retried.
type attemptSpec[T any] struct {
	kind Kind
	op   string
	// start makes the call of one attempt (adopting an existing resource
	// by idempotency key where it can) and returns its answer and the
	// future of its completion.
	start func(ctx context.Context, attempt int) (Initial, *future.Future[T], error)
	// cleanup, for creates, deletes the failed resource id and waits until
	// it is gone.
	cleanup func(ctx context.Context, id string) error
}

// leavesWreck reports whether a failed attempt left a resource that
// cleanup must remove: one in ERROR, or one that did not finish in time.
// A cancelled or closed operation leaves its resource running, as the
// caller asked.
func leavesWreck(err error) bool {
	return errors.Is(err, ErrFault) || errors.Is(err, ErrTimeout)
}

// runAttempts runs attempt 1 synchronously (its error is returned at
// once) and, when it fails, the later ones on a goroutine of the Cloud's,
// with the backoff of o and — for creates under CleanupDelete — the
// failed attempt's wreck removed before the next attempt and after the
// last one. Until attempt 1 fails no goroutine is held.
func runAttempts[T any](ctx context.Context, c *Cloud, o callOpts, spec attemptSpec[T]) (*Operation[T], error) {
	in, f, err := spec.start(ctx, 1)
	if err != nil {
		return nil, err
	}
	fut, p := future.New[T]()
	op := &Operation[T]{Future: fut}
	op.setAttempt(in, 1)
	f.OnDone(func(v T, err error) {
		if err == nil {
			p.Resolve(v)
			return
		}
		op.addErr(err)
		more := o.attempts > 1 && Retryable(err) && ctx.Err() == nil
		clean := spec.cleanup != nil && o.cleanup == CleanupDelete && leavesWreck(err) && ctx.Err() == nil
		if !more && !clean {
			p.Reject(err)
			return
		}
		// Never block the monitor goroutine that completes f.
		started := c.goOwned(func(cctx context.Context) {
			// Later attempts live until the caller's ctx or the Cloud ends.
			actx, release := mergeCancel(ctx, cctx)
			defer release()
			p.Complete(retryAttempts(actx, c, o, spec, op, err))
		})
		if !started {
			p.Reject(err)
		}
	})
	return op, nil
}

// retryAttempts runs attempts 2.. after attempt 1 failed with first, and
// removes the last wreck. It returns the result of the attempt that
// succeeded, or the error the operation fails with.
func retryAttempts[T any](ctx context.Context, c *Cloud, o callOpts, spec attemptSpec[T], op *Operation[T], first error) (T, error) {
	var zero T
	wrecked := func(err error) bool {
		return spec.cleanup != nil && o.cleanup == CleanupDelete && leavesWreck(err) && op.ID() != ""
	}
	policy := o.backoff
	policy.MaxAttempts = o.attempts
	v, err := retry.DoValue(ctx, policy, func(ctx context.Context, attempt int) (T, error) {
		if attempt == 1 {
			return zero, first // already made
		}
		in, f, err := spec.start(ctx, attempt)
		if err != nil {
			op.addErr(err)
			return zero, err
		}
		op.setAttempt(in, attempt)
		v, err := f.Result(ctx)
		if err != nil && ctx.Err() == nil {
			op.addErr(err)
		}
		return v, err
	}, retry.WithClassifier(Retryable),
		retry.WithBetween(func(ctx context.Context, _ int, err error) error {
			if !wrecked(err) {
				return nil
			}
			return spec.cleanup(ctx, op.ID())
		}),
		retry.WithSleep(func(ctx context.Context, d time.Duration) error { return sleepOn(ctx, c.clock, d) }))
	if err == nil {
		return v, nil
	}
	errs := op.AttemptErrors()
	last := errs[len(errs)-1]
	var be *retry.BetweenError
	if errors.As(err, &be) {
		return zero, &CleanupError{Kind: spec.kind, ID: op.ID(), Attempt: be.Cause, Err: be.Err}
	}
	if ctx.Err() != nil {
		errs = append(errs, ctx.Err())
	}
	var final error = &RetriesExhaustedError{Op: string(spec.kind) + " " + spec.op, Attempts: errs}
	if len(errs) == 1 {
		final = errs[0]
	}
	if wrecked(last) && ctx.Err() == nil {
		if cerr := spec.cleanup(ctx, op.ID()); cerr != nil {
			return zero, &CleanupError{Kind: spec.kind, ID: op.ID(), Attempt: final, Err: cerr}
		}
	}
	return zero, final
}

// mergeCancel returns a context that ends when either a or b ends; it
// keeps a's values.
func mergeCancel(a, b context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(a)
	stop := context.AfterFunc(b, cancel)
	return ctx, func() { stop(); cancel() }
}

// waitWatch registers a watch on m and returns the future it resolves.
// The watch ends when ctx ends, when its deadline passes, or on a verdict.
// conv turns the final observation into the result.
func waitWatch[T any](ctx context.Context, m *monitor, w *watch, timeout time.Duration, conv func(*observation) (T, error)) *future.Future[T] {
	f, p := future.New[T]()
	if timeout > 0 {
		w.deadline = time.Now().Add(timeout)
	}
	stop := context.AfterFunc(ctx, func() { m.cancel(w, context.Cause(ctx)) })
	w.finish = func(o *observation, err error) {
		stop()
		if err != nil {
			p.Reject(err)
			return
		}
		v, err := conv(o)
		p.Complete(v, err)
	}
	m.add(w)
	if ctx.Err() != nil {
		m.cancel(w, context.Cause(ctx))
	}
	return f
}

// took is the check of a call that must not be sent twice: after a lost
// answer it finds out whether the call took effect, and returns the
// request id of the evidence (an instance action's) when it did.
type took func(ctx context.Context, since time.Time) (requestID string, ok bool, err error)

// begin makes the synchronous call of one attempt on id: it notes the
// cloud's time (the window the monitor must cover starts there), makes the
// call (see caller.run: retried on throttling, server errors and lost
// answers; a call with a check is never sent again before the check says
// it did not take effect) and returns its answer. code is the success
// status the API documents for the call; check is nil for a call that is
// safe to repeat.
func (c *Cloud) begin(ctx context.Context, id string, code int, call func(ctx context.Context) gophercloud.Result, check took) (Initial, time.Time, error) {
	since := c.serverNow()
	var res gophercloud.Result
	var recovered *Initial
	var tk func(ctx context.Context) (bool, error)
	if check != nil {
		tk = func(ctx context.Context) (bool, error) {
			reqID, ok, err := check(ctx, since)
			if ok && err == nil {
				recovered = &Initial{StatusCode: code, ID: id, RequestID: reqID, Recovered: true}
			}
			return ok, err
		}
	}
	err := c.call.run(ctx, func(ctx context.Context) error {
		res = call(ctx)
		return res.Err
	}, tk)
	if err != nil {
		return Initial{}, since, err
	}
	if recovered != nil {
		return *recovered, since, nil
	}
	in := initialFrom(res, id)
	in.StatusCode = code
	return in, since, nil
}

// deleteOp runs a delete: a 404 means already gone (resolved at once);
// otherwise an attempt resolves when m sees the resource gone, or fails
// with what failure returns for an observation (nil: keep waiting). A
// delete that fails (ERROR, error_deleting) is sent again under
// WithRetries. gone checks, after a lost answer, whether the delete took
// effect (the resource is gone or being deleted). settle, when not nil,
// is asked after the cloud refused the delete (4xx): it waits until the
// resource can be deleted and reports whether to send the delete again.
func deleteOp(ctx context.Context, c *Cloud, m *monitor, kind Kind, id string, code int, options []Option,
	call func(ctx context.Context) gophercloud.Result, gone func(ctx context.Context) (bool, error),
	failure func(in *Initial, ob *observation) error, settle func(ctx context.Context, o callOpts) (bool, error)) (*Operation[struct{}], error) {
	o, err := c.resolve(options)
	if err != nil {
		return nil, err
	}
	// Go's transport sends an idempotent request again by itself when a
	// reused connection drops, so a delete whose answer was lost may come
	// back as the cloud refusing to delete what is already being deleted
	// (Cinder's 400), with no lost answer for us to see.
	del := func(ctx context.Context) gophercloud.Result {
		r := call(ctx)
		if rejected(r.Err) && !gophercloud.ResponseCodeIs(r.Err, http.StatusNotFound) {
			if ok, err := gone(ctx); err == nil && ok {
				r.Err = nil
			}
		}
		return r
	}
	took := func(ctx context.Context, _ time.Time) (string, bool, error) {
		ok, err := gone(ctx)
		return "", ok, err
	}
	start := func(ctx context.Context, _ int) (Initial, *future.Future[struct{}], error) {
		in, since, err := c.begin(ctx, id, code, del, took)
		if settle != nil && rejected(err) && !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			again, serr := settle(ctx, o)
			if serr != nil {
				return Initial{}, nil, serr
			}
			if again {
				in, since, err = c.begin(ctx, id, code, del, took)
			}
		}
		if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return Initial{ID: id, StatusCode: http.StatusNotFound}, future.Resolved(struct{}{}), nil
		}
		if err != nil {
			return Initial{}, nil, err
		}
		w := &watch{id: id, op: "delete", since: since, reqID: in.RequestID, wantGone: true, judge: func(ob *observation) (verdict, error) {
			if ob.Gone {
				return succeeded, nil
			}
			if err := failure(&in, ob); err != nil {
				return failed, err
			}
			return pending, nil
		}}
		return in, waitWatch(ctx, m, w, o.timeout, func(*observation) (struct{}, error) { return struct{}{}, nil }), nil
	}
	return runAttempts(ctx, c, o, attemptSpec[struct{}]{kind: kind, op: "delete", start: start})
}

// cleanupAttempts is how often the removal of a wreck (between attempts,
// after the last, or found under a key) sends its delete: a delete that
// fails once must not abort the whole create.
const cleanupAttempts = 3

// removeWreck deletes a failed resource with del, retried, and waits
// until it is gone.
func (c *Cloud) removeWreck(ctx context.Context, id string, o callOpts,
	del func(ctx context.Context, id string, options ...Option) (*Operation[struct{}], error)) error {
	op, err := del(ctx, id, WithRetries(cleanupAttempts), WithBackoff(o.backoff))
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	_, err = op.Result(ctx)
	return err
}

// resultOf waits for an operation just started, for callers that only
// need to know that it finished: resultOf(c.DeleteServer(ctx, id)).
func resultOf[T any](op *Operation[T], err error) error {
	if err != nil {
		return err
	}
	_, err = op.Result(context.Background())
	return err
}

// thenOwned runs fn on a goroutine of the Cloud's once f succeeds (the
// monitor goroutine that completes f must not make calls), and returns
// the future of its result. fn's context ends with ctx or the Cloud.
func thenOwned[T, U any](ctx context.Context, c *Cloud, f *future.Future[T], fn func(context.Context, T) (U, error)) *future.Future[U] {
	out, p := future.New[U]()
	f.OnDone(func(v T, err error) {
		if err != nil {
			p.Reject(err)
			return
		}
		if !c.goOwned(func(cctx context.Context) {
			ctx, release := mergeCancel(ctx, cctx)
			defer release()
			p.Complete(fn(ctx, v))
		}) {
			p.Reject(ErrMonitorClosed)
		}
	})
	return out
}
