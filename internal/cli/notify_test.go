package cli

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ostask/ostask/cloudsim"
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

// The service's workers complete from notifications too: 'serve --sim
// --notifications sim' runs a server.create whose server the embedded
// cloud's bus reports, and /metrics shows the demo project's cloud
// connected and completing from events.
func TestServeNotifications(t *testing.T) {
	s := startServe(t, "--notifications", "sim")
	out := mustRun(t, "task", "create", "server.create", "--param", "name=evt-1", "--param", "flavor=1",
		"--param", "image="+cloudsim.CirrosImageID, "--json")
	if !strings.Contains(out, `"status": "succeeded"`) && !strings.Contains(out, `"status":"succeeded"`) {
		t.Fatalf("create:\n%s", out)
	}
	res, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	metrics := string(body)
	for _, want := range []string{`ostask_notifications_connected{cloud="` + cloudsim.DemoProjectID + `"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, grepLines(metrics, "notification"))
		}
	}
	var done float64
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, `ostask_notification_completions_total{cloud="`+cloudsim.DemoProjectID+`"}`) {
			done, _ = strconv.ParseFloat(strings.Fields(l)[1], 64)
		}
	}
	if done < 1 {
		t.Errorf("no operation completed by a notification:\n%s", grepLines(metrics, "notification"))
	}
	s.stop(t)
	if !strings.Contains(s.logText(), "notifications connected") {
		t.Errorf("the log does not say the notifications connected:\n%s", s.logText())
	}
}

// serve and worker take --notifications for every project's cloud, or
// each cloud's clouds.yaml setting, "off" for none; nonsense is refused
// at start without showing a password.
func TestProjectAuthsNotifications(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clouds.yaml")
	yaml := `clouds:
  withbus:
    auth: {auth_url: "http://127.0.0.1:1/v3", username: u, password: p, project_name: a, user_domain_name: Default, project_domain_name: Default}
    ostask: {notifications: "amqp://u:bus-secret@rabbit.example:5672/"}
  nobus:
    auth: {auth_url: "http://127.0.0.1:1/v3", username: u, password: p, project_name: b, user_domain_name: Default, project_domain_name: Default}
  badbus:
    auth: {auth_url: "http://127.0.0.1:1/v3", username: u, password: p, project_name: c, user_domain_name: Default, project_domain_name: Default}
    ostask: {notifications: "http://u:bus-secret@rabbit.example/"}
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OS_CLIENT_CONFIG_FILE", path)
	url := func(pa projectAuth) string {
		if pa.notify == nil {
			return ""
		}
		return pa.notify.URL
	}
	pas, err := projectAuths("withbus", []string{"b=nobus"}, "")
	if err != nil || len(pas) != 2 || url(pas[0]) != "amqp://u:bus-secret@rabbit.example:5672/" || url(pas[1]) != "" {
		t.Fatalf("clouds.yaml's settings: %+v, %v", pas, err)
	}
	pas, err = projectAuths("withbus", []string{"b=nobus"}, "amqp://other:5672/")
	if err != nil || url(pas[0]) != "amqp://other:5672/" || url(pas[1]) != "amqp://other:5672/" {
		t.Fatalf("--notifications for all: %+v, %v", pas, err)
	}
	if pas, err = projectAuths("withbus", nil, "off"); err != nil || url(pas[0]) != "" {
		t.Fatalf("--notifications off: %+v, %v", pas, err)
	}
	for _, tc := range []struct {
		cloud, flag, want string
	}{
		{"badbus", "", "scheme must be amqp"},
		{"nobus", "sim", "needs --sim"},
		{"nobus", "ftp://u:bus-secret@h/", "scheme must be amqp"},
	} {
		_, err := projectAuths(tc.cloud, nil, tc.flag)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "bus-secret") {
			t.Errorf("%s with --notifications %q: %v; want an error with %q and no password", tc.cloud, tc.flag, err, tc.want)
		}
	}
	if code, _, stderr := run(t, "worker", "--os-cloud", "badbus", "--store", "sqlite:"+filepath.Join(t.TempDir(), "w.db")); code != 2 ||
		!strings.Contains(stderr, "scheme must be amqp") || strings.Contains(stderr, "bus-secret") {
		t.Errorf("worker with a bad clouds.yaml bus: exit %d, stderr %q", code, stderr)
	}
}

// grepLines is the lines of text that contain sub.
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
