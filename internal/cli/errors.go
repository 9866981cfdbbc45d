package cli

import (
	"strings"

	"github.com/ostask/ostask/ops"
)

// describe renders err for people, on one line: every OpenStack API error
// in it becomes the cloud's own message with the status, the request and
// the request id (ops.Describe).
func describe(err error) string { return ops.Describe(err) }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
