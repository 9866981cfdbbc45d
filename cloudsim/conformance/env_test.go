package conformance_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/ostask/ostask/cloudsim"
)

// Environment variables that pick a real cloud instead of cloudsim.
const (
	envCloud      = "OSTASK_CONFORMANCE_CLOUD"
	envAdminCloud = "OSTASK_CONFORMANCE_ADMIN_CLOUD"
	envCloudsFile = "OS_CLIENT_CONFIG_FILE"
)

// Microversions the suite asks for. Each check names its own; these are
// the ones most of them use.
const (
	mvMain   = "2.60" // server bodies, instance actions with events (2.51+) and updated_at (2.58+)
	mvVolume = "3.60"
)

// Names and images the suite resolves by name on every backend.
const (
	flavorName      = "m1.tiny"
	biggerFlavor    = "m1.small" // a resize target
	realImageName   = "cirros-fake"
	simCloudName    = "ostask-conformance"
	failBuildPrefix = "fail-abort-" // realstack's failure injector; cloudsim scripts the same name
)

// backend is the cloud under test.
type backend struct {
	sim        *cloudsim.Sim // nil for a real cloud
	cloudsFile string
	cloud      string
	adminCloud string // "" skips the admin-only checks
	runID      string // in every resource name, so runs and clouds never collide
	wait       time.Duration
	interval   time.Duration

	demo  *session
	admin *session

	imageID, flavorID, biggerFlavorID string

	sharedOnce sync.Once
	sharedID   string
	sharedErr  error
}

var be *backend

func (b *backend) real() bool { return b.sim == nil }

func (b *backend) label() string {
	if b.real() {
		return b.cloud
	}
	return "cloudsim"
}

// name returns a resource name unique to this run.
func (b *backend) name(what string) string { return "conf-" + b.runID + "-" + what }

// failBuildName is the hook "make the build of this server fail": realstack
// fails any server whose name starts with fail-abort-; cloudsim gets the
// same name as a scripted fault when it starts.
func (b *backend) failBuildName() string { return failBuildPrefix + "conf-" + b.runID }

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	b := &backend{runID: hex.EncodeToString(rb[:])}
	ctx := context.Background()
	if cloud := os.Getenv(envCloud); cloud != "" {
		b.cloud, b.adminCloud, b.cloudsFile = cloud, os.Getenv(envAdminCloud), os.Getenv(envCloudsFile)
		if b.cloudsFile == "" {
			fmt.Fprintf(os.Stderr, "conformance: %s is set but %s is not\n", envCloud, envCloudsFile)
			return 2
		}
		b.wait, b.interval = 3*time.Minute, 500*time.Millisecond
	} else {
		// Fast walks, but with Nova's build-request phase, which is what
		// TestSortWhileScheduling shows on both clouds.
		t := cloudsim.FastTiming()
		t.BuildRequests, t.BuildRequestPhase = true, 300*time.Millisecond
		plan := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerCreate, Name: b.failBuildName(),
			Kind: cloudsim.FaultAbort, Message: "conformance"}}}
		sim, err := cloudsim.Start(ctx, cloudsim.Config{Timing: &t, Faults: plan})
		if err != nil {
			fmt.Fprintln(os.Stderr, "conformance: start cloudsim:", err)
			return 1
		}
		defer sim.Close()
		dir, err := os.MkdirTemp("", "conformance")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		b.sim, b.cloud, b.adminCloud = sim, simCloudName, simCloudName+"-admin"
		b.cloudsFile = filepath.Join(dir, "clouds.yaml")
		if err := sim.WriteCloudsYAML(b.cloudsFile, simCloudName); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		b.wait, b.interval = 20*time.Second, 10*time.Millisecond
	}
	var err error
	if b.demo, err = b.login(ctx, b.cloud); err != nil {
		fmt.Fprintf(os.Stderr, "conformance: log in to %s: %v\n", b.cloud, err)
		return 1
	}
	if b.adminCloud != "" {
		if b.admin, err = b.login(ctx, b.adminCloud); err != nil {
			fmt.Fprintf(os.Stderr, "conformance: log in to %s: %v\n", b.adminCloud, err)
			return 1
		}
	}
	if err := b.resolve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "conformance:", err)
		return 1
	}
	be = b
	fmt.Printf("conformance: backend %s, run %s, image %s, flavor %s\n", b.label(), b.runID, b.imageID, b.flavorID)
	code := m.Run()
	b.sweep(ctx)
	return code
}

