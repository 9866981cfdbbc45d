package future

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotDone is wrapped by the error Result and ResultTimeout return when they
// stop waiting before the future completes. It tells "I stopped waiting" apart
// from "the work failed": errors.Is(err, ErrNotDone) is never true for an
// error the future itself was completed with (unless the producer chose it).
var ErrNotDone = errors.New("future: not done")

// closed is the Done channel of every future that completed before anyone
// asked for its channel; sharing it saves one channel per such future.
var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// Future is the read side of a result that arrives later. It is completed
// exactly once, with a value or an error, and never changes afterwards.
// All methods are safe for concurrent use. Create futures with New, Go,
// Resolved or Failed; the zero Future is pending forever.
//
// A pending Future[T] is one 64-byte allocation for T of up to 8 bytes,
// plus 16 bytes per pending callback; a Done channel (112 bytes) is added
// only when someone waits.
type Future[T any] struct {
	// done is set, after val and err are written and while mu is held, when
	// the future completes. Once set, val and err never change and may be
	// read without mu.
	done atomic.Bool
	mu   sync.Mutex
	// ch is closed on completion. It is created lazily by Done (guarded by
	// mu); if still nil at completion, Done returns the shared closed channel.
	ch  chan struct{}
	val T
	err error
	// cbs holds callbacks added while pending, newest first (a list, not a
	// slice, to keep the struct small); guarded by mu and nil once the future
	// is done (the completer owns the taken list).
	cbs *callback[T]
}

type callback[T any] struct {
	fn   func(T, error)
	next *callback[T]
}

// Promise is the write side of a Future. It is a small value; copies refer
// to the same future. The zero Promise is not usable: get one from New.
type Promise[T any] struct {
	f *Future[T]
}

// New returns a pending future and the promise that completes it.
func New[T any]() (*Future[T], Promise[T]) {
	f := new(Future[T])
	return f, Promise[T]{f: f}
}

// Resolved returns a future already completed with v.
func Resolved[T any](v T) *Future[T] {
	f := &Future[T]{val: v}
	f.done.Store(true)
	return f
}

// Failed returns a future already completed with err. It panics if err is
// nil, because a nil error would make the future a success with a zero value.
func Failed[T any](err error) *Future[T] {
	if err == nil {
		panic("future: Failed with nil error")
	}
	f := &Future[T]{err: err}
	f.done.Store(true)
	return f
}

// Future returns the future this promise completes.
func (p Promise[T]) Future() *Future[T] { return p.f }

// Resolve completes the future with v. It reports whether this call
// completed the future; if it was already complete, Resolve does nothing and
// returns false. Pending OnDone callbacks run on the calling goroutine
// before Resolve returns (see OnDone).
func (p Promise[T]) Resolve(v T) bool { return p.f.complete(v, nil) }

// Reject completes the future with err, like Resolve. It panics if err is
// nil (use Resolve for success).
func (p Promise[T]) Reject(err error) bool {
	if err == nil {
		panic("future: Reject with nil error")
	}
	var zero T
	return p.f.complete(zero, err)
}

// Complete completes the future with (v, err): a failure if err is not nil,
// otherwise a success with v. It returns false if the future was already
// complete. Complete is the natural sink for a func() (T, error).
func (p Promise[T]) Complete(v T, err error) bool {
	if err != nil {
		var zero T
		v = zero
	}
	return p.f.complete(v, err)
}

func (f *Future[T]) complete(v T, err error) bool {
	f.mu.Lock()
	if f.done.Load() {
		f.mu.Unlock()
		return false
	}
	f.val, f.err = v, err
	f.done.Store(true)
	cbs := f.cbs
	f.cbs = nil
	if f.ch != nil {
		close(f.ch)
	}
	f.mu.Unlock()
	runAll(cbs, v, err)
	return true
}

