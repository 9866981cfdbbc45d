package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// ExitError carries a process exit code with its one-line reason.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// usageError marks bad command-line input (exit code 2).
func usageError(format string, args ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, args...)}
}

// Main runs the ostask command line with args and returns the exit code:
// 0 on success, 1 on failure, 2 on bad usage, 130 when interrupted.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "ostask: %v\n", err)
	var ee *ExitError
	switch {
	case errors.As(err, &ee):
		return ee.Code
	case errors.Is(err, context.Canceled):
		return 130
	}
	return 1
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "ostask",
		Short: "Reliable OpenStack background operations: futures, flows and durable tasks",
		Long: `ostask turns OpenStack's 202-Accepted operations (boot, delete, resize, snapshot,
volume create/attach/...) into futures that resolve when the cloud has really
finished, watched by one batched monitor per cloud, retried with cleanup.

Cloud selection works like the openstack CLI: --os-cloud / OS_CLOUD with
clouds.yaml, or OS_* variables; --sim starts an embedded cloudsim instead.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: 2, Err: fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	cf := &cloudFlags{}
	root.AddCommand(newDemoCmd(), newSimCmd(), newServerCmd(cf), newVolumeCmd(cf))
	for _, c := range root.Commands() {
		if c.Name() == "server" || c.Name() == "volume" {
			cf.register(c)
		}
	}
	return root
}
