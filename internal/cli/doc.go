// Package cli implements the ostask command line. It is internal: the
// supported surface is the command line itself (see `ostask --help`).
//
//	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
package cli
