package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/ostask/ostask/store"
	"github.com/ostask/ostask/store/postgres"
	"github.com/ostask/ostask/store/sqlite"
)

// storeUsage is the one meaning of --store, everywhere.
const storeUsage = "where flow runs are recorded: a SQLite file (PATH or sqlite:PATH), postgres://..., or none to keep the run in memory only (default: ostask.db under the state directory, $XDG_STATE_HOME/ostask or ~/.local/state/ostask)"

// crashEnv makes a process kill itself (SIGKILL) at one stage of one of its
// store writes: "N:before", "N:inside" or "N:after" for the N-th write
// (1-based) of the run. It exists for the crash tests of durable flows,
// which must be able to stop a real process at every point of a run.
const crashEnv = "OSTASK_TEST_CRASH_AT"

// storeURL returns the --store value, or the default file.
func storeURL(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	dir, err := stateDir()
	if err != nil {
		return "", usageError("no state directory for the default store (%v); give --store PATH, --store postgres://..., or --store none", err)
	}
	return filepath.Join(dir, "ostask.db"), nil
}

// openStore opens the store at url (nil for "none"), applying its
// migrations. A database newer than this binary is refused (exit 2).
func openStore(ctx context.Context, url string, opts ...store.Option) (*store.DB, error) {
	if hook, err := crashHook(); err != nil {
		return nil, err
	} else if hook != nil {
		opts = append(opts, store.WithWriteHook(hook))
	}
	var db *store.DB
	var err error
	switch {
	case url == "none":
		return nil, nil
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		db, err = postgres.Open(ctx, url, nil, opts...)
	default:
		path := strings.TrimPrefix(url, "sqlite:")
		if path == "" {
			return nil, usageError("--store %q: no file", url)
		}
		db, err = sqlite.Open(ctx, path, opts...)
	}
	if err != nil {
		if errors.Is(err, store.ErrSchemaTooNew) || errors.Is(err, sqlite.ErrBadPath) {
			return nil, &ExitError{Code: 2, Err: fmt.Errorf("store %s: %w", redactURL(url), err)}
		}
		return nil, fmt.Errorf("store %s: %w", redactURL(url), err)
	}
	return db, nil
}

// redactURL hides a password in a database URL.
func redactURL(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return url
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return url
}

func crashHook() (func(store.WriteStage), error) {
	spec := os.Getenv(crashEnv)
	if spec == "" {
		return nil, nil
	}
	n, stage, ok := strings.Cut(spec, ":")
	at, err := strconv.Atoi(n)
	want := map[string]store.WriteStage{"before": store.BeforeWrite, "inside": store.InsideWrite, "after": store.AfterWrite}[stage]
	if !ok || err != nil || at < 1 || want == 0 {
		return nil, usageError("%s=%q: want N:before, N:inside or N:after", crashEnv, spec)
	}
	writes := 0
	return func(s store.WriteStage) {
		if s == store.BeforeWrite {
			writes++
		}
		if writes == at && s == want {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}, nil
}
