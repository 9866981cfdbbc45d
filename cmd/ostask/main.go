// Command ostask runs OpenStack background operations as futures, flows
// and durable tasks, and runs cloudsim, the embedded OpenStack-compatible
// cloud. Run `ostask --help` for the commands.
package main

import (
	"os"

	"github.com/ostask/ostask/internal/cli"
)

func main() { os.Exit(cli.Exec()) }
