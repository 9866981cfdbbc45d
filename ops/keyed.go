package ops

import (
	"context"
	"net/http"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/future"
)

// foundState is what a create makes of a resource found under its key.
type foundState int

const (
	// adoptable: building or done; the create watches it.
	adoptable foundState = iota
	// wreck: failed (ERROR, error, killed); removed before creating anew.
	wreck
	// leaving: being deleted; neither adopted nor waited for.
	leaving
)

// found is a resource found under an idempotency key.
type found struct {
	id      string
	created time.Time // cloud clock
	seenAt  time.Time // its last change (cloud clock): its watch starts there
	state   foundState
}

// keyedCreate is a create that records an idempotency key on the resource
// (server or volume metadata, image property) and adopts what exists
// under it. Every create has a key: the caller's, or a new one.
type keyedCreate[T any] struct {
	c      *Cloud
	o      callOpts
	kind   Kind
	key    string
	keySet bool // given by the caller: an earlier run may have used it
	// find lists what exists under the key.
	find func(ctx context.Context) ([]found, error)
	// post makes the create call and returns its answer and the new id.
	post func(ctx context.Context) (res gophercloud.Result, id string, err error)
	// wait watches id from since (cloud clock) until the create is done.
	wait func(ctx context.Context, id string, since time.Time, in *Initial) *future.Future[T]
	// remove deletes a failed resource and waits until it is gone.
	remove func(ctx context.Context, id string) error
}

// start is the attemptSpec.start of the create.
//
// A create with the caller's key (a re-run after a crash, say) looks
// first: it adopts what an earlier run made, and — unless CleanupKeep —
// removes the wrecks an earlier run left under the key before making a new
// one. Attempts after the first look too, in case a lost answer's build
// came late. And a call whose answer was lost is never sent again before
// a look under the key has shown that it made nothing.
func (k keyedCreate[T]) start(ctx context.Context, attempt int) (Initial, *future.Future[T], error) {
	since := k.c.serverNow()
	if k.keySet || attempt > 1 {
		fs, err := k.find(ctx)
		if err != nil {
			return Initial{}, nil, err
		}
		if f := pick(fs, time.Time{}); f != nil && f.state == adoptable {
			in := Initial{ID: f.id, StatusCode: http.StatusOK, Adopted: attempt == 1, Recovered: attempt > 1}
			return in, k.wait(ctx, f.id, f.seenAt, &in), nil
		}
		if err := k.removeWrecks(ctx, fs); err != nil {
			return Initial{}, nil, err
		}
	}
	var res gophercloud.Result
	var id string
	var ours *found
	err := k.c.call.run(ctx, func(ctx context.Context) (err error) {
		res, id, err = k.post(ctx)
		return err
	}, func(ctx context.Context) (bool, error) {
		fs, err := k.find(ctx)
		if err != nil {
			return false, err
		}
		// Only what was made since this attempt's first call is ours: an
		// earlier wreck kept under the key (CleanupKeep) is not.
		ours = pick(fs, since)
		return ours != nil, nil
	})
	if err != nil {
		return Initial{}, nil, err
	}
	in := initialFrom(res, id)
	if ours != nil {
		in = Initial{ID: ours.id, StatusCode: http.StatusOK, Recovered: true}
	}
	return in, k.wait(ctx, in.ID, since, &in), nil
}

// pick chooses, among the resources found under a key that were made at
// or after since (any when zero) and are not being deleted, the one to
// adopt: the youngest that is not a wreck, else the youngest wreck.
func pick(fs []found, since time.Time) *found {
	var best *found
	// The cloud's timestamps have one-second resolution.
	floor := since.Truncate(time.Second)
	for i := range fs {
		f := &fs[i]
		if f.state == leaving || (!since.IsZero() && f.created.Before(floor)) {
			continue
		}
		if best == nil || (best.state == wreck && f.state == adoptable) ||
			(best.state == f.state && f.created.After(best.created)) {
			best = f
		}
	}
	return best
}

// removeWrecks deletes the failed resources found under the key (unless
// the caller keeps wrecks) and waits until they are gone.
func (k keyedCreate[T]) removeWrecks(ctx context.Context, fs []found) error {
	if k.o.cleanup == CleanupKeep {
		return nil
	}
	for _, f := range fs {
		if f.state != wreck {
			continue
		}
		if err := k.remove(ctx, f.id); err != nil {
			return &CleanupError{Kind: k.kind, ID: f.id, Err: err}
		}
	}
	return nil
}

// createKey is the idempotency key of a create: the caller's, or a new
// one. Every create carries one, so that a lost answer is never answered
// by a second resource.
func createKey(o callOpts) string {
	if o.key == "" {
		return newKey()
	}
	return o.key
}

// withKey returns a copy of metadata that records key.
func withKey(metadata map[string]string, key string) map[string]string {
	md := make(map[string]string, len(metadata)+1)
	for k, v := range metadata {
		md[k] = v
	}
	md[IdempotencyMetadataKey] = key
	return md
}
