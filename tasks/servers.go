package tasks

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/ops"
)

// createServer boots a server from an image or from a volume.
type createServer struct {
	atom
	fromVolume bool
}

// CreateServer returns a task named name that boots a server and waits
// until it is ACTIVE. It requires flow_run_id, name, flavor and image
// (optional: network), and provides server (the server id).
//
// Its idempotency key is "<flow_run_id>/<task name>": run again with the
// same run id, it adopts the server an earlier run made. Its revert
// deletes the server and waits until it is gone — the one this run made,
// the wreck a failed create could not clean up, and any server holding
// the key — so a revert leaves nothing.
// The task's name makes the key: name it here, not with flow.Rename.
func CreateServer(c *ops.Cloud, name string, opts ...Option) flow.Task {
	return &createServer{atom: atom{c: c, cfg: newConfig(opts), spec: flow.Spec{Name: name,
		Requires: []string{RunID, Name, Flavor, Image}, Optional: []string{Network}, Provides: []string{Server}}}}
}

// BootServerFromVolume is CreateServer booting from an existing volume: it
// requires boot_volume instead of image. Deleting the server (its revert)
// detaches the volume and keeps it.
func BootServerFromVolume(c *ops.Cloud, name string, opts ...Option) flow.Task {
	return &createServer{fromVolume: true, atom: atom{c: c, cfg: newConfig(opts), spec: flow.Spec{Name: name,
		Requires: []string{RunID, Name, Flavor, BootVolume}, Optional: []string{Network}, Provides: []string{Server}}}}
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// networks turns the network input into Nova's networks value.
func networks(v string) (any, error) {
	switch v {
	case "", "auto":
		return "auto", nil
	case "none":
		return "none", nil
	}
	var nets []servers.Network
	for _, id := range strings.Split(v, ",") {
		if !uuidRE.MatchString(id) {
			return nil, fmt.Errorf("tasks: network %q: want auto, none or network UUIDs separated by commas", v)
		}
		nets = append(nets, servers.Network{UUID: id})
	}
	return nets, nil
}

func (t *createServer) Execute(ctx context.Context, in flow.Inputs) (any, error) {
	key, err := runKey(in, t.spec.Name)
	if err != nil {
		return nil, err
	}
	name, err := t.cfg.resourceName(in)
	if err != nil {
		return nil, err
	}
	flavor, err := flow.Get[string](in, Flavor)
	if err != nil {
		return nil, err
	}
	nets, err := networks(flow.GetOr(in, Network, "auto"))
	if err != nil {
		return nil, err
	}
	co := ops.ServerCreateOpts{Name: name, FlavorRef: flavor, Networks: nets}
	if t.fromVolume {
		vol, err := flow.Get[string](in, BootVolume)
		if err != nil {
			return nil, err
		}
		co.BlockDevice = []servers.BlockDevice{{UUID: vol, SourceType: servers.SourceVolume,
			DestinationType: servers.DestinationVolume, BootIndex: 0}}
	} else if co.ImageRef, err = flow.Get[string](in, Image); err != nil {
		return nil, err
	}
	// ops adopts what an earlier run made under the key and removes the
	// ERROR servers it left.
	op, err := t.c.CreateServer(ctx, co, t.cfg.ops(key, true)...)
	if err != nil {
		return nil, err
	}
	s, err := op.Result(ctx)
	if err != nil {
		return nil, &wreckError{id: op.ID(), err: err}
	}
	return s.ID, nil
}

// Revert deletes what the create made (see CreateServer).
func (t *createServer) Revert(ctx context.Context, in flow.Inputs, o flow.Outcome) error {
	ids := []string{failedID(o.Failure)}
	if id, err := flow.As[string](o.Result); err == nil && id != "" { // raw JSON after a resume
		ids = append(ids, id)
	}
	var lookErr error
	key, err := runKey(in, t.spec.Name)
	name, nerr := t.cfg.resourceName(in)
	if err == nil && nerr == nil {
		found, err := t.c.ServersByKey(ctx, name, key)
		for _, s := range found {
			ids = append(ids, s.ID)
		}
		lookErr = err
	}
	err = deleteAll(ctx, ids, func(ctx context.Context, id string) (*ops.Operation[struct{}], error) {
		return t.c.DeleteServer(ctx, id, t.cfg.deleteOpts()...)
	})
	return errors.Join(err, lookErr)
}

// DeleteServer returns a task that deletes the server (input server) and
// waits until it is gone; a server already gone counts as deleted. A
// delete that fails (the server goes to ERROR) is sent again, up to the
// task's retries, before the task fails. A delete cannot be undone: its
// revert does nothing, so put it last in a flow, after everything that
// may fail.
func DeleteServer(c *ops.Cloud, name string, opts ...Option) flow.Task {
	return &deleteTask{atom: atom{c: c, cfg: newConfig(opts), spec: flow.Spec{Name: name, Requires: []string{Server}}},
		input: Server, del: c.DeleteServer}
}

// resizeServer resizes or cold-migrates a server up to VERIFY_RESIZE.
type resizeServer struct {
	atom
	migrate bool
}

// ResizeServer returns a task that resizes the server (input server) to
// flavor and waits for VERIFY_RESIZE; follow it with ConfirmResize. A
// silent rollback fails the task with an *ops.RolledBackError. Its revert
// reverts the resize when the server is still in VERIFY_RESIZE (and does
// nothing when Nova already rolled it back). Run again on a server already
// in VERIFY_RESIZE, it adopts that state.
func ResizeServer(c *ops.Cloud, name string, opts ...Option) flow.Task {
	return &resizeServer{atom: atom{c: c, cfg: newConfig(opts), spec: flow.Spec{Name: name, Requires: []string{Server, Flavor}}}}
}

// MigrateServer is ResizeServer for a cold migration (admin only): it
// requires server only.
func MigrateServer(c *ops.Cloud, name string, opts ...Option) flow.Task {
	return &resizeServer{migrate: true, atom: atom{c: c, cfg: newConfig(opts), spec: flow.Spec{Name: name, Requires: []string{Server}}}}
}

func (t *resizeServer) Execute(ctx context.Context, in flow.Inputs) (any, error) {
	id, err := flow.Get[string](in, Server)
	if err != nil {
		return nil, err
	}
	var flavor string
	if !t.migrate {
		if flavor, err = flow.Get[string](in, Flavor); err != nil {
			return nil, err
		}
	}
	s, err := getServer(ctx, t.c, id)
	if err != nil {
		return nil, err
	}
	if s != nil && s.Status == ops.StatusVerifyResize && s.TaskState == "" {
		return nil, nil // an earlier run got this far
	}
	var op *ops.Operation[*servers.Server]
	if t.migrate {
		op, err = t.c.MigrateServer(ctx, id, t.cfg.waitOpts()...)
	} else {
		op, err = t.c.ResizeServer(ctx, id, flavor, t.cfg.waitOpts()...)
	}
	if err != nil {
		return nil, err
	}
	_, err = op.Result(ctx)
	return nil, err
}

// Revert reverts the resize while the server waits in VERIFY_RESIZE.
func (t *resizeServer) Revert(ctx context.Context, in flow.Inputs, _ flow.Outcome) error {
	id, err := flow.Get[string](in, Server)
	if err != nil {
		return err
	}
	s, err := getServer(ctx, t.c, id)
	if err != nil || s == nil || s.Status != ops.StatusVerifyResize {
		return err
	}
	op, err := t.c.RevertResize(ctx, id, t.cfg.waitOpts()...)
	if err != nil {
		return err
	}
	_, err = op.Result(ctx)
	return err
}

// confirmResize confirms a resize or migration.
type confirmResize struct{ atom }

// ConfirmResize returns a task that confirms the resize or migration of
// the server (input server) and waits until it has left VERIFY_RESIZE. A
// server not in VERIFY_RESIZE counts as confirmed (a re-run). A confirmed
// resize cannot be undone: its revert does nothing.
func ConfirmResize(c *ops.Cloud, name string, opts ...Option) flow.Task {
	return &confirmResize{atom{c: c, cfg: newConfig(opts), spec: flow.Spec{Name: name, Requires: []string{Server}}}}
}

func (t *confirmResize) Execute(ctx context.Context, in flow.Inputs) (any, error) {
	id, err := flow.Get[string](in, Server)
	if err != nil {
		return nil, err
	}
	s, err := getServer(ctx, t.c, id)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return nil, &ops.DeletedError{Kind: ops.KindServer, ID: id, Op: "confirmResize"}
	}
	if s.Status != ops.StatusVerifyResize {
		return nil, nil
	}
	op, err := t.c.ConfirmResize(ctx, id, t.cfg.waitOpts()...)
	if err != nil {
		return nil, err
	}
	_, err = op.Result(ctx)
	return nil, err
}

