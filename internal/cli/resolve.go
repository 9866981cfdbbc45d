package cli

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/ostask/ostask/ops"
)

// notFound is bad input: the named resource does not exist (exit 2).
func notFound(kind, ref string) error {
	return &ExitError{Code: 2, Err: fmt.Errorf("no %s named or with id %q", kind, ref)}
}

func ambiguousRef(kind, ref string, n int) error {
	return &ExitError{Code: 2, Err: fmt.Errorf("%d %ss are named %q; use the id", n, kind, ref)}
}

func resolveFlavor(ctx context.Context, c *ops.Cloud, ref string) (string, error) {
	pages, err := flavors.ListDetail(c.Compute, flavors.ListOpts{}).AllPages(ctx)
	if err != nil {
		return "", fmt.Errorf("list flavors: %w", err)
	}
	fs, err := flavors.ExtractFlavors(pages)
	if err != nil {
		return "", err
	}
	for _, f := range fs {
		if f.ID == ref || f.Name == ref {
			return f.ID, nil
		}
	}
	return "", notFound("flavor", ref)
}

func resolveImage(ctx context.Context, c *ops.Cloud, ref string) (string, error) {
	if c.Image == nil {
		return ref, nil
	}
	pages, err := images.List(c.Image, images.ListOpts{}).AllPages(ctx)
	if err != nil {
		return "", fmt.Errorf("list images: %w", err)
	}
	is, err := images.ExtractImages(pages)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, im := range is {
		if im.ID == ref {
			return im.ID, nil
		}
		if im.Name == ref {
			ids = append(ids, im.ID)
		}
	}
	switch len(ids) {
	case 0:
		return "", notFound("image", ref)
	case 1:
		return ids[0], nil
	}
	return "", ambiguousRef("image", ref, len(ids))
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

func resolveServer(ctx context.Context, c *ops.Cloud, ref string) (string, error) {
	if uuidRE.MatchString(ref) {
		if _, err := servers.Get(ctx, c.Compute, ref).Extract(); err == nil {
			return ref, nil
		}
	}
	pages, err := servers.List(c.Compute, servers.ListOpts{Name: "^" + regexp.QuoteMeta(ref) + "$"}).AllPages(ctx)
	if err != nil {
		return "", fmt.Errorf("find server %q: %w", ref, err)
	}
	ss, err := servers.ExtractServers(pages)
	if err != nil {
		return "", err
	}
	switch len(ss) {
	case 0:
		return "", notFound("server", ref)
	case 1:
		return ss[0].ID, nil
	}
	return "", ambiguousRef("server", ref, len(ss))
}

func resolveVolume(ctx context.Context, c *ops.Cloud, ref string) (string, error) {
	if c.Volume == nil {
		return "", &ExitError{Code: 2, Err: fmt.Errorf("the cloud has no block-storage service")}
	}
	if uuidRE.MatchString(ref) {
		if _, err := volumes.Get(ctx, c.Volume, ref).Extract(); err == nil {
			return ref, nil
		}
	}
	pages, err := volumes.List(c.Volume, volumes.ListOpts{Name: ref}).AllPages(ctx)
	if err != nil {
		return "", fmt.Errorf("find volume %q: %w", ref, err)
	}
	vs, err := volumes.ExtractVolumes(pages)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, v := range vs {
		if v.Name == ref {
			ids = append(ids, v.ID)
		}
	}
	switch len(ids) {
	case 0:
		return "", notFound("volume", ref)
	case 1:
		return ids[0], nil
	}
	return "", ambiguousRef("volume", ref, len(ids))
}

// names expands NAME with --count N into NAME-1..NAME-N.
func names(base string, count int) []string {
	if count <= 1 {
		return []string{base}
	}
	out := make([]string, count)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", base, i+1)
	}
	return out
}

// parseNetworks turns --network into Nova's networks value.
func parseNetworks(v string) (any, error) {
	switch v {
	case "none", "auto":
		return v, nil
	}
	var nets []servers.Network
	for _, id := range strings.Split(v, ",") {
		if !uuidRE.MatchString(id) {
			return nil, usageError("--network %q: want none, auto or network UUIDs separated by commas", v)
		}
		nets = append(nets, servers.Network{UUID: id})
	}
	return nets, nil
}
