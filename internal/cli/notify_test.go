package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --notifications turns event-driven completion on: with --sim, from the
// embedded cloud's own bus; nonsense is a usage error that does not show
// the password.
func TestNotificationsFlag(t *testing.T) {
	t.Setenv("OS_CLOUD", "")
	t.Setenv("OS_AUTH_URL", "")
	code, out, stderr := run(t, "server", "create", "evt", "--sim", "--notifications", "sim", "--flavor", "m1.tiny",
		"--image", "cirros-0.6.2-x86_64-disk", "--network", "none", "--count", "2", "--json")
	if code != 0 || strings.Count(out, `"ACTIVE"`) != 2 {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"server", "stop", "x", "--notifications", "sim"}, "--notifications sim needs --sim"},
		{[]string{"server", "stop", "x", "--sim", "--notifications", "http://u:pw-secret@h/"}, "scheme must be amqp"},
	} {
		code, _, stderr := run(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || strings.Contains(stderr, "pw-secret") {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 with %q and no password", tc.args, code, stderr, tc.want)
		}
	}
}

// clouds.yaml's ostask.notifications is read for the cloud in use.
func TestNotificationsFromCloudsYAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(path, []byte("clouds:\n  c1:\n    auth: {auth_url: http://127.0.0.1:1/v3}\n    ostask:\n      notifications: http://not-amqp/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OS_CLIENT_CONFIG_FILE", path)
	code, _, stderr := run(t, "server", "stop", "x", "--os-cloud", "c1")
	if code != 2 || !strings.Contains(stderr, "scheme must be amqp") {
		t.Errorf("exit %d, stderr %q: the clouds.yaml setting was not used", code, stderr)
	}
}
