package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/cloudsim"
	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/tasks"
)

// Run the ready-made boot-from-volume flow against an embedded cloudsim,
// then again with a cloud whose server builds fail: the second run is
// reverted and leaves nothing behind.
func Example() {
	ctx := context.Background()
	run := func(plan *cloudsim.FaultPlan) {
		sim, err := cloudsim.Start(ctx, cloudsim.Config{Faults: plan})
		if err != nil {
			panic(err)
		}
		defer sim.Close()
		cred := sim.DemoCredentials()
		cloud, err := ops.Dial(ctx, ops.Auth{Options: gophercloud.AuthOptions{IdentityEndpoint: cred.AuthURL,
			Username: cred.Username, Password: cred.Password, DomainName: cred.DomainName, TenantName: cred.ProjectName}},
			ops.Config{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond})
		if err != nil {
			panic(err)
		}
		defer cloud.Close()

		def, _ := tasks.Lookup("boot-from-volume")
		f, store, err := def.Prepare(cloud, map[string]any{
			tasks.RunID: "example-1", tasks.Name: "web", tasks.Flavor: "1",
			tasks.Image: cloudsim.CirrosImageID, tasks.Network: "none",
		}, tasks.WithRetries(1))
		if err != nil {
			panic(err)
		}
		e, err := engine.New(f, engine.Parallel(0), engine.WithStore(store))
		if err != nil {
			panic(err)
		}
		err = e.Run(ctx)
		server, _ := engine.Fetch[string](e, tasks.Server)
		fmt.Println(e.State(), "server made:", server != "")
		var fe *engine.FlowError
		var fault *ops.FaultError
		if errors.As(err, &fe) && errors.As(err, &fault) {
			fmt.Printf("%s failed: %s %s: %s\n", fe.Failures[0].Atom, fault.Kind, fault.Status, fault.Message)
		}
		fmt.Println("servers:", len(sim.Servers(false)), "volumes:", len(sim.Volumes()))
	}
	run(nil)
	run(&cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerCreate, Kind: cloudsim.FaultError, Message: "No valid host"}}})
	// Output:
	// SUCCESS server made: true
	// servers: 1 volumes: 2
	// REVERTED server made: false
	// boot-server failed: server ERROR: No valid host
	// servers: 0 volumes: 0
}
