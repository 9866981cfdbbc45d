package future_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ostask/ostask/future"
)

func ExampleNew() {
	f, p := future.New[string]()
	go p.Resolve("ACTIVE")

	status, err := f.Result(context.Background())
	fmt.Println(status, err)
	fmt.Println("second resolve wins:", p.Resolve("ERROR"))
	// Output:
	// ACTIVE <nil>
	// second resolve wins: false
}

func ExampleGo() {
	ctx := context.Background()
	f := future.Go(ctx, func(ctx context.Context) (int, error) {
		return 6 * 7, nil
	})
	v, err := f.Result(ctx)
	fmt.Println(v, err)

	crashed := future.Go(ctx, func(ctx context.Context) (int, error) {
		panic("nil flavor")
	})
	_, err = crashed.Result(ctx)
	var pe *future.PanicError
	fmt.Println(errors.As(err, &pe), pe.Value)
	// Output:
	// 42 <nil>
	// true nil flavor
}

func ExampleThen() {
	ctx := context.Background()
	server := future.Resolved("srv-1") // e.g. a server create that reached ACTIVE
	attached := future.Then(ctx, server, func(ctx context.Context, id string) *future.Future[string] {
		// The next asynchronous step starts only when the first one succeeded.
		return future.Go(ctx, func(context.Context) (string, error) {
			return "vol-1 attached to " + id, nil
		})
	})
	fmt.Println(attached.Result(ctx))
	// Output:
	// vol-1 attached to srv-1 <nil>
}

func ExampleMap() {
	f := future.Map(future.Resolved("srv-1"), func(id string) (string, error) {
		return strings.ToUpper(id), nil
	})
	fmt.Println(f.Result(context.Background()))
	// Output:
	// SRV-1 <nil>
}

func ExampleAll() {
	a, pa := future.New[string]()
	b, pb := future.New[string]()
	all := future.All(a, b)
	pb.Resolve("second") // completion order does not matter
	pa.Resolve("first")
	fmt.Println(all.Result(context.Background()))

	errQuota := errors.New("quota exceeded")
	c, _ := future.New[string]() // never completes
	failed := future.All(c, future.Failed[string](errQuota))
	_, err := failed.Result(context.Background()) // fails fast, does not wait for c
	fmt.Println(errors.Is(err, errQuota))
	// Output:
	// [first second] <nil>
	// true
}

func ExampleAny() {
	errDown := errors.New("region down")
	f := future.Any(future.Failed[string](errDown), future.Resolved("region-b"))
	fmt.Println(f.Result(context.Background()))

	_, err := future.Any(future.Failed[string](errDown)).Result(context.Background())
	fmt.Println(errors.Is(err, future.ErrAllFailed), errors.Is(err, errDown))
	// Output:
	// region-b <nil>
	// true true
}

func ExampleAsCompleted() {
	ctx := context.Background()
	a, pa := future.New[string]()
	b, pb := future.New[string]()
	c, pc := future.New[string]()
	pb.Resolve("b") // already complete: yielded first

	resolveNext := []func(){func() { pc.Resolve("c") }, func() { pa.Resolve("a") }, func() {}}
	for f := range future.AsCompleted(ctx, a, b, c) {
		v, _ := f.Result(ctx)
		fmt.Println(v)
		resolveNext[0]()
		resolveNext = resolveNext[1:]
	}
	// Output:
	// b
	// c
	// a
}

func ExampleFuture_OnDone() {
	f, p := future.New[int]()
	f.OnDone(func(v int, err error) {
		// Runs on the goroutine that calls Resolve, before Resolve returns.
		fmt.Println("done:", v, err)
	})
	p.Resolve(1)
	f.OnDone(func(v int, err error) {
		// Already complete: runs now, on this goroutine.
		fmt.Println("late:", v, err)
	})
	// Output:
	// done: 1 <nil>
	// late: 1 <nil>
}

func ExampleFuture_Result() {
	f, _ := future.New[int]() // never completes
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := f.Result(ctx)
	fmt.Println(errors.Is(err, future.ErrNotDone), errors.Is(err, context.Canceled), f.Ready())
	// Output:
	// true true false
}
