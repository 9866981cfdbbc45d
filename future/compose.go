package future

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync/atomic"
)

// ErrNoFutures is the error of Any called with no futures.
var ErrNoFutures = errors.New("future: no futures")

// ErrAllFailed is wrapped by the error of Any when every input failed.
var ErrAllFailed = errors.New("future: all futures failed")

// ErrNilFuture is the error of a Then step whose function returned nil.
var ErrNilFuture = errors.New("future: step returned a nil future")

// Then continues f with another asynchronous step: when f succeeds with v,
// fn(ctx, v) is called on a new goroutine (it may block briefly, e.g. for
// the synchronous part of an operation) and the returned future's result
// becomes the result of Then's future.
//
// Errors short-circuit: if f fails, fn is not called and the result fails
// with f's error unchanged. ctx bounds the whole step: if ctx is done before
// f completes, fn is never started, and if ctx ends at any point the result
// fails at once with ctx's error; the futures involved are not affected. A
// panic in fn fails the result with a *PanicError; a nil future from fn fails
// it with ErrNilFuture.
func Then[T, U any](ctx context.Context, f *Future[T], fn func(context.Context, T) *Future[U]) *Future[U] {
	if ctx.Err() != nil {
		return Failed[U](ctxErr(ctx))
	}
	out, p := New[U]()
	p.rejectOnCancel(ctx)
	f.OnDone(func(v T, err error) {
		if err != nil {
			p.Reject(err)
			return
		}
		if out.Ready() || ctx.Err() != nil {
			return // cancelled: rejectOnCancel completes out
		}
		go func() {
			next, err := protect(func() (*Future[U], error) {
				return fn(ctx, v), nil
			})
			switch {
			case err != nil:
				p.Reject(err)
			case next == nil:
				p.Reject(ErrNilFuture)
			default:
				next.OnDone(func(u U, err error) { p.Complete(u, err) })
			}
		}()
	})
	return out
}

// rejectOnCancel fails p's future with ctx's error as soon as ctx ends, and
// releases the context hook once the future completes either way.
func (p Promise[T]) rejectOnCancel(ctx context.Context) {
	if ctx.Done() == nil {
		return // never cancelled
	}
	stop := context.AfterFunc(ctx, func() { p.Reject(ctxErr(ctx)) })
	p.f.OnDone(func(T, error) { stop() })
}

// Map transforms f's value with fn. fn runs synchronously on the goroutine
// that completes f (or on the caller if f is already complete), so it must
// be quick; use Then for anything that blocks. If f fails, fn is not called
// and the result fails with f's error. A panic in fn fails the result with a
// *PanicError.
func Map[T, U any](f *Future[T], fn func(T) (U, error)) *Future[U] {
	out, p := New[U]()
	f.OnDone(func(v T, err error) {
		if err != nil {
			p.Reject(err)
			return
		}
		p.Complete(protect(func() (U, error) { return fn(v) }))
	})
	return out
}

// All returns a future of every input's value, in input order. It fails as
// soon as any input fails, with that input's error unchanged, without waiting
// for the others. With no inputs it resolves to an empty slice.
func All[T any](futs ...*Future[T]) *Future[[]T] {
	if len(futs) == 0 {
		return Resolved([]T{})
	}
	out, p := New[[]T]()
	vals := make([]T, len(futs))
	var left atomic.Int64
	left.Store(int64(len(futs)))
	for i, f := range futs {
		f.OnDone(func(v T, err error) {
			if err != nil {
				p.Reject(err)
				return
			}
			vals[i] = v // distinct index per input; read only after left reaches 0
			if left.Add(-1) == 0 {
				p.Resolve(vals)
			}
		})
	}
	return out
}

// Any returns a future of the first input to succeed. If every input fails,
// the result fails with an error wrapping ErrAllFailed and each input's
// error (in input order), so errors.Is and errors.As reach all of them. With
// no inputs it fails with ErrNoFutures.
func Any[T any](futs ...*Future[T]) *Future[T] {
	if len(futs) == 0 {
		return Failed[T](ErrNoFutures)
	}
	out, p := New[T]()
	errs := make([]error, len(futs))
	var left atomic.Int64
	left.Store(int64(len(futs)))
	for i, f := range futs {
		f.OnDone(func(v T, err error) {
			if err == nil {
				p.Resolve(v)
				return
			}
			errs[i] = err
			if left.Add(-1) == 0 {
				p.Reject(fmt.Errorf("%w (%d): %w", ErrAllFailed, len(errs), errors.Join(errs...)))
			}
		})
	}
	return out
}

// AsCompleted yields the given futures in the order they complete; futures
// already complete come first, in input order. Each range over the result
// waits afresh. Iteration ends after the last future, when the loop breaks,
// or as soon as ctx is done (check ctx.Err() to tell these apart). It starts
// no goroutines: each future gets a callback that does a non-blocking send
// to a buffer sized for all of them, so stopping early leaks nothing but
// those small callbacks, which run and are dropped when the futures complete.
func AsCompleted[T any](ctx context.Context, futs ...*Future[T]) iter.Seq[*Future[T]] {
	return func(yield func(*Future[T]) bool) {
		ch := make(chan *Future[T], len(futs))
		for _, f := range futs {
			f.OnDone(func(T, error) { ch <- f })
		}
		for range futs {
			if ctx.Err() != nil {
				return
			}
			select {
			case f := <-ch:
				if !yield(f) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}
}
