package tasks

import (
	"context"
	"errors"
	"fmt"

	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/ops"
)

// createVolume creates a volume, empty or from an image.
type createVolume struct {
	atom
	fromImage bool
}

// CreateVolume returns a task that creates an empty volume named after
// name (with WithNameSuffix) and waits until it is available. It requires
// flow_run_id, name and size (GiB, an int) and provides volume (the volume
// id). Like CreateServer, it adopts what an earlier run with the same run
// id made, and its revert deletes the volume (and any wreck of a failed
// create) and waits until it is gone; a volume still being created (a
// create cut short by a cancel) is first waited for until it can be
// deleted (ops.DeleteVolume).
func CreateVolume(c *ops.Cloud, name string, opts ...Option) flow.Task {
	return &createVolume{atom: atom{c: c, cfg: newConfig(opts), spec: flow.Spec{Name: name,
		Requires: []string{RunID, Name, Size}, Provides: []string{Volume}}}}
}

// CreateVolumeFromImage is CreateVolume for a bootable volume made from
// an image: it also requires image.
func CreateVolumeFromImage(c *ops.Cloud, name string, opts ...Option) flow.Task {
	return &createVolume{fromImage: true, atom: atom{c: c, cfg: newConfig(opts), spec: flow.Spec{Name: name,
		Requires: []string{RunID, Name, Size, Image}, Provides: []string{Volume}}}}
}

func (t *createVolume) Execute(ctx context.Context, in flow.Inputs) (any, error) {
	key, err := runKey(in, t.spec.Name)
	if err != nil {
		return nil, err
	}
	name, err := t.cfg.resourceName(in)
	if err != nil {
		return nil, err
	}
	size, err := flow.Get[int](in, Size)
	if err != nil {
		return nil, err
	}
	if size <= 0 {
		return nil, fmt.Errorf("tasks: volume size %d must be a positive number of GiB", size)
	}
	co := ops.VolumeCreateOpts{Name: name, Size: size}
	if t.fromImage {
		if co.ImageID, err = flow.Get[string](in, Image); err != nil {
			return nil, err
		}
	}
	// ops adopts what an earlier run made under the key (available, or
	// attached by a later step) and removes the volumes in error it left.
	op, err := t.c.CreateVolume(ctx, co, t.cfg.ops(key, true)...)
	if err != nil {
		return nil, err
	}
	v, err := op.Result(ctx)
	if err != nil {
		return nil, &wreckError{id: op.ID(), err: err}
	}
	return v.ID, nil
}

// Revert deletes what the create made.
func (t *createVolume) Revert(ctx context.Context, in flow.Inputs, o flow.Outcome) error {
	ids := []string{failedID(o.Failure)}
	if id, err := flow.As[string](o.Result); err == nil && id != "" { // raw JSON after a resume
		ids = append(ids, id)
	}
	var lookErr error
	if key, err := runKey(in, t.spec.Name); err == nil {
		found, err := t.c.VolumesByKey(ctx, key)
		for _, v := range found {
			ids = append(ids, v.ID)
		}
		lookErr = err
	}
	err := deleteAll(ctx, ids, func(ctx context.Context, id string) (*ops.Operation[struct{}], error) {
		if err := t.detachAll(ctx, id); err != nil {
			return nil, err
		}
		return t.c.DeleteVolume(ctx, id, t.cfg.deleteOpts()...)
	})
	return errors.Join(err, lookErr)
}

// detachAll detaches the volume from every server it is still attached
// to (an attach of a run whose revert did not run, say): the volume is
// this task's, made under its key, so nothing else may keep it.
func (t *createVolume) detachAll(ctx context.Context, id string) error {
	v, err := getVolume(ctx, t.c, id)
	if err != nil || v == nil {
		return err
	}
	for _, a := range v.Attachments {
		op, err := t.c.DetachVolume(ctx, a.ServerID, id, t.cfg.waitOpts()...)
		if err == nil {
			_, err = op.Result(ctx)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// DeleteVolume returns a task that deletes the volume (input volume) and
// waits until it is gone. A delete cannot be undone: its revert does
// nothing, so put it last in a flow.
func DeleteVolume(c *ops.Cloud, name string, opts ...Option) flow.Task {
	return &deleteTask{atom: atom{c: c, cfg: newConfig(opts), spec: flow.Spec{Name: name, Requires: []string{Volume}}},
		input: Volume, del: c.DeleteVolume}
}

// attachVolume attaches or detaches a volume.
type attachVolume struct {
	atom
	detach bool
}

// AttachVolume returns a task that attaches the volume (input volume) to
// the server (input server) and waits until Cinder and Nova both show the
// attachment. A volume already attached to the server counts as attached
// (a re-run). A silent rollback fails the task with an
// *ops.RolledBackError. Its revert detaches the volume when it is attached
// to the server and waits until it is available again.
func AttachVolume(c *ops.Cloud, name string, opts ...Option) flow.Task {
	return &attachVolume{atom: atom{c: c, cfg: newConfig(opts), spec: flow.Spec{Name: name, Requires: []string{Server, Volume}}}}
}

// DetachVolume returns a task that detaches the volume (input volume) from
// the server (input server) and waits until it is detached; a volume not
// attached to the server counts as detached. Its revert attaches the
// volume again when it is available and not attached to the server.
func DetachVolume(c *ops.Cloud, name string, opts ...Option) flow.Task {
	return &attachVolume{detach: true, atom: atom{c: c, cfg: newConfig(opts), spec: flow.Spec{Name: name, Requires: []string{Server, Volume}}}}
}

func (t *attachVolume) Execute(ctx context.Context, in flow.Inputs) (any, error) {
	if t.detach {
		return nil, t.setAttached(ctx, in, false)
	}
	return nil, t.setAttached(ctx, in, true)
}

func (t *attachVolume) Revert(ctx context.Context, in flow.Inputs, _ flow.Outcome) error {
	return t.setAttached(ctx, in, t.detach)
}

// setAttached attaches (want) or detaches the volume unless it already is.
func (t *attachVolume) setAttached(ctx context.Context, in flow.Inputs, want bool) error {
	srv, err := flow.Get[string](in, Server)
	if err != nil {
		return err
	}
	vol, err := flow.Get[string](in, Volume)
	if err != nil {
		return err
	}
	v, err := getVolume(ctx, t.c, vol)
	if err != nil {
		return err
	}
	if v == nil {
		if want {
			return &ops.DeletedError{Kind: ops.KindVolume, ID: vol, Op: "attach"}
		}
		return nil // a volume that is gone is attached to nothing
	}
	has := attachedTo(v, srv)
	if has == want && (!want || v.Status == "in-use") {
		return nil
	}
	var op *ops.Operation[*ops.Volume]
	if want {
		op, err = t.c.AttachVolume(ctx, srv, vol, "", t.cfg.waitOpts()...)
	} else {
		op, err = t.c.DetachVolume(ctx, srv, vol, t.cfg.waitOpts()...)
	}
	if err != nil {
		return err
	}
	_, err = op.Result(ctx)
	return err
}
