package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	// The cloud is on loopback: watch it as closely as --sim does, so
	// that each command does not wait out a 1 s round.
	t.Setenv(monitorIntervalEnv, "100ms")
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

// runSim runs 'ostask sim args...' until it prints the variables to
// export (after writing its clouds.yaml), then ends its context as SIGINT
// does in Exec, and checks that it stops with exit 0. It returns the
// export line ("" with --clouds-yaml ”).
func runSim(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		code := Main(ctx, append([]string{"sim"}, args...), pw, &errb)
		_ = pw.Close()
		done <- code
	}()
	var export string
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "export OS_CLIENT_CONFIG_FILE=") {
			export = strings.TrimSpace(sc.Text())
			break
		}
	}
	cancel()
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	select {
	case code := <-done:
		if code != 0 || export == "" {
			t.Fatalf("ostask sim %s: exit %d, export line %q: %s", strings.Join(args, " "), code, export, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ostask sim did not stop")
	}
	return export
}
