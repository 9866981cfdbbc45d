package ops

import (
	"context"
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
func (c *Cloud) pollImages(ctx context.Context, req pollRequest) ([]*observation, error) {
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
			return nil, err
		}
	}
	for id := range req.IDs {
		if !seen[id] {
			obs = append(obs, &observation{ID: id, Gone: true, Status: "deleted"})
		}
	}
	return obs, nil
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
	o, err := c.resolve(options)
	if err != nil {
		return nil, err
	}
	since := c.serverNow()
	var res images.DeleteResult
	err = callRetry(ctx, callAttempts, func(ctx context.Context) error {
		res = images.Delete(ctx, c.Image, id)
		return res.Err
	}, nil)
	if gophercloud.ResponseCodeIs(err, 404) {
		return &Operation[struct{}]{Future: future.Resolved(struct{}{}), initial: Initial{ID: id, StatusCode: 404}}, nil
	}
	if err != nil {
		return nil, err
	}
	in := initialFrom(res.Result, id)
	in.StatusCode = 204
	f := waitWatch(ctx, c.images, &watch{id: id, op: "delete", since: since, wantGone: true, judge: func(ob *observation) (verdict, error) {
		if ob.Gone {
			return succeeded, nil
		}
		return pending, nil
	}}, o.timeout, func(*observation) (struct{}, error) { return struct{}{}, nil })
	return &Operation[struct{}]{Future: f, initial: in, attempts: 1}, nil
}
