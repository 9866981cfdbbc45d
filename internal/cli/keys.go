package cli

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/ostask/ostask/ops"
	"github.com/ostask/ostask/retry"
)

// maxKeyLen leaves room for the "/index" of per-resource keys within the
// 255 characters ops accepts.
const maxKeyLen = 200

// createKeys returns the base idempotency key of a create — the user's,
// or a new one — and whether it was made up here.
func createKeys(wf *waitFlags, changed bool) (string, bool, error) {
	if changed {
		if wf.key == "" || len(wf.key) > maxKeyLen {
			return "", false, usageError("--idempotency-key must be 1..%d characters", maxKeyLen)
		}
		return wf.key, false, nil
	}
	return uuid.NewString(), true, nil
}

// resourceKey is the key of the i-th resource (0-based) of a create. It
// depends only on the base key and the index, so that a re-run with the
// same key and arguments finds each resource again.
func resourceKey(base string, i int) string { return base + "/" + strconv.Itoa(i+1) }

// announceKey tells, before any call, how to resume a create safely.
func announceKey(w interface{ Write([]byte) (int, error) }, key string, generated bool, resume string) {
	if generated {
		fmt.Fprintf(w, "ostask: idempotency key %s; if this run is cut short, run this to adopt what it made instead of making more:\n  %s\n", key, resume)
	}
}

// resumeCommand is the command line args with --idempotency-key key.
func resumeCommand(args []string, key string) string {
	return resumeWith(args, "--idempotency-key", key)
}

// resumeWith is the command line args, quoted for a shell, with flag set
// to value (replacing the flag where args gave it).
func resumeWith(args []string, flag, value string) string {
	q := make([]string, 0, len(args)+3)
	q = append(q, "ostask")
	skip := false
	for _, a := range args {
		switch {
		case skip:
			skip = false
			continue
		case a == flag:
			skip = true
			continue
		case strings.HasPrefix(a, flag+"="):
			continue
		}
		q = append(q, shellQuote(a))
	}
	return strings.Join(append(q, flag, shellQuote(value)), " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// findByKey finds the resource a create made under key, after an
// interrupt cut the create's call short; "" if there is none.
func findByKey(ctx context.Context, c *ops.Cloud, kind ops.Kind, name, key string) (string, error) {
	switch kind {
	case ops.KindServer:
		pages, err := servers.List(c.Compute, servers.ListOpts{Name: "^" + regexp.QuoteMeta(name) + "$"}).AllPages(ctx)
		if err != nil {
			return "", err
		}
		ss, err := servers.ExtractServers(pages)
		if err != nil {
			return "", err
		}
		for _, s := range ss {
			if s.Metadata[ops.IdempotencyMetadataKey] == key {
				return s.ID, nil
			}
		}
	case ops.KindVolume:
		pages, err := volumes.List(c.Volume, volumes.ListOpts{Metadata: map[string]string{ops.IdempotencyMetadataKey: key}}).AllPages(ctx)
		if err != nil {
			return "", err
		}
		vs, err := volumes.ExtractVolumes(pages)
		if err != nil {
			return "", err
		}
		for _, v := range vs {
			if v.Metadata[ops.IdempotencyMetadataKey] == key {
				return v.ID, nil
			}
		}
	case ops.KindImage:
		pages, err := images.List(c.Image, imageProperty{ops.IdempotencyMetadataKey, key}).AllPages(ctx)
		if err != nil {
			return "", err
		}
		is, err := images.ExtractImages(pages)
		if err != nil {
			return "", err
		}
		for _, im := range is {
			if v, _ := im.Properties[ops.IdempotencyMetadataKey].(string); v == key {
				return im.ID, nil
			}
		}
	}
	return "", nil
}

// imageProperty filters an image list by one property.
type imageProperty struct{ key, value string }

func (q imageProperty) ToImageListQuery() (string, error) {
	return "?" + url.Values{q.key: {q.value}}.Encode(), nil
}

// deleteBackoff is the wait between delete attempts.
var deleteBackoff = retry.Policy{Initial: time.Second, Max: 10 * time.Second, Multiplier: 2, Jitter: 0.2}

// deleteWithRetries deletes one resource and waits until it is gone,
// trying again (attempts in all) after a failure worth retrying.
func deleteWithRetries(ctx context.Context, attempts int, del func(ctx context.Context) (*ops.Operation[struct{}], error),
	onAccepted func(*ops.Operation[struct{}])) (int, error) {
	p := deleteBackoff
	p.MaxAttempts = attempts
	made := 0
	err := retry.Do(ctx, p, func(ctx context.Context, attempt int) error {
		made = attempt
		op, err := del(ctx)
		if err != nil {
			return err
		}
		if onAccepted != nil {
			onAccepted(op)
		}
		_, err = op.Result(ctx)
		return err
	}, retry.WithClassifier(ops.Retryable))
	return made, err
}

// deleteResource deletes what a create made, for --cleanup-on-interrupt.
func deleteResource(ctx context.Context, c *ops.Cloud, kind ops.Kind, id string) error {
	del := map[ops.Kind]func(context.Context, string, ...ops.Option) (*ops.Operation[struct{}], error){
		ops.KindServer: c.DeleteServer, ops.KindVolume: c.DeleteVolume, ops.KindImage: c.DeleteImage,
	}[kind]
	if del == nil {
		return fmt.Errorf("cannot delete a %s", kind)
	}
	_, err := deleteWithRetries(ctx, 3, func(ctx context.Context) (*ops.Operation[struct{}], error) { return del(ctx, id) }, nil)
	return err
}
