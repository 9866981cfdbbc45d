package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/instanceactions"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/ostask/ostask/future"
)

// Server statuses ostask waits for.
const (
	StatusActive       = "ACTIVE"
	StatusShutoff      = "SHUTOFF"
	StatusVerifyResize = "VERIFY_RESIZE"
	StatusError        = "ERROR"
	StatusDeleted      = "DELETED"
)

func serverFault(id, op, reqID string, o *observation) error {
	e := &FaultError{Kind: KindServer, ID: id, Op: op, Status: o.Status, RequestID: reqID}
	if o.Fault != nil {
		e.Code, e.Message, e.Details = o.Fault.Code, o.Fault.Message, o.Fault.Details
	}
	return e
}

// serverTarget returns a judge that succeeds when the server reaches one
// of the target statuses with no task_state, fails on ERROR and on
// vanishing, and calls other (if set) for anything else.
func serverTarget(id, op string, in *Initial, targets ...string) func(o *observation) (verdict, error) {
	return func(o *observation) (verdict, error) {
		switch {
		case o.Gone:
			return failed, &DeletedError{Kind: KindServer, ID: id, Op: op, LastStatus: o.Status}
		case o.Status == StatusError && o.TaskState == "":
			return failed, serverFault(id, op, in.RequestID, o)
		case o.TaskState != "":
			return pending, nil
		}
		for _, t := range targets {
			if o.Status == t {
				return succeeded, nil
			}
		}
		return pending, nil
	}
}

// asServer decodes the full server record of the observation an
// operation completed on.
func asServer(o *observation) (*servers.Server, error) {
	switch r := o.Resource.(type) {
	case *servers.Server:
		return r, nil
	case json.RawMessage:
		var s servers.Server
		if err := json.Unmarshal(r, &s); err != nil {
			return nil, fmt.Errorf("decode server %s: %w", o.ID, err)
		}
		return &s, nil
	}
	return nil, nil
}

// waitServer watches id until judge decides. reqID is the request id of
// the call (notifications carry it), "" if unknown.
func (c *Cloud) waitServer(ctx context.Context, id, op string, since time.Time, reqID string, o callOpts, judge func(*observation) (verdict, error)) *future.Future[*servers.Server] {
	w := &watch{id: id, op: op, since: since, reqID: reqID, judge: judge}
	return waitWatch(ctx, c.servers, w, o.timeout, asServer)
}

// ServerCreateOpts are the options of a server create; BlockDevice boots
// from a volume.
type ServerCreateOpts = servers.CreateOpts

// CreateServer boots a server and returns at once with its 202 answer;
// the operation resolves when the server is ACTIVE with no task_state.
//
// Every create carries an idempotency key in the server's metadata (the
// one given with WithIdempotencyKey, or a new one), so a lost answer is
// never answered by a second server: the create looks under the key
// before it sends the request again, and adopts what it finds. With a key
// given, it also adopts a server an earlier run made, and removes the
// ERROR servers an earlier run left under the key before booting anew.
//
// With WithRetries(n), a build that fails, hangs past the timeout or
// vanishes is tried again. A failed build is deleted (and waited until
// gone) before the next attempt and after the last one, unless
// WithCleanup(CleanupKeep). Initial().Body omits Nova's adminPass unless
// WithAdminPass.
func (c *Cloud) CreateServer(ctx context.Context, opts ServerCreateOpts, options ...Option) (*Operation[*servers.Server], error) {
	o, err := c.resolve(options)
	if err != nil {
		return nil, err
	}
	if opts.Name == "" {
		return nil, fmt.Errorf("%w: server name is required", ErrInvalidOption)
	}
	key := createKey(o)
	opts.Metadata = withKey(opts.Metadata, key)
	kc := keyedCreate[*servers.Server]{c: c, o: o, kind: KindServer, key: key, keySet: o.keySet,
		find: func(ctx context.Context) ([]found, error) {
			ss, err := c.ServersByKey(ctx, opts.Name, key)
			fs := make([]found, len(ss))
			for i, s := range ss {
				fs[i] = found{id: s.ID, created: s.Created, seenAt: s.Updated, state: serverFoundState(&s)}
			}
			return fs, err
		},
		post: func(ctx context.Context) (gophercloud.Result, string, error) {
			res := servers.Create(ctx, c.Compute, opts, nil)
			if res.Err != nil {
				return res.Result, "", res.Err
			}
			id, err := createdServerID(res.Body)
			if err != nil {
				return res.Result, "", err
			}
			if !o.adminPass {
				// The answer is kept as long as the operation: not the password.
				if m, ok := res.Body.(map[string]any); ok {
					if sv, ok := m["server"].(map[string]any); ok {
						delete(sv, "adminPass")
					}
				}
			}
			return res.Result, id, nil
		},
		wait: func(ctx context.Context, id string, since time.Time, in *Initial) *future.Future[*servers.Server] {
			return c.waitServer(ctx, id, "create", since, in.RequestID, o, serverTarget(id, "create", in, StatusActive))
		},
		remove: func(ctx context.Context, id string) error { return c.removeWreck(ctx, id, o, c.DeleteServer) },
	}
	return runAttempts(ctx, c, o, attemptSpec[*servers.Server]{kind: KindServer, op: "create", start: kc.start, cleanup: kc.remove})
}