// Revert does nothing: a confirmed resize cannot be undone.
func (t *confirmResize) Revert(context.Context, flow.Inputs, flow.Outcome) error { return nil }

// createImage snapshots a server.
type createImage struct{ atom }

// CreateServerImage returns a task that snapshots the server (input
// server) into an image named after name (with WithNameSuffix) and waits
// until the image is active. It requires flow_run_id, server and name, and
// provides image (the image id). The idempotency key is kept in the
// image's properties: run again with the same run id, it adopts the
// snapshot an earlier run made, or waits for the one it is making. Its
// revert deletes the image and waits until Glance no longer lists it.
func CreateServerImage(c *ops.Cloud, name string, opts ...Option) flow.Task {
	return &createImage{atom{c: c, cfg: newConfig(opts), spec: flow.Spec{Name: name,
		Requires: []string{RunID, Server, Name}, Provides: []string{Image}}}}
}

func (t *createImage) Execute(ctx context.Context, in flow.Inputs) (any, error) {
	key, err := runKey(in, t.spec.Name)
	if err != nil {
		return nil, err
	}
	name, err := t.cfg.resourceName(in)
	if err != nil {
		return nil, err
	}
	id, err := flow.Get[string](in, Server)
	if err != nil {
		return nil, err
	}
	// ops keeps the key as an image property: it adopts the snapshot an
	// earlier run made (or is making) and removes a killed one.
	op, err := t.c.CreateServerImage(ctx, id, name, nil, t.cfg.ops(key, true)...)
	if err != nil {
		return nil, err
	}
	im, err := op.Result(ctx)
	if err != nil {
		return nil, &wreckError{id: op.ID(), err: err}
	}
	return im.ID, nil
}