// Done returns a channel that is closed when the future completes. Every
// call returns the same channel for a pending future.
func (f *Future[T]) Done() <-chan struct{} {
	if f.done.Load() {
		return f.doneChan()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done.Load() {
		return f.doneChan()
	}
	if f.ch == nil {
		f.ch = make(chan struct{})
	}
	return f.ch
}

// doneChan returns the channel of a completed future: the one closed at
// completion if a waiter created it, else the shared closed channel. Reading
// f.ch without mu is safe: it is only written while pending, under mu, and
// the completer publishes done after acquiring mu, so an observer of done
// also observes the last write of ch.
func (f *Future[T]) doneChan() <-chan struct{} {
	if f.ch != nil {
		return f.ch
	}
	return closed
}

// Ready reports whether the future has completed. It never blocks.
func (f *Future[T]) Ready() bool { return f.done.Load() }

// Peek returns the result without blocking: (value, error, true) once the
// future is complete, (zero, nil, false) while it is pending.
func (f *Future[T]) Peek() (T, error, bool) {
	if !f.done.Load() {
		var zero T
		return zero, nil, false
	}
	return f.val, f.err, true
}

// Result waits until the future completes and returns its value and error.
// If ctx ends first, Result returns an error wrapping ErrNotDone and
// ctx.Err() (and context.Cause(ctx) when it differs); the future is not
// affected and can be waited on again. A future that is already complete
// returns its result even if ctx is done.
func (f *Future[T]) Result(ctx context.Context) (T, error) {
	if f.done.Load() {
		return f.val, f.err
	}
	select {
	case <-f.Done():
		return f.val, f.err
	case <-ctx.Done():
		if f.done.Load() { // both ready: prefer the result
			return f.val, f.err
		}
		var zero T
		return zero, fmt.Errorf("%w: %w", ErrNotDone, ctxErr(ctx))
	}
}

// ResultTimeout is Result with a deadline of d from now. On timeout the
// error wraps ErrNotDone and context.DeadlineExceeded.
func (f *Future[T]) ResultTimeout(d time.Duration) (T, error) {
	if f.done.Load() {
		return f.val, f.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return f.Result(ctx)
}

// OnDone registers cb to run exactly once with the future's result.
//
// Where it runs: if the future is pending, cb runs later on the goroutine
// that completes the future (inside Resolve, Reject or Complete), after Done
// is closed, in registration order. If the future is already complete, cb
// runs on the calling goroutine before OnDone returns. No goroutine is
// started per callback, so cb must be quick and must not block; hand slow
// work to a goroutine of your own.
//
// Panics: a panicking callback does not stop the other callbacks, and the
// future stays complete with its result. After all callbacks have run, the
// first panic is re-raised on the goroutine that ran them, as a *PanicError
// holding the value and the stack of the original panic: a panic is a bug,
// and it is not silently dropped.
func (f *Future[T]) OnDone(cb func(T, error)) {
	if cb == nil {
		panic("future: OnDone with nil callback")
	}
	if !f.done.Load() {
		f.mu.Lock()
		if !f.done.Load() {
			f.cbs = &callback[T]{fn: cb, next: f.cbs}
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
	}
	if pe := call(cb, f.val, f.err); pe != nil {
		panic(pe)
	}
}

// runAll runs every callback in registration order, then re-raises the
// first panic, if any.
func runAll[T any](cbs *callback[T], v T, err error) {
	var prev *callback[T]
	for cbs != nil { // reverse: the list is newest first
		cbs.next, prev, cbs = prev, cbs, cbs.next
	}
	var first *PanicError
	for cb := prev; cb != nil; cb = cb.next {
		if pe := call(cb.fn, v, err); pe != nil && first == nil {
			first = pe
		}
	}
	if first != nil {
		panic(first)
	}
}

func call[T any](cb func(T, error), v T, err error) (pe *PanicError) {
	defer func() {
		if r := recover(); r != nil {
			pe = newPanicError(r)
		}
	}()
	cb(v, err)
	return nil
}

// ctxErr is ctx.Err(), joined with context.Cause(ctx) when the cause says more.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("%w: %w", err, cause)
	}
	return err
}
