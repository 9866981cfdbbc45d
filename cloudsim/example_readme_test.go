package cloudsim_test

import (
	"context"
	"fmt"

	"github.com/ostask/ostask/cloudsim"
)

// readmeSim is the README's cloudsim snippet, byte for byte between the
// markers (internal/cli's README test checks it).
func readmeSim(ctx context.Context) error {
	// readme:begin
	sim, err := cloudsim.Start(ctx, cloudsim.Config{
		Faults: &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{
			cloudsim.OpServerCreate: {Error: 0.2, Hang: 0.05},
		}},
	})
	if err != nil {
		return err
	}
	defer sim.Close()
	creds := sim.DemoCredentials() // users demo and admin, password "secret", domain Default
	yaml := sim.CloudsYAML("ostask-sim")
	fmt.Println(creds.AuthURL == sim.AuthURL(), len(yaml) > 0, len(sim.Servers(false)))
	// also: sim.Counters() (requests per route), sim.Volumes(), sim.Images()
	// readme:end
	return nil
}

// The README's cloudsim snippet.
func Example_readme() {
	if err := readmeSim(context.Background()); err != nil {
		panic(err)
	}
	// Output: true true 0
}