func (t *createImage) deleteImage(ctx context.Context, id string) (*ops.Operation[struct{}], error) {
	return t.c.DeleteImage(ctx, id, t.cfg.deleteOpts()...)
}

// Revert deletes the snapshot.
func (t *createImage) Revert(ctx context.Context, in flow.Inputs, o flow.Outcome) error {
	ids := []string{failedID(o.Failure)}
	if id, err := flow.As[string](o.Result); err == nil && id != "" { // raw JSON after a resume
		ids = append(ids, id)
	}
	var lookErr error
	if key, err := runKey(in, t.spec.Name); err == nil {
		found, err := t.c.ImagesByKey(ctx, key)
		for _, im := range found {
			ids = append(ids, im.ID)
		}
		lookErr = err
	}
	return errors.Join(deleteAll(ctx, ids, t.deleteImage), lookErr)
}

// deleteTask deletes the resource whose id is the input named input.
type deleteTask struct {
	atom
	input string
	del   func(ctx context.Context, id string, options ...ops.Option) (*ops.Operation[struct{}], error)
}

func (t *deleteTask) Execute(ctx context.Context, in flow.Inputs) (any, error) {
	id, err := flow.Get[string](in, t.input)
	if err != nil {
		return nil, err
	}
	op, err := t.del(ctx, id, t.cfg.deleteOpts()...)
	if err != nil {
		return nil, err
	}
	_, err = op.Result(ctx)
	return nil, err
}

// Revert does nothing: what was deleted cannot be brought back.
func (t *deleteTask) Revert(context.Context, flow.Inputs, flow.Outcome) error { return nil }