// createdServerID reads the new server's id from the decoded 202 answer;
// the rest of the answer (links, adminPass) is not needed, and a whole
// Extract (re-encoding the answer to decode it into a record) was a fifth
// of a create's cost in the client.
func createdServerID(body any) (string, error) {
	m, _ := body.(map[string]any)
	sv, _ := m["server"].(map[string]any)
	id, _ := sv["id"].(string)
	if id == "" {
		return "", errors.New("server create: the 202 answer names no server id")
	}
	return id, nil
}

func serverFoundState(s *servers.Server) foundState {
	switch {
	case s.TaskState == "deleting" || s.Status == StatusDeleted || s.Status == "SOFT_DELETED":
		return leaving
	case s.Status == StatusError:
		return wreck
	}
	return adoptable
}

// ServersByKey lists the servers named name (exactly) whose metadata holds
// the idempotency key key: what creates with that key made (more than one
// when failed builds were kept). The list is a detail list: statuses come
// with it.
func (c *Cloud) ServersByKey(ctx context.Context, name, key string) ([]servers.Server, error) {
	var out []servers.Server
	err := c.call.run(ctx, func(ctx context.Context) error {
		pages, err := servers.List(c.Compute, servers.ListOpts{Name: "^" + regexp.QuoteMeta(name) + "$"}).AllPages(ctx)
		if err != nil {
			return err
		}
		ss, err := servers.ExtractServers(pages)
		out = out[:0]
		for _, s := range ss {
			if s.Metadata[IdempotencyMetadataKey] == key {
				out = append(out, s)
			}
		}
		return err
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("look up servers by idempotency key: %w", err)
	}
	return out, nil
}

// getServer returns the server, or nil when it does not exist.
func (c *Cloud) getServer(ctx context.Context, id string) (*servers.Server, error) {
	return getOrNil(ctx, c, func(ctx context.Context) (*servers.Server, error) { return servers.Get(ctx, c.Compute, id).Extract() })
}

// DeleteServer deletes a server; the operation resolves when it is gone
// (404, or DELETED in changes-since). A delete that fails into ERROR gives
// a FaultError; WithRetries(n) sends the delete again (a second delete
// usually works). Deleting a server that does not exist succeeds at once.
func (c *Cloud) DeleteServer(ctx context.Context, id string, options ...Option) (*Operation[struct{}], error) {
	return deleteOp(ctx, c, c.servers, KindServer, id, http.StatusNoContent, options, func(ctx context.Context) gophercloud.Result {
		return servers.Delete(ctx, c.Compute, id).Result
	}, func(ctx context.Context) (bool, error) {
		s, err := c.getServer(ctx, id)
		if err != nil || s == nil {
			return s == nil, err
		}
		return serverFoundState(s) == leaving, nil
	}, func(in *Initial, ob *observation) error {
		if ob.Status == StatusError && ob.TaskState == "" {
			return serverFault(id, "delete", in.RequestID, ob)
		}
		return nil
	}, nil)
}

// serverAction posts the server action op and watches the server with
// judge. After a lost answer, the instance action named op that the call
// started (Nova names its instance actions like ostask's ops) tells
// whether it took effect.
func (c *Cloud) serverAction(ctx context.Context, id, op string, options []Option, call func(ctx context.Context) gophercloud.Result,
	judge func(in *Initial) func(*observation) (verdict, error)) (*Operation[*servers.Server], error) {
	o, err := c.resolve(options)
	if err != nil {
		return nil, err
	}
	in, since, err := c.begin(ctx, id, http.StatusAccepted, call, c.actionTook(id, op))
	if err != nil {
		return nil, err
	}
	f := c.waitServer(ctx, id, op, since, in.RequestID, o, judge(&in))
	return &Operation[*servers.Server]{Future: f, initial: in, attempts: 1}, nil
}

// actionTook is the check of a call on server id whose answer was lost:
// Nova records the instance action before it answers, so the call took
// effect if the server's newest instance action is named action and
// started at or after the call (the cloud's clock); its request id names
// it. Only the newest counts: an older action of the same name in the
// same second (start_time has one-second resolution) is not ours when
// another came after it.
func (c *Cloud) actionTook(id, action string) took {
	return func(ctx context.Context, since time.Time) (string, bool, error) {
		var opts instanceactions.ListOpts
		if microversionAtLeast(c.Compute.Microversion, 2, 58) {
			opts.Limit = 1 // newest first
		}
		var as []instanceactions.InstanceAction
		err := c.call.run(ctx, func(ctx context.Context) error {
			pages, err := instanceactions.List(c.Compute, id, opts).AllPages(ctx)
			if err != nil {
				return err
			}
			as, err = instanceactions.ExtractInstanceActions(pages)
			return err
		}, nil)
		if err != nil {
			return "", false, fmt.Errorf("instance actions of server %s: %w", id, err)
		}
		if len(as) == 0 {
			return "", false, nil
		}
		// since errs early; start_time is truncated to the second.
		if a := as[0]; a.Action == action && !a.StartTime.Before(since.Truncate(time.Second)) {
			return a.RequestID, true, nil
		}
		return "", false, nil
	}
}

func target(id, op string, targets ...string) func(in *Initial) func(*observation) (verdict, error) {
	return func(in *Initial) func(*observation) (verdict, error) { return serverTarget(id, op, in, targets...) }
}

// RebootServer reboots (hard or soft); resolves when ACTIVE with no task_state.
func (c *Cloud) RebootServer(ctx context.Context, id string, hard bool, options ...Option) (*Operation[*servers.Server], error) {
	typ := servers.SoftReboot
	if hard {
		typ = servers.HardReboot
	}
	return c.serverAction(ctx, id, "reboot", options, func(ctx context.Context) gophercloud.Result {
		return servers.Reboot(ctx, c.Compute, id, servers.RebootOpts{Type: typ}).Result
	}, target(id, "reboot", StatusActive))
}

// StopServer powers off; resolves when SHUTOFF with no task_state.
func (c *Cloud) StopServer(ctx context.Context, id string, options ...Option) (*Operation[*servers.Server], error) {
	return c.serverAction(ctx, id, "stop", options, func(ctx context.Context) gophercloud.Result {
		return servers.Stop(ctx, c.Compute, id).Result
	}, target(id, "stop", StatusShutoff))
}

// StartServer powers on; resolves when ACTIVE with no task_state.
func (c *Cloud) StartServer(ctx context.Context, id string, options ...Option) (*Operation[*servers.Server], error) {
	return c.serverAction(ctx, id, "start", options, func(ctx context.Context) gophercloud.Result {
		return servers.Start(ctx, c.Compute, id).Result
	}, target(id, "start", StatusActive))
}

// resizeJudge waits for VERIFY_RESIZE. A server back at ACTIVE/SHUTOFF with
// no task_state and no fault rolled back silently: that is a failure.
func resizeJudge(id, op string) func(in *Initial) func(*observation) (verdict, error) {
	return func(in *Initial) func(*observation) (verdict, error) {
		base := serverTarget(id, op, in, StatusVerifyResize)
		return func(o *observation) (verdict, error) {
			if o.TaskState == "" && (o.Status == StatusActive || o.Status == StatusShutoff) {
				return failed, &RolledBackError{Kind: KindServer, ID: id, Op: op, Status: o.Status, RequestID: in.RequestID}
			}
			return base(o)
		}
	}
}

// ResizeServer resizes to flavorRef; resolves at VERIFY_RESIZE (then call
// ConfirmResize or RevertResize). A silent rollback fails with a
// RolledBackError listing the failed instance-action events.
func (c *Cloud) ResizeServer(ctx context.Context, id, flavorRef string, options ...Option) (*Operation[*servers.Server], error) {
	op, err := c.serverAction(ctx, id, "resize", options, func(ctx context.Context) gophercloud.Result {
		return servers.Resize(ctx, c.Compute, id, servers.ResizeOpts{FlavorRef: flavorRef}).Result
	}, resizeJudge(id, "resize"))
	return c.explainRollback(ctx, op, err)
}

// MigrateServer cold-migrates (admin); resolves at VERIFY_RESIZE like a resize.
func (c *Cloud) MigrateServer(ctx context.Context, id string, options ...Option) (*Operation[*servers.Server], error) {
	op, err := c.serverAction(ctx, id, "migrate", options, func(ctx context.Context) gophercloud.Result {
		return servers.Migrate(ctx, c.Compute, id).Result
	}, resizeJudge(id, "migrate"))
	return c.explainRollback(ctx, op, err)
}

// ConfirmResize confirms a resize or migration; resolves when the server
// has left VERIFY_RESIZE (ACTIVE or SHUTOFF) with no task_state.
func (c *Cloud) ConfirmResize(ctx context.Context, id string, options ...Option) (*Operation[*servers.Server], error) {
	return c.serverAction(ctx, id, "confirmResize", options, func(ctx context.Context) gophercloud.Result {
		return servers.ConfirmResize(ctx, c.Compute, id).Result
	}, target(id, "confirmResize", StatusActive, StatusShutoff))
}

// RevertResize reverts a resize or migration; resolves at ACTIVE/SHUTOFF.
func (c *Cloud) RevertResize(ctx context.Context, id string, options ...Option) (*Operation[*servers.Server], error) {
	return c.serverAction(ctx, id, "revertResize", options, func(ctx context.Context) gophercloud.Result {
		return servers.RevertResize(ctx, c.Compute, id).Result
	}, target(id, "revertResize", StatusActive, StatusShutoff))
}

// LiveMigrateServer live-migrates (admin); resolves when ACTIVE with no
// task_state and the instance action reports no error (a failed live
// migration rolls back to ACTIVE silently).
func (c *Cloud) LiveMigrateServer(ctx context.Context, id string, options ...Option) (*Operation[*servers.Server], error) {
	op, err := c.serverAction(ctx, id, "live-migration", options, func(ctx context.Context) gophercloud.Result {
		// gophercloud's LiveMigrateOpts has a boolean block_migration;
		// "auto" (2.25+) lets the cloud choose, which is what users want.
		body := map[string]any{"os-migrateLive": map[string]any{"host": nil, "block_migration": "auto"}}
		resp, err := c.Compute.Post(ctx, c.Compute.ServiceURL("servers", id, "action"), body, nil, &gophercloud.RequestOpts{OkCodes: []int{202}})
		var r gophercloud.Result
		_, r.Header, r.Err = gophercloud.ParseResponse(resp, err)
		return r
	}, target(id, "live-migration", StatusActive))
	if err != nil {
		return nil, err
	}
	in := op.Initial()
	f := thenOwned(ctx, c, op.Future, func(ctx context.Context, s *servers.Server) (*servers.Server, error) {
		failedEvents, msg, err := c.actionErrors(ctx, id, in.RequestID)
		if err != nil {
			return nil, err
		}
		if msg == "Error" {
			return nil, &RolledBackError{Kind: KindServer, ID: id, Op: "live-migration", Status: s.Status, RequestID: in.RequestID, Events: failedEvents}
		}
		return s, nil
	})
	return &Operation[*servers.Server]{Future: f, initial: in, attempts: 1}, nil
}

// explainRollback adds the failed instance-action events to a
// RolledBackError (one GET, only when a rollback happened).
func (c *Cloud) explainRollback(ctx context.Context, op *Operation[*servers.Server], err error) (*Operation[*servers.Server], error) {
	if err != nil {
		return nil, err
	}
	f, p := future.New[*servers.Server]()
	op.Future.OnDone(func(s *servers.Server, err error) {
		var rb *RolledBackError
		if !errors.As(err, &rb) {
			p.Complete(s, err)
			return
		}
		started := c.goOwned(func(cctx context.Context) {
			ctx, stop := mergeCancel(ctx, cctx)
			defer stop()
			if evs, _, aerr := c.actionErrors(ctx, rb.ID, rb.RequestID); aerr == nil {
				rb.Events = evs
			}
			p.Reject(rb)
		})
		if !started {
			p.Reject(rb)
		}
	})
	return &Operation[*servers.Server]{Future: f, initial: op.Initial(), attempts: 1}, nil
}

// actionErrors reads the instance action of requestID and returns its
// failed events and its message.
func (c *Cloud) actionErrors(ctx context.Context, serverID, requestID string) ([]string, string, error) {
	if requestID == "" {
		return nil, "", nil
	}
	var a instanceactions.InstanceActionDetail
	err := c.call.run(ctx, func(ctx context.Context) (err error) {
		a, err = instanceactions.Get(ctx, c.Compute, serverID, requestID).Extract()
		return err
	}, nil)
	if err != nil {
		return nil, "", fmt.Errorf("instance action %s of server %s: %w", requestID, serverID, err)
	}
	var evs []string
	if a.Events == nil {
		return nil, a.Message, nil
	}
	for _, e := range *a.Events {
		if e.Result == "Error" {
			s := e.Event
			if e.Traceback != "" {
				s += ": " + e.Traceback
			}
			evs = append(evs, s)
		}
	}
	return evs, a.Message, nil
}

// CreateServerImage snapshots a server (createImage); resolves with the
// Glance image once the server's task_state has cleared and the image is
// active. A snapshot that fails deletes its image: that is a FaultError.
//
// Like a server create, a snapshot carries an idempotency key (an image
// property): a lost answer never makes a second image, and a re-run with
// WithIdempotencyKey adopts the image an earlier run started (removing a
// killed one first).
func (c *Cloud) CreateServerImage(ctx context.Context, id, name string, metadata map[string]string, options ...Option) (*Operation[*images.Image], error) {
	return c.snapshot(ctx, id, "createImage", metadata, options, func(ctx context.Context, md map[string]string) servers.CreateImageResult {
		return servers.CreateImage(ctx, c.Compute, id, servers.CreateImageOpts{Name: name, Metadata: md})
	})
}

// CreateServerBackup makes a rotated backup image (createBackup), with an
// idempotency key like CreateServerImage.
func (c *Cloud) CreateServerBackup(ctx context.Context, id, name, backupType string, rotation int, options ...Option) (*Operation[*images.Image], error) {
	return c.snapshot(ctx, id, "createBackup", nil, options, func(ctx context.Context, md map[string]string) servers.CreateImageResult {
		var r servers.CreateImageResult
		backup := map[string]any{"name": name, "backup_type": backupType, "rotation": rotation}
		if len(md) > 0 {
			backup["metadata"] = md
		}
		body := map[string]any{"createBackup": backup}
		resp, err := c.Compute.Post(ctx, c.Compute.ServiceURL("servers", id, "action"), body, nil,
			&gophercloud.RequestOpts{OkCodes: []int{202}, KeepResponseBody: true})
		_, r.Header, r.Err = gophercloud.ParseResponse(resp, err)
		if r.Err != nil {
			return r
		}
		defer resp.Body.Close()
		// Same answer as createImage: the image id in the body from 2.45,
		// in Location before; ExtractImageID knows both.
		var buf bytes.Buffer
		if _, r.Err = io.Copy(&buf, io.LimitReader(resp.Body, 1<<20)); r.Err == nil && buf.Len() > 0 {
			r.Body = &buf
		}
		return r
	})
}

func (c *Cloud) snapshot(ctx context.Context, id, op string, metadata map[string]string, options []Option,
	call func(ctx context.Context, md map[string]string) servers.CreateImageResult) (*Operation[*images.Image], error) {
	if c.Image == nil {
		return nil, fmt.Errorf("%s: %w", op, errNoImageService)
	}
	o, err := c.resolve(options)
	if err != nil {
		return nil, err
	}
	key := createKey(o)
	md := withKey(metadata, key)
	kc := keyedCreate[*images.Image]{c: c, o: o, kind: KindImage, key: key, keySet: o.keySet,
		find: func(ctx context.Context) ([]found, error) {
			is, err := c.ImagesByKey(ctx, key)
			fs := make([]found, len(is))
			for i, im := range is {
				fs[i] = found{id: im.ID, created: im.CreatedAt, seenAt: im.UpdatedAt, state: imageFoundState(&im)}
			}
			return fs, err
		},
		post: func(ctx context.Context) (gophercloud.Result, string, error) {
			res := call(ctx, md)
			if res.Err != nil {
				return res.Result, "", res.Err
			}
			imageID, err := res.ExtractImageID()
			if err != nil {
				return res.Result, "", fmt.Errorf("%s: %w", op, err)
			}
			return res.Result, imageID, nil
		},
		wait: func(ctx context.Context, imageID string, since time.Time, in *Initial) *future.Future[*images.Image] {
			if in.Adopted || in.Recovered {
				return c.waitImage(ctx, imageID, op, since, o, imageJudge(imageID, op, in.RequestID))
			}
			// First the server: its task_state clears when the upload is done.
			serverDone := c.waitServer(ctx, id, op, since, in.RequestID, o, func(ob *observation) (verdict, error) {
				switch {
				case ob.Gone:
					return failed, &DeletedError{Kind: KindServer, ID: id, Op: op, LastStatus: ob.Status}
				case ob.TaskState != "":
					return pending, nil
				case ob.Status == StatusError:
					return failed, serverFault(id, op, in.RequestID, ob)
				}
				return succeeded, nil
			})
			return future.Then(ctx, serverDone, func(ctx context.Context, _ *servers.Server) *future.Future[*images.Image] {
				return c.waitImage(ctx, imageID, op, since, o, imageJudge(imageID, op, in.RequestID))
			})
		},
		remove: func(ctx context.Context, id string) error { return c.removeWreck(ctx, id, o, c.DeleteImage) },
	}
	return runAttempts(ctx, c, o, attemptSpec[*images.Image]{kind: KindImage, op: op, start: kc.start, cleanup: kc.remove})
}

// imageJudge waits for a snapshot image to become active; a snapshot that
// fails makes Nova delete its image.
func imageJudge(imageID, op, requestID string) func(*observation) (verdict, error) {
	return func(ob *observation) (verdict, error) {
		switch {
		case ob.Gone:
			return failed, &FaultError{Kind: KindImage, ID: imageID, Op: op, Status: "deleted",
				Message: "the snapshot failed and Nova deleted its image", RequestID: requestID}
		case ob.Status == "active":
			return succeeded, nil
		case ob.Status == "killed" || ob.Status == "deactivated":
			return failed, &FaultError{Kind: KindImage, ID: imageID, Op: op, Status: ob.Status, RequestID: requestID}
		}
		return pending, nil
	}
}

// AttachVolume attaches volumeID to serverID; resolves with the volume
// when Cinder shows it in-use and attached to the server and the server
// lists the attachment. After a lost answer, the attachment listed on the
// server tells whether the call took effect.
func (c *Cloud) AttachVolume(ctx context.Context, serverID, volumeID, device string, options ...Option) (*Operation[*Volume], error) {
	if c.Volume == nil {
		return nil, errNoVolumeService
	}
	o, err := c.resolve(options)
	if err != nil {
		return nil, err
	}
	in, since, err := c.begin(ctx, volumeID, http.StatusOK, func(ctx context.Context) gophercloud.Result {
		return volumeattach.Create(ctx, c.Compute, serverID, volumeattach.CreateOpts{VolumeID: volumeID, Device: device}).Result
	}, func(ctx context.Context, _ time.Time) (string, bool, error) {
		ok, err := c.attachmentListed(ctx, serverID, volumeID)
		return "", ok, err
	})
	if err != nil {
		return nil, err
	}
	f := c.waitVolume(ctx, volumeID, "attach", since, o, func(ob *observation) (verdict, error) {
		switch {
		case ob.Gone:
			return failed, &DeletedError{Kind: KindVolume, ID: volumeID, Op: "attach", LastStatus: ob.Status}
		case ob.Status == "in-use" && contains(ob.Servers, serverID):
			return succeeded, nil
		case ob.Status == "available":
			return failed, &RolledBackError{Kind: KindVolume, ID: volumeID, Op: "attach", Status: ob.Status, RequestID: in.RequestID}
		case isVolumeError(ob.Status):
			return failed, volumeFault(volumeID, "attach", ob)
		}
		return pending, nil
	})
	f = c.confirmOnServer(ctx, f, serverID, volumeID, true)
	return &Operation[*Volume]{Future: f, initial: in, attempts: 1}, nil
}

// DetachVolume detaches volumeID from serverID; resolves with the volume
// when Cinder no longer shows it attached to the server and the server no
// longer lists it. After a lost answer, the volume tells whether the call
// took effect (Nova marks it detaching before it answers).
func (c *Cloud) DetachVolume(ctx context.Context, serverID, volumeID string, options ...Option) (*Operation[*Volume], error) {
	if c.Volume == nil {
		return nil, errNoVolumeService
	}
	o, err := c.resolve(options)
	if err != nil {
		return nil, err
	}
	in, since, err := c.begin(ctx, volumeID, http.StatusAccepted, func(ctx context.Context) gophercloud.Result {
		return volumeattach.Delete(ctx, c.Compute, serverID, volumeID).Result
	}, func(ctx context.Context, _ time.Time) (string, bool, error) {
		v, err := c.getVolume(ctx, volumeID)
		if err != nil || v == nil {
			return "", v == nil, err
		}
		return "", v.Status == "detaching" || !attachedTo(v, serverID), nil
	})
	if err != nil {
		return nil, err
	}
	f := c.waitVolume(ctx, volumeID, "detach", since, o, func(ob *observation) (verdict, error) {
		switch {
		case ob.Gone:
			return failed, &DeletedError{Kind: KindVolume, ID: volumeID, Op: "detach", LastStatus: ob.Status}
		case ob.Status == "detaching":
			return pending, nil
		case (ob.Status == "available" || ob.Status == "in-use") && !contains(ob.Servers, serverID):
			return succeeded, nil
		case ob.Status == "in-use":
			return failed, &RolledBackError{Kind: KindVolume, ID: volumeID, Op: "detach", Status: ob.Status, RequestID: in.RequestID}
		case isVolumeError(ob.Status):
			return failed, volumeFault(volumeID, "detach", ob)
		}
		return pending, nil
	})
	f = c.confirmOnServer(ctx, f, serverID, volumeID, false)
	return &Operation[*Volume]{Future: f, initial: in, attempts: 1}, nil
}

// attachmentListed reports whether server serverID lists volumeID among
// its volume attachments.
func (c *Cloud) attachmentListed(ctx context.Context, serverID, volumeID string) (bool, error) {
	var pages pagination.Page
	err := c.call.run(ctx, func(ctx context.Context) (err error) {
		pages, err = volumeattach.List(c.Compute, serverID).AllPages(ctx)
		return err
	}, nil)
	if err != nil {
		return false, fmt.Errorf("list attachments of server %s: %w", serverID, err)
	}
	as, err := volumeattach.ExtractVolumeAttachments(pages)
	if err != nil {
		return false, err
	}
	for _, a := range as {
		if a.VolumeID == volumeID {
			return true, nil
		}
	}
	return false, nil
}

// confirmOnServer checks, once Cinder is done, that Nova agrees: the
// server lists the attachment (attach) or no longer does (detach). Nova
// updates its record just after Cinder, so it looks a few times.
func (c *Cloud) confirmOnServer(ctx context.Context, f *future.Future[*Volume], serverID, volumeID string, want bool) *future.Future[*Volume] {
	return thenOwned(ctx, c, f, func(ctx context.Context, v *Volume) (*Volume, error) {
		for i := 0; ; i++ {
			listed, err := c.attachmentListed(ctx, serverID, volumeID)
			if err != nil {
				return nil, err
			}
			if listed == want {
				return v, nil
			}
			if i >= 10 {
				return nil, fmt.Errorf("volume %s: Cinder is done but server %s still lists attachment=%v", volumeID, serverID, listed)
			}
			if err := sleepOn(ctx, c.clock, c.cfg.MinInterval); err != nil {
				return nil, err
			}
		}
	})
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
