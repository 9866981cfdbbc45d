// Package future provides Future[T], a handle to a result that arrives later.
//
// A Future is completed exactly once, by its Promise (or by Go), with a value
// or an error. Readers wait with Result, poll with Ready or Peek, select on
// Done, or register OnDone callbacks; Then, Map, All, Any and AsCompleted
// compose futures without extra goroutines except where a step may block.
//
//	f, p := future.New[string]()
//	go func() { p.Resolve("ACTIVE") }()
//	status, err := f.Result(ctx) // waits, or returns early with ctx's error
//
// Every ostask background operation returns a Future; this package knows
// nothing about OpenStack.
package future
