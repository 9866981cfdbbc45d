package ops

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/ostask/ostask/future"
)

// imageChunk is how many ids one Glance list asks for (id=in:...).
const imageChunk = 50

// pollImages is one image monitor round: GET /v2/images?id=in:<ids> in
// chunks. Glance never lists deleted images, so absence is proof of
// deletion.
func (c *Cloud) pollImages(ctx context.Context, req pollRequest, emit func([]*observation)) error {
	ids := make([]string, 0, len(req.IDs))
	for id := range req.IDs {
		ids = append(ids, id)
	}
	var obs []*observation
	seen := map[string]bool{}
	for len(ids) > 0 {
		n := min(len(ids), imageChunk)
		chunk := ids[:n]
		ids = ids[n:]
		err := images.List(c.Image, images.ListOpts{ID: "in:" + strings.Join(chunk, ",")}).EachPage(ctx,
			func(ctx context.Context, page pagination.Page) (bool, error) {
				is, err := images.ExtractImages(page)
				if err != nil {
					return false, err
				}
				for i := range is {
					if req.IDs[is[i].ID] && !seen[is[i].ID] {
						seen[is[i].ID] = true
						obs = append(obs, &observation{ID: is[i].ID, Status: string(is[i].Status), Resource: &is[i]})
					}
				}
				return true, nil
			})
		if err != nil {
			return err
		}
	}
	for id := range req.IDs {
		if !seen[id] {
			obs = append(obs, &observation{ID: id, Gone: true, Status: "deleted"})
		}
	}
	emit(obs)
	return nil
}

func asImage(o *observation) (*images.Image, error) {
	im, _ := o.Resource.(*images.Image)
	return im, nil
}

func (c *Cloud) waitImage(ctx context.Context, id, op string, since time.Time, o callOpts, judge func(*observation) (verdict, error)) *future.Future[*images.Image] {
	w := &watch{id: id, op: op, since: since, judge: judge, wantGone: op == "delete"}
	return waitWatch(ctx, c.images, w, o.timeout, asImage)
}

// DeleteImage deletes an image; resolves when Glance no longer lists it.
func (c *Cloud) DeleteImage(ctx context.Context, id string, options ...Option) (*Operation[struct{}], error) {
	if c.Image == nil {
		return nil, errNoImageService
	}
	return deleteOp(ctx, c, c.images, KindImage, id, http.StatusNoContent, options, func(ctx context.Context) gophercloud.Result {
		return images.Delete(ctx, c.Image, id).Result
	}, func(ctx context.Context) (bool, error) {
		im, err := getOrNil(ctx, c, func(ctx context.Context) (*images.Image, error) { return images.Get(ctx, c.Image, id).Extract() })
		if err != nil || im == nil {
			return im == nil, err
		}
		return imageFoundState(im) == leaving, nil
	}, func(*Initial, *observation) error { return nil }, nil)
}

func imageFoundState(im *images.Image) foundState {
	switch im.Status {
	case images.ImageStatusDeleted, images.ImageStatusPendingDelete:
		return leaving
	case images.ImageStatusKilled:
		return wreck
	}
	return adoptable
}

// imagePropertyQuery lists images by one custom property (Glance filters
// on any property given as a query parameter).
type imagePropertyQuery struct{ key, value string }

func (q imagePropertyQuery) ToImageListQuery() (string, error) {
	return "?" + url.Values{q.key: {q.value}}.Encode(), nil
}

// ImagesByKey lists the images whose properties hold the idempotency key
// key: the snapshots and backups made with it.
func (c *Cloud) ImagesByKey(ctx context.Context, key string) ([]images.Image, error) {
	if c.Image == nil {
		return nil, errNoImageService
	}
	var out []images.Image
	err := c.call.run(ctx, func(ctx context.Context) error {
		pages, err := images.List(c.Image, imagePropertyQuery{IdempotencyMetadataKey, key}).AllPages(ctx)
		if err != nil {
			return err
		}
		is, err := images.ExtractImages(pages)
		out = out[:0]
		for _, im := range is {
			if v, _ := im.Properties[IdempotencyMetadataKey].(string); v == key {
				out = append(out, im)
			}
		}
		return err
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("look up images by idempotency key: %w", err)
	}
	return out, nil
}
