package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ostask/ostask/cloudsim"
)

// clearCloudEnv empties every OS_* variable for the test, so that the
// machine's settings cannot select a cloud.
func clearCloudEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OS_") {
			t.Setenv(k, "")
		}
	}
}

// simEnv starts a cloudsim that outlives single commands, as 'ostask sim'
// does, and points OS_CLIENT_CONFIG_FILE and OS_CLOUD at it, as a user
// does with the two variables 'ostask sim' prints.
func simEnv(t *testing.T, cfg cloudsim.Config) *cloudsim.Sim {
	t.Helper()
	clearCloudEnv(t)
	sim, err := cloudsim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	path := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := sim.WriteCloudsYAML(path, cloudsim.DefaultCloudName); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OS_CLIENT_CONFIG_FILE", path)
	t.Setenv("OS_CLOUD", cloudsim.DefaultCloudName)
	return sim
}

// mustRun runs a command that must succeed.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, stderr := run(t, args...)
	if code != 0 {
		t.Fatalf("%s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, stderr)
	}
	return out
}

func decodeOutcomes(t *testing.T, out string) []outcome {
	t.Helper()
	var res []outcome
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	return res
}

// liveServers are the servers of a simulator that are not deleted, by name.
func liveServers(sim *cloudsim.Sim) map[string][]cloudsim.ServerInfo {
	out := map[string][]cloudsim.ServerInfo{}
	for _, s := range sim.Servers(false) {
		out[s.Name] = append(out[s.Name], s)
	}
	return out
}
