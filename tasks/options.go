package tasks

import (
	"errors"
	"fmt"
	"time"

	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/ops"
)

// Names of the values the tasks read and provide. A task reads its inputs
// by these names; rebind them with flow.Bind(t, flow.Rebind(...)) to wire
// several tasks of one kind into one flow.
const (
	// RunID is the store value that names one run of a flow. Every create
	// derives its idempotency key from it and the task's name
	// ("<run-id>/<task-name>"), so running a flow again with the same run
	// id adopts what an earlier run made instead of duplicating it.
	RunID = "flow_run_id"
	// Name is the name of the server (or the base of a volume's or
	// image's name, see WithNameSuffix).
	Name = "name"
	// Flavor is a flavor id.
	Flavor = "flavor"
	// Image is an image id: a server's image, a volume's source, or (as a
	// result) a snapshot.
	Image = "image"
	// Network is "auto", "none" or comma-separated network UUIDs; optional
	// for server creates (default "auto").
	Network = "network"
	// Size is a volume size in GiB.
	Size = "size"
	// Server is a server id (the result of CreateServer).
	Server = "server"
	// Volume is a volume id (the result of CreateVolume).
	Volume = "volume"
	// BootVolume is the volume a server boots from (BootServerFromVolume).
	BootVolume = "boot_volume"
)

// DefaultRetries is the number of attempts of a create, a snapshot and a
// delete when WithRetries is not given; a failed create is deleted (and
// waited for) before the next attempt, and a failed delete is sent again.
const DefaultRetries = 3

// Option tunes a task, or every task of a ready-made flow.
type Option func(*config)

type config struct {
	retries int
	timeout time.Duration
	suffix  string
}

// WithRetries sets the attempts of each create, snapshot and delete (1 =
// no retry).
func WithRetries(n int) Option { return func(c *config) { c.retries = n } }

// WithTimeout bounds each wait on the cloud (per attempt).
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithNameSuffix appends s to the Name input to name what a task creates
// (a volume "web-data" for Name "web" and suffix "-data"). Ready-made flows
// set their own suffixes.
func WithNameSuffix(s string) Option { return func(c *config) { c.suffix = s } }

func newConfig(opts []Option) config {
	c := config{retries: DefaultRetries}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// ops returns the per-call options; key "" adds none.
func (c config) ops(key string, create bool) []ops.Option {
	var o []ops.Option
	if c.timeout > 0 {
		o = append(o, ops.WithTimeout(c.timeout))
	}
	if create && c.retries > 0 {
		o = append(o, ops.WithRetries(c.retries))
	}
	if key != "" {
		o = append(o, ops.WithIdempotencyKey(key))
	}
	return o
}

// waitOpts are the options of calls that only wait (no retries, no key): the timeout.
func (c config) waitOpts() []ops.Option { return c.ops("", false) }

// deleteOpts are the options of deletes: the timeout and the retries, so
// that one failed delete does not make a flow give up (and revert).
func (c config) deleteOpts() []ops.Option { return c.ops("", true) }

// Key returns the idempotency key of task in the flow run runID.
func Key(runID, task string) string { return runID + "/" + task }

// ErrNoRunID is returned by a create task whose flow_run_id is empty.
var ErrNoRunID = errors.New("tasks: flow_run_id is empty")

func runKey(in flow.Inputs, task string) (string, error) {
	id, err := flow.Get[string](in, RunID)
	if err != nil {
		return "", err
	}
	if id == "" {
		return "", ErrNoRunID
	}
	k := Key(id, task)
	if len(k) > 255 {
		return "", fmt.Errorf("tasks: idempotency key %q is longer than 255 characters", k)
	}
	return k, nil
}

// resourceName is the Name input with the task's suffix.
func (c config) resourceName(in flow.Inputs) (string, error) {
	n, err := flow.Get[string](in, Name)
	if err != nil {
		return "", err
	}
	if n == "" {
		return "", fmt.Errorf("tasks: input %q is empty", Name)
	}
	return n + c.suffix, nil
}

// wreckError carries the id of what a failed create left behind, so that
// the task's revert deletes it even when the cloud's list does not show
// the idempotency key. Its message is the original error's.
type wreckError struct {
	id  string
	err error
}

func (e *wreckError) Error() string { return e.err.Error() }
func (e *wreckError) Unwrap() error { return e.err }

// failedID returns the wreck id carried by a failure, if any.
func failedID(f *flow.Failure) string {
	var w *wreckError
	if f != nil && errors.As(f.Err, &w) {
		return w.id
	}
	return ""
}

// atom is the part every task shares.
type atom struct {
	c    *ops.Cloud
	cfg  config
	spec flow.Spec
}

func (a *atom) Spec() flow.Spec { return a.spec }
