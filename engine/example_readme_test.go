package engine_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

// The README's tasks: a real deployment would call ops here and wait on
// the operations' futures (package tasks has such tasks ready-made).
func createVolume(ctx context.Context, in flow.Inputs) (string, error) { return "vol-1", nil }

func boot(ctx context.Context, in flow.Inputs) (string, error) {
	img, err := flow.Get[string](in, "image")
	if err != nil {
		return "", err
	}
	if img == "broken" {
		return "", errors.New("no valid host")
	}
	vol, _ := flow.Get[string](in, "volume")
	return "srv-on-" + vol, nil
}

func deleteServer(ctx context.Context, in flow.Inputs, server string, o flow.Outcome) error {
	fmt.Println("reverting boot, which failed:", o.Failed())
	return nil
}

// readmeDeploy is the README's flow snippet, byte for byte between the
// markers (internal/cli's README test checks it).
func readmeDeploy(ctx context.Context, img string) error {
	// readme:begin
	f := flow.Linear("deploy",
		flow.TaskFunc("create-volume", createVolume, flow.Provides("volume")),
		flow.TaskFunc("boot", boot, flow.Requires("volume", "image"), flow.Provides("server")).OnRevert(deleteServer),
	)
	e, err := engine.Run(ctx, f, engine.Parallel(8), engine.WithStore(map[string]any{"image": img}))
	var fe *engine.FlowError
	if errors.As(err, &fe) {
		// every task that ran was reverted, in reverse dependency order;
		// fe.Failures holds the original failure (fe.RevertFailures any revert failures)
		return fmt.Errorf("deploy %s: %w", fe.State, fe.Failures[0])
	}
	if err != nil {
		return err // the flow did not compile (missing inputs, cycles...) or ctx ended
	}
	server, err := engine.Fetch[string](e, "server")
	// readme:end
	fmt.Println(server, err)
	return nil
}

// The README's flow snippet, succeeding and then failing.
func Example_readme() {
	ctx := context.Background()
	fmt.Println(readmeDeploy(ctx, "cirros"))
	fmt.Println(readmeDeploy(ctx, "broken"))
	// Output:
	// srv-on-vol-1 <nil>
	// <nil>
	// reverting boot, which failed: true
	// deploy REVERTED: boot: no valid host
}