// session is one logged-in user with its service clients.
type session struct {
	provider                *gophercloud.ProviderClient
	compute, volume, image  *gophercloud.ServiceClient
	identity                *gophercloud.ServiceClient
	authOpts                gophercloud.AuthOptions
	endpointOpts            gophercloud.EndpointOpts
	projectID, userID, name string
}

// login authenticates through clouds.yaml, as any gophercloud program would.
func (b *backend) login(ctx context.Context, cloud string, opts ...clouds.ParseOption) (*session, error) {
	opts = append([]clouds.ParseOption{clouds.WithCloudName(cloud), clouds.WithLocations(b.cloudsFile)}, opts...)
	ao, eo, _, err := clouds.Parse(opts...)
	if err != nil {
		return nil, err
	}
	pc, err := openstack.AuthenticatedClient(ctx, ao)
	if err != nil {
		return nil, err
	}
	s := &session{provider: pc, authOpts: ao, endpointOpts: eo, name: cloud}
	if s.compute, err = openstack.NewComputeV2(pc, eo); err != nil {
		return nil, err
	}
	if s.volume, err = openstack.NewBlockStorageV3(pc, eo); err != nil {
		return nil, err
	}
	if s.image, err = openstack.NewImageV2(pc, eo); err != nil {
		return nil, err
	}
	if s.identity, err = openstack.NewIdentityV3(pc, eo); err != nil {
		return nil, err
	}
	return s, nil
}

// resolve finds the image and the flavor by name.
func (b *backend) resolve(ctx context.Context) error {
	pages, err := flavors.ListDetail(b.demo.compute, nil).AllPages(ctx)
	if err != nil {
		return fmt.Errorf("list flavors: %w", err)
	}
	fls, err := flavors.ExtractFlavors(pages)
	if err != nil {
		return err
	}
	for _, f := range fls {
		switch f.Name {
		case flavorName:
			b.flavorID = f.ID
		case biggerFlavor:
			b.biggerFlavorID = f.ID
		}
	}
	if b.flavorID == "" || b.biggerFlavorID == "" {
		return fmt.Errorf("no flavor %s or %s", flavorName, biggerFlavor)
	}
	want := realImageName
	if !b.real() {
		want = cloudsim.CirrosImageName
	}
	ipages, err := images.List(b.demo.image, images.ListOpts{Status: images.ImageStatusActive}).AllPages(ctx)
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	ims, err := images.ExtractImages(ipages)
	if err != nil {
		return err
	}
	for _, im := range ims {
		if im.Name == want {
			b.imageID = im.ID
		}
	}
	if b.imageID == "" && !b.real() {
		for _, im := range ims {
			if im.Visibility == images.ImageVisibilityPublic {
				b.imageID = im.ID
				break
			}
		}
	}
	if b.imageID == "" {
		return fmt.Errorf("no active image %s", want)
	}
	return nil
}

// sweep deletes whatever a failed test left behind (every name carries the
// run id).
func (b *backend) sweep(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if pages, err := servers.List(b.demo.compute, servers.ListOpts{Name: "conf-" + b.runID}).AllPages(ctx); err == nil {
		svs, _ := servers.ExtractServers(pages)
		for _, sv := range svs {
			_ = servers.Delete(ctx, b.demo.compute, sv.ID).ExtractErr()
		}
	}
	if pages, err := servers.List(b.demo.compute, servers.ListOpts{Name: b.failBuildName()}).AllPages(ctx); err == nil {
		svs, _ := servers.ExtractServers(pages)
		for _, sv := range svs {
			_ = servers.Delete(ctx, b.demo.compute, sv.ID).ExtractErr()
		}
	}
	if pages, err := images.List(b.demo.image, images.ListOpts{Owner: ""}).AllPages(ctx); err == nil {
		ims, _ := images.ExtractImages(pages)
		for _, im := range ims {
			if strings.HasPrefix(im.Name, "conf-"+b.runID) {
				_ = images.Delete(ctx, b.demo.image, im.ID).ExtractErr()
			}
		}
	}
	// Volumes last: their servers must be gone first to detach them.
	deadline := time.Now().Add(time.Minute)
	for {
		pages, err := volumes.List(b.demo.volume, volumes.ListOpts{}).AllPages(ctx)
		if err != nil {
			return
		}
		vols, _ := volumes.ExtractVolumes(pages)
		left := 0
		for _, v := range vols {
			if !strings.HasPrefix(v.Name, "conf-"+b.runID) {
				continue
			}
			left++
			if v.Status != "deleting" {
				_ = volumes.Delete(ctx, b.demo.volume, v.ID, volumes.DeleteOpts{}).ExtractErr()
			}
		}
		if left == 0 || time.Now().After(deadline) {
			return
		}
		time.Sleep(b.interval * 4)
	}
}

