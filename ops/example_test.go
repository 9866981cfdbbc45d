package ops_test

import (
	"context"
	"fmt"
	"time"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/ops"
)

// A create whose answer is lost after Nova made the server: the create
// finds the server under its idempotency key instead of booting another.
func ExampleCloud_CreateServer() {
	ctx := context.Background()
	plan := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerCreate, Nth: 1, Kind: cloudsim.FaultLoseResponse}}}
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Faults: plan})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	cloud, err := ops.Dial(ctx, authFor(sim, false), ops.Config{MinInterval: 20 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cloud.Close()
	op, err := cloud.CreateServer(ctx, ops.ServerCreateOpts{Name: "web-1", FlavorRef: "1",
		ImageRef: cloudsim.CirrosImageID, Networks: "none"})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv, err := op.Result(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(srv.Status, "recovered:", op.Initial().Recovered, "servers:", len(sim.Servers(false)))
	// Output:
	// ACTIVE recovered: true servers: 1
}

// A re-run with the key of a run whose build failed removes the ERROR
// server the first run kept, and boots a new one.
func ExampleWithIdempotencyKey() {
	ctx := context.Background()
	plan := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerCreate, Nth: 1, Kind: cloudsim.FaultError}}}
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Faults: plan})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sim.Close()
	cloud, err := ops.Dial(ctx, authFor(sim, false), ops.Config{MinInterval: 20 * time.Millisecond})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cloud.Close()
	opts := ops.ServerCreateOpts{Name: "job-7", FlavorRef: "1", ImageRef: cloudsim.CirrosImageID, Networks: "none"}
	for _, cleanup := range []ops.Cleanup{ops.CleanupKeep, ops.CleanupDelete} {
		op, err := cloud.CreateServer(ctx, opts, ops.WithIdempotencyKey("job-7/boot"), ops.WithCleanup(cleanup))
		if err != nil {
			fmt.Println(err)
			return
		}
		_, err = op.Result(ctx)
		fmt.Println("error:", err != nil, "adopted:", op.Initial().Adopted)
		for _, s := range sim.Servers(false) {
			fmt.Println(" ", s.Name, s.Status)
		}
	}
	// Output:
	// error: true adopted: false
	//   job-7 ERROR
	// error: false adopted: false
	//   job-7 ACTIVE
}
