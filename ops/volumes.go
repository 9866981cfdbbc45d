package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/ostask/ostask/future"
)

// Volume is a Cinder volume as gophercloud decodes it.
type Volume = volumes.Volume

// VolumeCreateOpts are the options of a volume create.
type VolumeCreateOpts = volumes.CreateOpts

var (
	errNoVolumeService = errors.New("the cloud has no block-storage service in its catalog")
	errNoImageService  = errors.New("the cloud has no image service in its catalog")
)

func newKey() string { return uuid.NewString() }

// volumeListOpts is a /volumes/detail query with the filters gophercloud's
// ListOpts lacks (updated_at, from volume microversion 3.60).
type volumeListOpts struct {
	status       string
	updatedSince time.Time
	metadata     map[string]string
}

func (o volumeListOpts) ToVolumeListQuery() (string, error) {
	q := url.Values{}
	if o.status != "" {
		q.Set("status", o.status)
	}
	if !o.updatedSince.IsZero() {
		q.Set("updated_at", "gte:"+o.updatedSince.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if len(o.metadata) > 0 {
		b, err := json.Marshal(o.metadata)
		if err != nil {
			return "", err
		}
		q.Set("metadata", string(b))
	}
	if len(q) == 0 {
		return "", nil
	}
	return "?" + q.Encode(), nil
}

// updatedAtFilter reports whether the volume API takes updated_at filters.
func (c *Cloud) updatedAtFilter() bool {
	return microversionAtLeast(c.Volume.Microversion, 3, 60)
}

// pollVolumes is one block-storage monitor round. Cinder has no
// changes-since and hides deleted volumes, so a round is:
//  1. if a delete is watched: the volumes in status deleting (all pages);
//  2. the volumes updated since the last round (updated_at=gte:, from 3.60;
//     every volume before that);
//
// and a watched delete whose volume is in neither list is gone: it was not
// deleting at (1) and did not change (to error_deleting, say) after it.
// A volume no list has shown for staleRounds rounds (a hang, or a volume
// someone else deleted) gets one GET.
func (c *Cloud) pollVolumes(ctx context.Context, req pollRequest, emit func([]*observation)) error {
	deleting := map[string]bool{}
	if len(req.GoneIDs) > 0 {
		err := c.eachVolume(ctx, volumeListOpts{status: "deleting"}, func(v *volumes.Volume) {
			deleting[v.ID] = true
		})
		if err != nil {
			return err
		}
	}
	opts := volumeListOpts{}
	full := req.Full || !c.updatedAtFilter()
	if !full {
		opts.updatedSince = req.Since
	}
	var obs []*observation
	seen := map[string]bool{}
	err := c.eachVolume(ctx, opts, func(v *volumes.Volume) {
		if req.IDs[v.ID] && !seen[v.ID] {
			seen[v.ID] = true
			obs = append(obs, volumeObservation(v))
		}
	})
	if err != nil {
		return err
	}
	for id := range req.IDs {
		if seen[id] {
			continue
		}
		switch {
		case req.GoneIDs[id] && !deleting[id] || full:
			obs = append(obs, &observation{ID: id, Gone: true, Status: "deleted"})
		case req.Stale[id] && !deleting[id]:
			// Not listed for a while: unchanged (a hang), or deleted by
			// someone else. Only a GET can tell.
			v, err := volumes.Get(ctx, c.Volume, id).Extract()
			switch {
			case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
				obs = append(obs, &observation{ID: id, Gone: true, Status: "deleted"})
			case err != nil:
				return err
			default:
				obs = append(obs, volumeObservation(v))
			}
		}
	}
	emit(obs)
	return nil
}

func (c *Cloud) eachVolume(ctx context.Context, opts volumeListOpts, fn func(v *volumes.Volume)) error {
	return volumes.List(c.Volume, opts).EachPage(ctx, func(ctx context.Context, page pagination.Page) (bool, error) {
		vs, err := volumes.ExtractVolumes(page)
		if err != nil {
			return false, err
		}
		for i := range vs {
			fn(&vs[i])
		}
		return true, nil
	})
}

func volumeObservation(v *volumes.Volume) *observation {
	o := &observation{ID: v.ID, Status: v.Status, Size: v.Size, Resource: v}
	for _, a := range v.Attachments {
		o.Servers = append(o.Servers, a.ServerID)
	}
	return o
}

func isVolumeError(status string) bool { return strings.HasPrefix(status, "error") }

func volumeFault(id, op string, o *observation) error {
	return &FaultError{Kind: KindVolume, ID: id, Op: op, Status: o.Status,
		Message: fmt.Sprintf("volume went to status %s (Cinder keeps the reason in its logs and user messages)", o.Status)}
}

func asVolume(o *observation) (*Volume, error) {
	v, _ := o.Resource.(*volumes.Volume)
	return v, nil
}

func (c *Cloud) waitVolume(ctx context.Context, id, op string, since time.Time, o callOpts, judge func(*observation) (verdict, error)) *future.Future[*Volume] {
	w := &watch{id: id, op: op, since: since, judge: judge, wantGone: op == "delete"}
	return waitWatch(ctx, c.volumes, w, o.timeout, asVolume)
}

// CreateVolume creates a volume; resolves when it is available (or
// in-use: a volume adopted after an earlier run attached it). Like
// CreateServer, every create carries an idempotency key in the volume's
// metadata: a lost answer never makes a second volume, a re-run with
// WithIdempotencyKey adopts what an earlier run made and removes the
// volumes in error it left, and a failed volume is deleted before the next
// attempt (WithRetries) and after the last, unless CleanupKeep.
func (c *Cloud) CreateVolume(ctx context.Context, opts VolumeCreateOpts, options ...Option) (*Operation[*Volume], error) {
	if c.Volume == nil {
		return nil, errNoVolumeService
	}
	o, err := c.resolve(options)
	if err != nil {
		return nil, err
	}
	if opts.Size <= 0 {
		return nil, fmt.Errorf("%w: volume size must be a positive number of GiB", ErrInvalidOption)
	}
	key := createKey(o)
	opts.Metadata = withKey(opts.Metadata, key)
	judge := func(id string) func(*observation) (verdict, error) {
		return func(ob *observation) (verdict, error) {
			switch {
			case ob.Gone:
				return failed, &DeletedError{Kind: KindVolume, ID: id, Op: "create", LastStatus: ob.Status}
			case ob.Status == "available" || ob.Status == "in-use":
				return succeeded, nil
			case isVolumeError(ob.Status):
				return failed, volumeFault(id, "create", ob)
			}
			return pending, nil
		}
	}
	kc := keyedCreate[*Volume]{c: c, o: o, kind: KindVolume, key: key, keySet: o.keySet,
		find: func(ctx context.Context) ([]found, error) {
			vs, err := c.VolumesByKey(ctx, key)
			fs := make([]found, len(vs))
			for i, v := range vs {
				// Watch from the volume's last change: it may not change again.
				seenAt := v.UpdatedAt
				if seenAt.IsZero() {
					seenAt = v.CreatedAt
				}
				state := adoptable
				switch {
				case v.Status == "deleting":
					state = leaving
				case isVolumeError(v.Status):
					state = wreck
				}
				fs[i] = found{id: v.ID, created: v.CreatedAt, seenAt: seenAt, state: state}
			}
			return fs, err
		},
		post: func(ctx context.Context) (gophercloud.Result, string, error) {
			res := volumes.Create(ctx, c.Volume, opts, nil)
			if res.Err != nil {
				return res.Result, "", res.Err
			}
			v, err := res.Extract()
			if err != nil {
				return res.Result, "", fmt.Errorf("volume create: decode 202 answer: %w", err)
			}
			return res.Result, v.ID, nil
		},
		wait: func(ctx context.Context, id string, since time.Time, _ *Initial) *future.Future[*Volume] {
			return c.waitVolume(ctx, id, "create", since, o, judge(id))
		},
		remove: func(ctx context.Context, id string) error { return c.removeWreck(ctx, id, o, c.DeleteVolume) },
	}
	return runAttempts(ctx, c, o, attemptSpec[*Volume]{kind: KindVolume, op: "create", start: kc.start, cleanup: kc.remove})
}

// VolumesByKey lists the volumes whose metadata holds the idempotency key
// key (a detail list: statuses and attachments come with it).
func (c *Cloud) VolumesByKey(ctx context.Context, key string) ([]Volume, error) {
	if c.Volume == nil {
		return nil, errNoVolumeService
	}
	var out []Volume
	err := c.call.run(ctx, func(ctx context.Context) error {
		out = out[:0]
		return c.eachVolume(ctx, volumeListOpts{metadata: map[string]string{IdempotencyMetadataKey: key}}, func(v *volumes.Volume) {
			if v.Metadata[IdempotencyMetadataKey] == key {
				out = append(out, *v)
			}
		})
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("look up volumes by idempotency key: %w", err)
	}
	return out, nil
}

// getVolume returns the volume, or nil when it does not exist.
func (c *Cloud) getVolume(ctx context.Context, id string) (*Volume, error) {
	return getOrNil(ctx, c, func(ctx context.Context) (*Volume, error) { return volumes.Get(ctx, c.Volume, id).Extract() })
}

func attachedTo(v *Volume, serverID string) bool {
	for _, a := range v.Attachments {
		if a.ServerID == serverID {
			return true
		}
	}
	return false
}

// DeleteVolume deletes a volume; resolves when it is gone. error_deleting
// is a FaultError; WithRetries(n) sends the delete again. A volume that
// does not exist counts as deleted. A volume still being created (a create
// cut short), which Cinder refuses to delete, is first waited for (with
// the monitor, up to the call's timeout: a *TimeoutError naming it) until
// it can be; DeleteVolume returns after that.
func (c *Cloud) DeleteVolume(ctx context.Context, id string, options ...Option) (*Operation[struct{}], error) {
	if c.Volume == nil {
		return nil, errNoVolumeService
	}
	return deleteOp(ctx, c, c.volumes, KindVolume, id, http.StatusAccepted, options, func(ctx context.Context) gophercloud.Result {
		return volumes.Delete(ctx, c.Volume, id, nil).Result
	}, func(ctx context.Context) (bool, error) {
		v, err := c.getVolume(ctx, id)
		if err != nil || v == nil {
			return v == nil, err
		}
		return v.Status == "deleting", nil
	}, func(_ *Initial, ob *observation) error {
		if isVolumeError(ob.Status) {
			return volumeFault(id, "delete", ob)
		}
		return nil
	}, func(ctx context.Context, o callOpts) (bool, error) {
		v, err := c.getVolume(ctx, id)
		if err != nil || v == nil || !volumeCreating(v.Status) {
			return false, err
		}
		_, err = c.waitVolume(ctx, id, "settle", c.serverNow(), o, func(ob *observation) (verdict, error) {
			if ob.Gone || !volumeCreating(ob.Status) {
				return succeeded, nil
			}
			return pending, nil
		}).Result(ctx)
		return err == nil, err
	})
}

// volumeCreating reports whether a volume in status is still being
// created, when Cinder refuses to delete it (400).
func volumeCreating(status string) bool { return status == "creating" || status == "downloading" }

// ExtendVolume grows a volume to newSize GiB; resolves when it is back to
// available (or in-use) at the new size. After a lost answer, the volume
// (extending, or at the new size) tells whether the call took effect.
func (c *Cloud) ExtendVolume(ctx context.Context, id string, newSize int, options ...Option) (*Operation[*Volume], error) {
	if c.Volume == nil {
		return nil, errNoVolumeService
	}
	o, err := c.resolve(options)
	if err != nil {
		return nil, err
	}
	in, since, err := c.begin(ctx, id, http.StatusAccepted, func(ctx context.Context) gophercloud.Result {
		return volumes.ExtendSize(ctx, c.Volume, id, volumes.ExtendSizeOpts{NewSize: newSize}).Result
	}, func(ctx context.Context, _ time.Time) (string, bool, error) {
		v, err := c.getVolume(ctx, id)
		if err != nil || v == nil {
			return "", false, err
		}
		return "", v.Status == "extending" || v.Size >= newSize, nil
	})
	if err != nil {
		return nil, err
	}
	f := c.waitVolume(ctx, id, "extend", since, o, func(ob *observation) (verdict, error) {
		switch {
		case ob.Gone:
			return failed, &DeletedError{Kind: KindVolume, ID: id, Op: "extend", LastStatus: ob.Status}
		case (ob.Status == "available" || ob.Status == "in-use") && ob.Size >= newSize:
			return succeeded, nil
		case isVolumeError(ob.Status):
			return failed, volumeFault(id, "extend", ob)
		}
		return pending, nil
	})
	return &Operation[*Volume]{Future: f, initial: in, attempts: 1}, nil
}

// microversionAtLeast reports whether "X.Y" >= major.minor.
func microversionAtLeast(v string, major, minor int) bool {
	var a, b int
	if _, err := fmt.Sscanf(v, "%d.%d", &a, &b); err != nil {
		return false
	}
	return a > major || (a == major && b >= minor)
}
