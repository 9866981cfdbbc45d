package cli

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/ostask/ostask/ops"
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
// interrupt cut the create's call short; "" if there is none. Lists come
// newest first (the clouds' default order), and the newest is the
// attempt in flight.
func findByKey(ctx context.Context, c *ops.Cloud, kind ops.Kind, name, key string) (string, error) {
	switch kind {
	case ops.KindServer:
		ss, err := c.ServersByKey(ctx, name, key)
		if err != nil || len(ss) == 0 {
			return "", err
		}
		return ss[0].ID, nil
	case ops.KindVolume:
		vs, err := c.VolumesByKey(ctx, key)
		if err != nil || len(vs) == 0 {
			return "", err
		}
		return vs[0].ID, nil
	case ops.KindImage:
		is, err := c.ImagesByKey(ctx, key)
		if err != nil || len(is) == 0 {
			return "", err
		}
		return is[0].ID, nil
	}
	return "", nil
}

// deleteResource deletes what a create made, for --cleanup-on-interrupt,
// and waits until it is gone.
func deleteResource(ctx context.Context, c *ops.Cloud, kind ops.Kind, id string) error {
	del := map[ops.Kind]func(context.Context, string, ...ops.Option) (*ops.Operation[struct{}], error){
		ops.KindServer: c.DeleteServer, ops.KindVolume: c.DeleteVolume, ops.KindImage: c.DeleteImage,
	}[kind]
	if del == nil {
		return fmt.Errorf("cannot delete a %s", kind)
	}
	op, err := del(ctx, id, ops.WithRetries(3))
	if err != nil {
		return err
	}
	_, err = op.Result(ctx)
	return err
}
