package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

// Version is the release, set at build time with
// -ldflags "-X github.com/ostask/ostask/internal/cli.Version=v1.2.3".
// When empty, the module version and VCS revision Go recorded are shown.
var Version string

// versionString is what --version prints.
func versionString() string {
	v := Version
	bi, ok := debug.ReadBuildInfo()
	if v == "" {
		v = "(devel)"
		if ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	var extra []string
	if ok {
		var rev, when, dirty string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = ", modified"
				}
			}
		}
		if rev != "" {
			extra = append(extra, "commit "+rev[:min(12, len(rev))]+dirty)
		}
		if when != "" {
			extra = append(extra, when)
		}
		extra = append(extra, bi.GoVersion)
	}
	if len(extra) == 0 {
		return v
	}
	return v + " (" + strings.Join(extra, ", ") + ")"
}

// Exec runs the command line of this process: the first SIGINT or SIGTERM
// cancels the command, which then reports what it leaves behind; a second
// one ends the process at once. It returns the exit code.
func Exec() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After the first signal, restore the default: a second ends the
	// process, even while the command is reporting or cleaning up.
	go func() { <-ctx.Done(); stop() }()
	return Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

type argsKey struct{}

// argsOf returns the command line Main ran (for the resume commands).
func argsOf(ctx context.Context) []string {
	a, _ := ctx.Value(argsKey{}).([]string)
	return a
}

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
	err := root.ExecuteContext(context.WithValue(ctx, argsKey{}, args))
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
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("ostask {{.Version}}\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &ExitError{Code: 2, Err: fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})
	cf := &cloudFlags{}
	root.AddCommand(newDemoCmd(), newSimCmd(), newServerCmd(cf), newVolumeCmd(cf), newImageCmd(cf), newFlowCmd(cf), newMigrateCmd(), newTaskCmd(), newServeCmd(), newWorkerCmd())
	for _, c := range root.Commands() {
		switch c.Name() {
		case "server", "volume", "image":
			cf.register(c)
		}
	}
	markUsageErrors(root)
	return root
}

// markUsageErrors makes argument-count errors, missing required flags and
// unknown subcommands exit with code 2, like flag errors.
func markUsageErrors(c *cobra.Command) {
	if orig := c.Args; orig != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := orig(cmd, args); err != nil {
				return &ExitError{Code: 2, Err: fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())}
			}
			return nil
		}
	}
	if c.HasSubCommands() && c.RunE == nil && c.Run == nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &ExitError{Code: 2, Err: fmt.Errorf("unknown command %q for %q (see '%s --help')", args[0], cmd.CommandPath(), cmd.CommandPath())}
			}
			return nil
		}
		c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	}
	if req := c.Annotations[requiredAnnotation]; req != "" {
		prev := c.PreRunE
		c.PreRunE = func(cmd *cobra.Command, args []string) error {
			var missing []string
			for _, name := range strings.Split(req, ",") {
				if !cmd.Flags().Changed(name) {
					missing = append(missing, "--"+name)
				}
			}
			if len(missing) > 0 {
				return &ExitError{Code: 2, Err: fmt.Errorf("missing required flag %s (see '%s --help')", strings.Join(missing, ", "), cmd.CommandPath())}
			}
			if prev != nil {
				return prev(cmd, args)
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		markUsageErrors(sub)
	}
}

const requiredAnnotation = "ostask_required_flags"

// requireFlags marks flags as required; markUsageErrors checks them.
func requireFlags(c *cobra.Command, names ...string) {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	for _, n := range names {
		f := c.Flags().Lookup(n)
		f.Usage += " (required)"
	}
	if prev := c.Annotations[requiredAnnotation]; prev != "" {
		names = append(strings.Split(prev, ","), names...)
	}
	c.Annotations[requiredAnnotation] = strings.Join(names, ",")
}
