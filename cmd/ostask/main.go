// Command ostask runs OpenStack background operations as futures, flows
// and durable tasks, and runs cloudsim, the embedded OpenStack-compatible
// cloud. Run `ostask --help` for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/ostask/ostask/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
