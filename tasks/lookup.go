package tasks

import (
	"context"
	"fmt"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ostask/ostask/ops"
)

// getServer returns the server, or nil when it does not exist.
func getServer(ctx context.Context, c *ops.Cloud, id string) (*servers.Server, error) {
	s, err := servers.Get(ctx, c.Compute, id).Extract()
	if gophercloud.ResponseCodeIs(err, 404) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get server %s: %w", id, err)
	}
	return s, nil
}

// getVolume returns the volume, or nil when it does not exist.
func getVolume(ctx context.Context, c *ops.Cloud, id string) (*volumes.Volume, error) {
	v, err := volumes.Get(ctx, c.Volume, id).Extract()
	if gophercloud.ResponseCodeIs(err, 404) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get volume %s: %w", id, err)
	}
	return v, nil
}

func attachedTo(v *volumes.Volume, serverID string) bool {
	for _, a := range v.Attachments {
		if a.ServerID == serverID {
			return true
		}
	}
	return false
}

// deleteAll deletes every id with del and waits until each is gone; ids
// may repeat or be empty. It returns the first error after trying all.
func deleteAll[T any](ctx context.Context, ids []string, del func(ctx context.Context, id string) (*ops.Operation[T], error)) error {
	seen := map[string]bool{}
	var first error
	for _, id := range ids {
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		op, err := del(ctx, id)
		if err == nil {
			_, err = op.Result(ctx)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	return first
}
