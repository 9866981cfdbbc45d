package ops

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/future"
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
	// Adopted is set when a create found and adopted an existing resource
	// by its idempotency key instead of making a new one.
	Adopted bool
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

// callRetry runs one synchronous HTTP call, retrying it (after backoff)
// while it fails with throttling or server errors, up to attempts times.
// recover, if set, runs after an ambiguous failure to find out whether the
// call took effect; when it reports done, callRetry stops there.
func callRetry(ctx context.Context, attempts int, call func(ctx context.Context) error, recover func(ctx context.Context) (bool, error)) error {
	var err error
	for i := 1; ; i++ {
		err = call(ctx)
		if err == nil {
			return nil
		}
		if recover != nil && mayHaveCommitted(err) {
			ok, rerr := recover(ctx)
			if rerr == nil && ok {
				return nil
			}
		}
		var ue gophercloud.ErrUnexpectedResponseCode
		retryable := ambiguous(err) || (errors.As(err, &ue) && (ue.Actual == 429 || ue.Actual >= 500))
		if !retryable || i >= attempts {
			return err
		}
		d := time.Duration(float64(time.Second<<min(i-1, 4)) * (0.8 + 0.4*rand.Float64()))
		if errors.As(err, &ue) {
			d = max(d, retryAfter(ue.ResponseHeader))
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}

// attemptSpec describes a create that can be retried with cleanup.
type attemptSpec[T any] struct {
	kind Kind
	op   string
	// start makes the call of one attempt (adopting an existing resource
	// by idempotency key where it can) and returns the resource id and the
	// future of its completion.
	start func(ctx context.Context, attempt int) (Initial, *future.Future[T], error)
	// cleanup deletes the failed resource id and waits until it is gone.
	cleanup func(ctx context.Context, id string) error
}

// runAttempts runs attempt 1 synchronously (its error is returned at
// once) and the later ones in the background after cleanup, until one
// succeeds or o.attempts are used up.
func runAttempts[T any](ctx context.Context, c *Cloud, o callOpts, spec attemptSpec[T]) (*Operation[T], error) {
	in, f, err := spec.start(ctx, 1)
	if err != nil {
		return nil, err
	}
	fut, p := future.New[T]()
	op := &Operation[T]{Future: fut}
	op.setAttempt(in, 1)
	var errs []error
	var onDone func(attempt int, id string) func(T, error)
	onDone = func(attempt int, id string) func(T, error) {
		return func(v T, err error) {
			if err == nil {
				p.Resolve(v)
				return
			}
			errs = append(errs, err)
			op.mu.Lock()
			op.errs = append(op.errs, err)
			op.mu.Unlock()
			if attempt >= o.attempts || !Retryable(err) || ctx.Err() != nil {
				if len(errs) == 1 {
					p.Reject(err)
				} else {
					p.Reject(&RetriesExhaustedError{Op: string(spec.kind) + " " + spec.op, Attempts: errs})
				}
				return
			}
			// Never block the monitor goroutine: clean up and retry on a
			// goroutine of the Cloud's.
			started := c.goOwned(func(cctx context.Context) {
				// The next attempt lives until its own future completes, or
				// until the caller's ctx or the Cloud ends.
				actx, release := mergeCancel(ctx, cctx)
				fail := func(e error) {
					release()
					errs = append(errs, e)
					p.Reject(&RetriesExhaustedError{Op: string(spec.kind) + " " + spec.op, Attempts: errs})
				}
				if o.cleanup == CleanupDelete && id != "" {
					if cerr := spec.cleanup(actx, id); cerr != nil {
						release()
						p.Reject(&CleanupError{Kind: spec.kind, ID: id, Attempt: err, Err: cerr})
						return
					}
				}
				if werr := sleepCtx(actx, backoffDelay(o, attempt, err)); werr != nil {
					fail(werr)
					return
				}
				next := attempt + 1
				in, f, serr := spec.start(actx, next)
				if serr != nil {
					fail(serr)
					return
				}
				op.setAttempt(in, next)
				cb := onDone(next, in.ID)
				f.OnDone(func(v T, err error) {
					release()
					cb(v, err)
				})
			})
			if !started {
				p.Reject(&RetriesExhaustedError{Op: string(spec.kind) + " " + spec.op, Attempts: append(errs, ErrMonitorClosed)})
			}
		}
	}
	f.OnDone(onDone(1, in.ID))
	return op, nil
}

func backoffDelay(o callOpts, attempt int, err error) time.Duration {
	b := o.backoff
	d := b.Initial
	for i := 1; i < attempt; i++ {
		d = time.Duration(float64(d) * b.Multiplier)
		if d > b.Max {
			d = b.Max
			break
		}
	}
	if b.Jitter > 0 {
		d = time.Duration(float64(d) * (1 - b.Jitter*rand.Float64()))
	}
	var ue gophercloud.ErrUnexpectedResponseCode
	if errors.As(err, &ue) {
		d = max(d, retryAfter(ue.ResponseHeader))
	}
	return d
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
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

// callAttempts bounds the retries of one synchronous call on throttling
// (429/503) and server errors: with the backoff of callRetry, 5 attempts
// ride out about 15 s of trouble.
const callAttempts = 5

// begin makes the synchronous call of a single-attempt operation on id:
// it checks the options, notes the cloud's time (the window the monitor
// must cover starts there), makes the call, retrying throttling and server
// errors, and returns its answer. code is the success status the API
// documents for the call.
func (c *Cloud) begin(ctx context.Context, id string, code int, options []Option,
	call func(ctx context.Context) gophercloud.Result) (callOpts, Initial, time.Time, error) {
	o, err := c.resolve(options)
	if err != nil {
		return o, Initial{}, time.Time{}, err
	}
	since := c.serverNow()
	var res gophercloud.Result
	err = callRetry(ctx, callAttempts, func(ctx context.Context) error {
		res = call(ctx)
		return res.Err
	}, nil)
	if err != nil {
		return o, Initial{}, since, err
	}
	in := initialFrom(res, id)
	in.StatusCode = code
	return o, in, since, nil
}

// deleteOp runs a delete: a 404 means already gone (resolved at once);
// otherwise the operation resolves when m sees the resource gone, or
// fails with what failure returns for an observation (nil: keep waiting).
func deleteOp(ctx context.Context, c *Cloud, m *monitor, id string, code int, options []Option,
	call func(ctx context.Context) gophercloud.Result, failure func(in *Initial, ob *observation) error) (*Operation[struct{}], error) {
	o, in, since, err := c.begin(ctx, id, code, options, call)
	if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return &Operation[struct{}]{Future: future.Resolved(struct{}{}), initial: Initial{ID: id, StatusCode: http.StatusNotFound}}, nil
	}
	if err != nil {
		return nil, err
	}
	w := &watch{id: id, op: "delete", since: since, wantGone: true, judge: func(ob *observation) (verdict, error) {
		if ob.Gone {
			return succeeded, nil
		}
		if err := failure(&in, ob); err != nil {
			return failed, err
		}
		return pending, nil
	}}
	f := waitWatch(ctx, m, w, o.timeout, func(*observation) (struct{}, error) { return struct{}{}, nil })
	return &Operation[struct{}]{Future: f, initial: in, attempts: 1}, nil
}

// found is a resource found under an idempotency key.
type found struct {
	id     string
	seenAt time.Time // its last change (cloud clock): its watch starts there
	broken bool      // in ERROR/error: not worth adopting before a new call
}

// keyedCreate is a create that records an idempotency key in the
// resource's metadata and adopts what exists under it.
type keyedCreate[T any] struct {
	key    string // "" for none
	keySet bool   // given by the caller: look before the first call, too
	find   func(ctx context.Context) (*found, error)
	post   func(ctx context.Context) (res gophercloud.Result, id string, err error)
	wait   func(ctx context.Context, id string, since time.Time, in *Initial) *future.Future[T]
}

// start is the attemptSpec.start of the create. A create re-run with a
// known key (after a crash, say) adopts what an earlier run made; attempts
// after the first look too, in case the last cleanup raced a late build;
// and a call that failed ambiguously (a lost response) looks before
// calling again.
func (k keyedCreate[T]) start(c *Cloud) func(ctx context.Context, attempt int) (Initial, *future.Future[T], error) {
	return func(ctx context.Context, attempt int) (Initial, *future.Future[T], error) {
		since := c.serverNow()
		if k.key != "" && (k.keySet || attempt > 1) {
			f, err := k.find(ctx)
			if err != nil {
				return Initial{}, nil, err
			}
			if f != nil && !f.broken {
				in := Initial{ID: f.id, Adopted: true, StatusCode: http.StatusOK}
				return in, k.wait(ctx, f.id, f.seenAt, &in), nil
			}
		}
		var res gophercloud.Result
		var id string
		var adopted *found
		err := callRetry(ctx, callAttempts, func(ctx context.Context) (err error) {
			res, id, err = k.post(ctx)
			return err
		}, func(ctx context.Context) (bool, error) {
			if k.key == "" {
				return false, nil
			}
			f, err := k.find(ctx)
			adopted = f
			return f != nil, err
		})
		if err != nil {
			return Initial{}, nil, err
		}
		in := initialFrom(res, id)
		if adopted != nil {
			in = Initial{ID: adopted.id, Adopted: true, StatusCode: http.StatusOK}
		}
		return in, k.wait(ctx, in.ID, since, &in), nil
	}
}

// createKey is the idempotency key of a create: the caller's, or a new
// one when the create may be retried (a retry must never duplicate).
func createKey(o callOpts) string {
	if o.key == "" && o.attempts > 1 {
		return newKey()
	}
	return o.key
}

// withKey returns a copy of metadata that records key (if any).
func withKey(metadata map[string]string, key string) map[string]string {
	if key == "" {
		return metadata
	}
	md := make(map[string]string, len(metadata)+1)
	for k, v := range metadata {
		md[k] = v
	}
	md[IdempotencyMetadataKey] = key
	return md
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
