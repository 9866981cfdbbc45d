package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/sqlite"
)

// A run recorded in SQLite, taken over by a second owner: the first
// owner's next write is fenced.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ostask-example")
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "ostask.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	run, _ := db.Create(ctx, store.NewRun{ID: "run-1", Flow: "hello", Version: "1", Owner: "first"})
	f := flow.Linear("hello", flow.TaskFunc("greet", func(ctx context.Context, in flow.Inputs) (string, error) {
		return "hello", nil
	}))
	e, _ := engine.New(f, engine.WithStorage(run))
	fmt.Println(e.Run(ctx))

	info, _ := db.Get(ctx, "run-1")
	fmt.Println(info.Flow, info.State, info.Epoch)

	second, _ := db.Acquire(ctx, "run-1", "second")
	err = run.SaveFlow(ctx, flow.StateSuccess, flow.StatePending)
	var fe *store.FencedError
	fmt.Println(errors.As(err, &fe), fe.Held, fe.Current, second.Epoch())
	// Output:
	// <nil>
	// hello SUCCESS 1
	// true 1 2 2
}

// Runs of one process share commits: their writes that are ready at the
// same moment go in one transaction, and each engine still goes on only
// once its own transition is durable.
func ExampleWithGroupCommit() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "ostask-example")
	defer os.RemoveAll(dir)
	db, err := sqlite.Open(ctx, filepath.Join(dir, "ostask.db"), store.WithGroupCommit(32))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	step := func(name string) flow.Task {
		return flow.TaskFunc(name, func(ctx context.Context, in flow.Inputs) (string, error) { return name, nil })
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run, err := db.Create(ctx, store.NewRun{ID: fmt.Sprint("run-", i), Flow: "steps", Version: "1"})
			if err != nil {
				errs[i] = err
				return
			}
			e, err := engine.New(flow.Linear("steps", step("a"), step("b"), step("c")), engine.WithStorage(run))
			if err == nil {
				err = e.Run(ctx)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	fmt.Println(errors.Join(errs...))
	runs, _ := db.List(ctx, store.RunFilter{State: "SUCCESS"})
	fmt.Println(len(runs), "runs succeeded")
	// Output:
	// <nil>
	// 8 runs succeeded
}
