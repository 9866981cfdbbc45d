package tasks

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/ostask/ostask/ops"
)

// serversByKey returns the servers named name whose metadata holds the
// idempotency key (several when a create retried after an attempt it could
// not clean up). The list is a detail list: statuses come with it.
func serversByKey(ctx context.Context, c *ops.Cloud, name, key string) ([]servers.Server, error) {
	pages, err := servers.List(c.Compute, servers.ListOpts{Name: "^" + regexp.QuoteMeta(name) + "$"}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("look up servers by idempotency key: %w", err)
	}
	ss, err := servers.ExtractServers(pages)
	if err != nil {
		return nil, err
	}
	var out []servers.Server
	for _, s := range ss {
		if s.Metadata[ops.IdempotencyMetadataKey] == key {
			out = append(out, s)
		}
	}
	return out, nil
}

// volumeKeyQuery lists volumes by metadata, in Cinder's metadata={"k":"v"} form.
type volumeKeyQuery struct{ key string }

func (q volumeKeyQuery) ToVolumeListQuery() (string, error) {
	b, err := json.Marshal(map[string]string{ops.IdempotencyMetadataKey: q.key})
	if err != nil {
		return "", err
	}
	return "?" + url.Values{"metadata": {string(b)}}.Encode(), nil
}

// volumesByKey returns the volumes whose metadata holds key (a detail
// list: statuses and attachments come with it).
func volumesByKey(ctx context.Context, c *ops.Cloud, key string) ([]volumes.Volume, error) {
	pages, err := volumes.List(c.Volume, volumeKeyQuery{key}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("look up volumes by idempotency key: %w", err)
	}
	vs, err := volumes.ExtractVolumes(pages)
	if err != nil {
		return nil, err
	}
	var out []volumes.Volume
	for _, v := range vs {
		if v.Metadata[ops.IdempotencyMetadataKey] == key {
			out = append(out, v)
		}
	}
	return out, nil
}

// imageKeyQuery lists images by a custom property, as Glance allows.
type imageKeyQuery struct{ key string }

func (q imageKeyQuery) ToImageListQuery() (string, error) {
	return "?" + url.Values{ops.IdempotencyMetadataKey: {q.key}}.Encode(), nil
}

// imagesByKey returns the images whose properties hold key.
func imagesByKey(ctx context.Context, c *ops.Cloud, key string) ([]images.Image, error) {
	pages, err := images.List(c.Image, imageKeyQuery{key}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("look up images by idempotency key: %w", err)
	}
	is, err := images.ExtractImages(pages)
	if err != nil {
		return nil, err
	}
	var out []images.Image
	for _, im := range is {
		if v, _ := im.Properties[ops.IdempotencyMetadataKey].(string); v == key {
			out = append(out, im)
		}
	}
	return out, nil
}

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
