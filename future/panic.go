package future

import (
	"context"
	"fmt"
	"runtime/debug"
)

// PanicError is a panic recovered from user code (a Go function, a Then or
// Map step, an OnDone callback), carried as an error.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the goroutine's stack at the point of the panic.
	Stack []byte
}

func newPanicError(r any) *PanicError {
	if pe, ok := r.(*PanicError); ok { // already carried once: keep the original stack
		return pe
	}
	return &PanicError{Value: r, Stack: debug.Stack()}
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("future: panic: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns Value if it is an error, so errors.Is and errors.As see
// through a panic(err).
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// Go runs fn on a new goroutine and returns a future of its result. A panic
// in fn completes the future with a *PanicError. If ctx is already done, fn
// is not started and the future fails with ctx's error. The goroutine ends
// when fn returns, so fn must honour ctx to be stoppable.
func Go[T any](ctx context.Context, fn func(context.Context) (T, error)) *Future[T] {
	if ctx.Err() != nil {
		return Failed[T](ctxErr(ctx))
	}
	f, p := New[T]()
	go func() {
		p.Complete(protect(func() (T, error) { return fn(ctx) }))
	}()
	return f
}

// protect calls fn and turns a panic into a *PanicError.
func protect[T any](fn func() (T, error)) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero T
			v, err = zero, newPanicError(r)
		}
	}()
	return fn()
}