// at returns a copy of c that asks for microversion mv.
func at(c *gophercloud.ServiceClient, mv string) *gophercloud.ServiceClient {
	cp := *c
	cp.Microversion = mv
	return &cp
}

// testCtx is a context bounded by the backend's wait, cancelled with the test.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), be.wait+time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// cleanupCtx is for t.Cleanup functions, which run after the test's context ends.
func cleanupCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), be.wait)
}

// ---- raw HTTP ----

// rawResp is one response as a client sees it on the wire.
type rawResp struct {
	Code   int
	Header http.Header
	Body   []byte
	JSON   map[string]any // nil when the body is not a JSON object
}

func (r *rawResp) String() string { return fmt.Sprintf("%d %s", r.Code, bytes.TrimSpace(r.Body)) }

// raw sends one request with the service client's HTTP client and token.
// url is absolute or relative to the client's endpoint. mv is a
// microversion ("" for none); the header names follow the service type.
func raw(t *testing.T, sc *gophercloud.ServiceClient, method, url, mv string, body any, hdr ...string) *rawResp {
	t.Helper()
	r, err := rawErr(testCtx(t), sc, method, url, mv, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func rawErr(ctx context.Context, sc *gophercloud.ServiceClient, method, url, mv string, body any, hdr ...string) (*rawResp, error) {
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		url = sc.ServiceURL(url)
	}
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	default:
		data, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := sc.Token(); tok != "" {
		req.Header.Set("X-Auth-Token", tok)
	}
	if mv != "" {
		switch sc.Type {
		case "compute":
			req.Header.Set("X-OpenStack-Nova-API-Version", mv)
			req.Header.Set("OpenStack-API-Version", "compute "+mv)
		case "block-storage", "volumev3", "volume":
			req.Header.Set("OpenStack-API-Version", "volume "+mv)
		}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := sc.ProviderClient.HTTPClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &rawResp{Code: resp.StatusCode, Header: resp.Header, Body: data}
	_ = json.Unmarshal(data, &r.JSON)
	return r, nil
}

// obj digs a JSON object out of m by keys.
func obj(m map[string]any, path ...string) map[string]any {
	for _, k := range path {
		next, _ := m[k].(map[string]any)
		m = next
	}
	return m
}

func list(m map[string]any, key string) []any {
	l, _ := m[key].([]any)
	return l
}

func str(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// ---- key sets ----

func keysOf(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// checkKeys reports every key of want missing from m and every key of m
// that is neither in want nor in optional.
func checkKeys(t *testing.T, what string, m map[string]any, want, optional []string) {
	t.Helper()
	if m == nil {
		t.Errorf("%s: no object", what)
		return
	}
	var missing, extra []string
	for _, k := range want {
		if _, ok := m[k]; !ok {
			missing = append(missing, k)
		}
	}
	for _, k := range keysOf(m) {
		if !slices.Contains(want, k) && !slices.Contains(optional, k) {
			extra = append(extra, k)
		}
	}
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s on %s: missing keys %v, unexpected keys %v (all: %v)", what, be.label(), missing, extra, keysOf(m))
	}
}

// ---- times ----

var (
	reNovaTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)
	reNoZTime  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`)
	// reDBTime is a no-Z time read back from Nova's or Cinder's database,
	// whose DATETIME columns keep no fraction.
	reDBTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000000$`)
	reZTime  = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`)
)

func checkTime(t *testing.T, what string, v any, re *regexp.Regexp, nullable bool) {
	t.Helper()
	if v == nil && nullable {
		return
	}
	s, ok := v.(string)
	if !ok || !re.MatchString(s) {
		t.Errorf("%s: time %#v does not match %s", what, v, re)
	}
}

// ---- errors ----

// checkFault checks a Nova/Cinder fault body {"<name>": {"code", "message"}}.
func checkFault(t *testing.T, what string, r *rawResp, code int, name string, msg *regexp.Regexp) {
	t.Helper()
	if r.Code != code {
		t.Errorf("%s: status %d, want %d: %s", what, r.Code, code, r)
		return
	}
	if len(r.JSON) != 1 || r.JSON[name] == nil {
		t.Errorf("%s: body %s, want one key %q", what, r.Body, name)
		return
	}
	inner := obj(r.JSON, name)
	checkKeys(t, what+" fault", inner, []string{"code", "message"}, nil)
	if c, _ := inner["code"].(float64); int(c) != code {
		t.Errorf("%s: fault code %v, want %d", what, inner["code"], code)
	}
	if msg != nil && !msg.MatchString(str(inner, "message")) {
		t.Errorf("%s: message %q does not match %s", what, str(inner, "message"), msg)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
}

func isNotFound(err error) bool { return gophercloud.ResponseCodeIs(err, http.StatusNotFound) }

// ---- polling ----

// poll calls fn every interval until it returns true or the backend's wait
// runs out.
func poll(t *testing.T, what string, fn func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(be.wait)
	for {
		done, err := fn()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not done after %v", what, be.wait)
		}
		time.Sleep(be.interval)
	}
}

// serverState is what a waiter looks at.
type serverState struct{ Status, Task, VM string }

func stateOf(sv map[string]any) serverState {
	task, _ := sv["OS-EXT-STS:task_state"].(string)
	return serverState{str(sv, "status"), task, str(sv, "OS-EXT-STS:vm_state")}
}

func (s serverState) String() string {
	task := s.Task
	if task == "" {
		task = "null"
	}
	return s.Status + "/" + task + "/" + s.VM
}

// getServer reads a server raw at mv; nil on 404.
func getServer(t *testing.T, sc *gophercloud.ServiceClient, id, mv string) map[string]any {
	t.Helper()
	r := raw(t, sc, "GET", "servers/"+id, mv, nil)
	if r.Code == 404 {
		return nil
	}
	if r.Code != 200 {
		t.Fatalf("GET server %s: %s", id, r)
	}
	return obj(r.JSON, "server")
}

// waitServer polls until done says so and returns the last server body and
// every distinct state seen on the way.
func waitServer(t *testing.T, id string, done func(serverState) bool) (map[string]any, []serverState) {
	t.Helper()
	var last map[string]any
	var seen []serverState
	poll(t, "server "+id, func() (bool, error) {
		last = getServer(t, be.demo.compute, id, mvMain)
		if last == nil {
			return false, errors.New("server is gone")
		}
		st := stateOf(last)
		if len(seen) == 0 || seen[len(seen)-1] != st {
			seen = append(seen, st)
		}
		if st.Status == "ERROR" && !done(st) {
			return false, fmt.Errorf("server went to ERROR: %v", last["fault"])
		}
		return done(st), nil
	})
	return last, seen
}

func activeIdle(s serverState) bool { return s.Status == "ACTIVE" && s.Task == "" }

// waitServerGone polls until GET answers 404 and returns that response.
func waitServerGone(t *testing.T, id string) *rawResp {
	t.Helper()
	var r *rawResp
	poll(t, "delete of server "+id, func() (bool, error) {
		r = raw(t, be.demo.compute, "GET", "servers/"+id, mvMain, nil)
		return r.Code == 404, nil
	})
	return r
}

// createServer posts a server with networks "none" and registers its
// deletion. It returns the id and the raw 202 body.
func createServer(t *testing.T, name string, extra map[string]any) (string, *rawResp) {
	t.Helper()
	sv := map[string]any{"name": name, "imageRef": be.imageID, "flavorRef": be.flavorID, "networks": "none"}
	for k, v := range extra {
		sv[k] = v
	}
	r := raw(t, be.demo.compute, "POST", "servers", mvMain, map[string]any{"server": sv})
	if r.Code != 202 {
		t.Fatalf("create server %s: %s", name, r)
	}
	id := str(obj(r.JSON, "server"), "id")
	t.Cleanup(func() { deleteServer(id) })
	return id, r
}

// deleteServer deletes a server and waits until it is gone, so that its
// volumes can be deleted next. Errors are ignored: the sweep catches leftovers.
func deleteServer(id string) {
	ctx, cancel := cleanupCtx()
	defer cancel()
	if err := servers.Delete(ctx, be.demo.compute, id).ExtractErr(); err != nil {
		return
	}
	for ctx.Err() == nil {
		if _, err := servers.Get(ctx, be.demo.compute, id).Extract(); isNotFound(err) {
			return
		}
		time.Sleep(be.interval)
	}
}

// sharedServer is one ACTIVE server for read-only checks, created on first
// use and deleted by the sweep.
func sharedServer(t *testing.T) string {
	t.Helper()
	be.sharedOnce.Do(func() {
		ctx, cancel := cleanupCtx()
		defer cancel()
		sv, err := servers.Create(ctx, at(be.demo.compute, mvMain), servers.CreateOpts{Name: be.name("shared"),
			ImageRef: be.imageID, FlavorRef: be.flavorID, Networks: "none"}, nil).Extract()
		if err != nil {
			be.sharedErr = err
			return
		}
		be.sharedID = sv.ID
		for ctx.Err() == nil {
			got, err := servers.Get(ctx, be.demo.compute, sv.ID).Extract()
			if err != nil {
				be.sharedErr = err
				return
			}
			if got.Status == "ACTIVE" && got.TaskState == "" {
				return
			}
			if got.Status == "ERROR" {
				be.sharedErr = fmt.Errorf("shared server went to ERROR: %s", got.Fault.Message)
				return
			}
			time.Sleep(be.interval)
		}
		be.sharedErr = ctx.Err()
	})
	if be.sharedErr != nil {
		t.Fatalf("shared server: %v", be.sharedErr)
	}
	return be.sharedID
}

// ---- volumes ----

func getVolume(t *testing.T, id string) map[string]any {
	t.Helper()
	r := raw(t, be.demo.volume, "GET", "volumes/"+id, mvVolume, nil)
	if r.Code == 404 {
		return nil
	}
	if r.Code != 200 {
		t.Fatalf("GET volume %s: %s", id, r)
	}
	return obj(r.JSON, "volume")
}

// waitVolume polls until done(status) and returns the last body and every
// distinct status seen.
func waitVolume(t *testing.T, id string, done func(string) bool) (map[string]any, []string) {
	t.Helper()
	var last map[string]any
	var seen []string
	poll(t, "volume "+id, func() (bool, error) {
		last = getVolume(t, id)
		if last == nil {
			return false, errors.New("volume is gone")
		}
		st := str(last, "status")
		if len(seen) == 0 || seen[len(seen)-1] != st {
			seen = append(seen, st)
		}
		return done(st), nil
	})
	return last, seen
}

// createVolume posts a 1 GiB volume and registers its deletion.
func createVolume(t *testing.T, name string) (string, *rawResp) {
	t.Helper()
	r := raw(t, be.demo.volume, "POST", "volumes", mvVolume, map[string]any{"volume": map[string]any{"size": 1, "name": name}})
	if r.Code != 202 {
		t.Fatalf("create volume %s: %s", name, r)
	}
	id := str(obj(r.JSON, "volume"), "id")
	t.Cleanup(func() { deleteVolume(id) })
	return id, r
}

// deleteVolume deletes a volume once it is no longer busy. Errors are
// ignored: the sweep catches leftovers.
func deleteVolume(id string) {
	ctx, cancel := cleanupCtx()
	defer cancel()
	for ctx.Err() == nil {
		v, err := volumes.Get(ctx, be.demo.volume, id).Extract()
		if err != nil {
			return
		}
		switch v.Status {
		case "available", "error", "error_extending", "error_deleting", "in-use":
			if len(v.Attachments) == 0 {
				_ = volumes.Delete(ctx, be.demo.volume, id, volumes.DeleteOpts{}).ExtractErr()
				return
			}
		case "deleting":
			return
		}
		time.Sleep(be.interval)
	}
}
