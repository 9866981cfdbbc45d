package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/ops"
)

// workerClouds are the clouds tasks act in, one per project, with the
// credentials configured for it in clouds.yaml (never a caller's token:
// a task may outlive it). They are dialled once, at start, so that a
// wrong setting stops the process at once.
type workerClouds struct {
	mu      sync.Mutex
	byID    map[string]*ops.Cloud
	byName  map[string]*ops.Cloud
	all     []*ops.Cloud
	secrets []string
}

// projectCloudUsage is the one meaning of --project-cloud.
const projectCloudUsage = "PROJECT=CLOUD: tasks of PROJECT (its id or name) act with clouds.yaml's CLOUD's credentials, which must be scoped to PROJECT (repeatable)"

// dialWorkerClouds dials osCloud (serving its own project, when not
// empty) and each PROJECT=CLOUD of pairs.
func dialWorkerClouds(ctx context.Context, osCloud string, pairs []string, cfg ops.Config) (*workerClouds, error) {
	pc := &workerClouds{byID: map[string]*ops.Cloud{}, byName: map[string]*ops.Cloud{}}
	type want struct{ project, cloud string }
	var ws []want
	if osCloud != "" {
		ws = append(ws, want{"", osCloud})
	}
	for _, p := range pairs {
		project, cloud, ok := strings.Cut(p, "=")
		if !ok || project == "" || cloud == "" {
			return nil, usageError("--project-cloud %q: want PROJECT=CLOUD", p)
		}
		ws = append(ws, want{project, cloud})
	}
	if len(ws) == 0 {
		return nil, usageError("no cloud credentials: give --os-cloud NAME (or OS_CLOUD) and/or --project-cloud PROJECT=CLOUD")
	}
	for _, w := range ws {
		auth, err := ops.AuthFromClouds(w.cloud)
		if err != nil {
			pc.Close()
			return nil, &ExitError{Code: 2, Err: err}
		}
		auth.Options.AllowReauth = true
		c, err := ops.Dial(ctx, auth, cfg)
		if err != nil {
			pc.Close()
			if errors.Is(err, ops.ErrConfig) || errors.Is(err, ops.ErrInvalidOption) {
				return nil, &ExitError{Code: 2, Err: err}
			}
			return nil, fmt.Errorf("cloud %s: %s", w.cloud, describe(err))
		}
		pc.all = append(pc.all, c)
		o := auth.Options
		pc.secrets = append(pc.secrets, o.Password, o.TokenID, o.ApplicationCredentialSecret, o.Passcode)
		id, name, err := cloudProject(c)
		if err != nil {
			pc.Close()
			return nil, fmt.Errorf("cloud %s: %w", w.cloud, err)
		}
		if w.project != "" && w.project != id && w.project != name {
			pc.Close()
			return nil, usageError("--project-cloud %s=%s: the cloud's credentials are scoped to project %s (%s)", w.project, w.cloud, name, id)
		}
		pc.byID[id] = c
		if name != "" {
			pc.byName[name] = c
		}
	}
	return pc, nil
}

// cloudProject is the project a cloud's token is scoped to.
func cloudProject(c *ops.Cloud) (id, name string, err error) {
	res, ok := c.Compute.ProviderClient.GetAuthResult().(tokens.CreateResult)
	if !ok {
		return "", "", errors.New("the cloud's authentication gave no Keystone v3 token")
	}
	p, err := res.ExtractProject()
	if err != nil || p == nil || p.ID == "" {
		return "", "", fmt.Errorf("the cloud's token is not scoped to a project (%v)", err)
	}
	return p.ID, p.Name, nil
}

// Resolve returns the cloud of a project (its id, or its name).
func (pc *workerClouds) Resolve(_ context.Context, project string) (*ops.Cloud, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if c, ok := pc.byID[project]; ok {
		return c, nil
	}
	if c, ok := pc.byName[project]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("%w: %q", jobs.ErrNoCredentials, project)
}

// Secrets are the credentials the clouds were dialled with, for the
// store to scrub.
func (pc *workerClouds) Secrets() []string { return pc.secrets }

// Close closes every cloud.
func (pc *workerClouds) Close() {
	for _, c := range pc.all {
		_ = c.Close()
	}
}
