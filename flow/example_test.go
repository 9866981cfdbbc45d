package flow_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ostask/ostask/flow"
)

// Build a graph flow and compile it: the order comes from what each task
// requires and provides.
func ExampleCompile() {
	noop := func(context.Context, flow.Inputs) (string, error) { return "", nil }
	f := flow.Graph("boot",
		flow.TaskFunc("attach", noop, flow.Requires("server", "volume")),
		flow.TaskFunc("create-server", noop, flow.Requires("image"), flow.Provides("server")),
		flow.TaskFunc("create-volume", noop, flow.Provides("volume")),
	)
	c, err := flow.Compile(f, flow.WithInputs("image"))
	if err != nil {
		panic(err)
	}
	for _, n := range c.Nodes() {
		if n.Kind == flow.NodeTask {
			fmt.Println(n.Name)
		}
	}
	fmt.Println("needs from the store:", c.Inputs())

	_, err = flow.Compile(f)
	var missing *flow.MissingError
	fmt.Println(errors.As(err, &missing), missing.Names())
	// Output:
	// create-server
	// create-volume
	// attach
	// needs from the store: [image]
	// true [image]
}
