package cloudsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/ostask/ostask/cloudsim"
)

// novaEnv is one simulator on a fake clock with demo and admin compute
// clients. Every background step takes one second (half-steps for the
// block device mapping, thirds for reboot), with no jitter, so tests can
// walk a server through its states with tick.
type novaEnv struct {
	t            *testing.T
	sim          *cloudsim.Sim
	clock        *cloudsim.FakeClock
	demo, admin  *gophercloud.ServiceClient
	demoTok      string
	adminTok     string
	ctx          context.Context
	defaultImage string
}

func stepTiming() *cloudsim.Timing {
	d := time.Second
	return &cloudsim.Timing{
		BuildSchedule: d, BuildNetworking: d, BuildBlockDevice: d, BuildSpawn: d,
		ServerDelete: d, Reboot: d, Stop: d, Start: d,
		ResizeStep: d, ConfirmResize: d, RevertResize: d, LiveMigrate: d,
		SnapshotStep: d, VolumeCreate: d, VolumeDelete: d, VolumeExtend: d,
		AttachStep: d, DetachStep: d, ImageDelete: d,
	}
}

func newNovaEnv(t *testing.T, faults *cloudsim.FaultPlan) *novaEnv {
	t.Helper()
	return newNovaEnvTiming(t, stepTiming(), faults)
}

// newNovaEnvTiming is newNovaEnv with a timing of the test's own.
func newNovaEnvTiming(t *testing.T, timing *cloudsim.Timing, faults *cloudsim.FaultPlan) *novaEnv {
	t.Helper()
	ctx := context.Background()
	clock := cloudsim.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	sim, err := cloudsim.Start(ctx, cloudsim.Config{Clock: clock, Timing: timing, Faults: faults})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	e := &novaEnv{t: t, sim: sim, clock: clock, ctx: ctx}
	e.demo, e.demoTok = computeClient(t, sim, "demo", "demo")
	e.admin, e.adminTok = computeClient(t, sim, "admin", "admin")
	for _, im := range sim.Images() {
		if strings.Contains(im.Name, "cirros") && im.Status == "active" {
			e.defaultImage = im.ID
			break
		}
	}
	if e.defaultImage == "" {
		for _, im := range sim.Images() {
			if im.Status == "active" {
				e.defaultImage = im.ID
				break
			}
		}
	}
	if e.defaultImage == "" {
		t.Fatal("the simulator seeds no active image")
	}
	return e
}

func computeClient(t *testing.T, sim *cloudsim.Sim, user, project string) (*gophercloud.ServiceClient, string) {
	t.Helper()
	ctx := context.Background()
	pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: sim.AuthURL(),
		Username: user, Password: "secret", DomainName: "Default", TenantName: project})
	if err != nil {
		t.Fatal(err)
	}
	c, err := openstack.NewComputeV2(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	return c, pc.Token()
}

// at returns a copy of c that asks for microversion mv.
func at(c *gophercloud.ServiceClient, mv string) *gophercloud.ServiceClient {
	cp := *c
	cp.Microversion = mv
	return &cp
}

// tick moves the fake clock and lets the simulator apply due steps.
func (e *novaEnv) tick(d time.Duration) {
	e.clock.Advance(d)
	e.sim.Servers(false)
}

// settle ticks until every background walk is done.
func (e *novaEnv) settle() {
	for i := 0; i < 12; i++ {
		e.tick(time.Second)
	}
}

// create posts a server at 2.52 with networks "auto" and returns its id.
func (e *novaEnv) create(name string) string {
	e.t.Helper()
	srv, err := servers.Create(e.ctx, at(e.demo, "2.52"), servers.CreateOpts{Name: name, ImageRef: e.defaultImage,
		FlavorRef: "1", Networks: "auto"}, nil).Extract()
	if err != nil {
		e.t.Fatalf("create %s: %v", name, err)
	}
	return srv.ID
}

// active creates a server and settles it.
func (e *novaEnv) active(name string) string {
	id := e.create(name)
	e.settle()
	if st, task := e.state(id); st != "ACTIVE" || task != "" {
		e.t.Fatalf("%s: %s/%s, want ACTIVE", name, st, task)
	}
	return id
}

func (e *novaEnv) get(id string) *servers.Server {
	e.t.Helper()
	srv, err := servers.Get(e.ctx, at(e.admin, "2.100"), id).Extract()
	if err != nil {
		e.t.Fatalf("get %s: %v", id, err)
	}
	return srv
}

func (e *novaEnv) state(id string) (string, string) {
	srv := e.get(id)
	return srv.Status, srv.TaskState
}

// wantState checks status and task_state.
func (e *novaEnv) wantState(id, status, task string) {
	e.t.Helper()
	if st, ts := e.state(id); st != status || ts != task {
		e.t.Fatalf("server %s: %s/%q, want %s/%q", id, st, ts, status, task)
	}
}

// rawResp is a plain HTTP answer.
type rawResp struct {
	code   int
	header http.Header
	body   map[string]any
	text   string
}

// do sends a raw request to the simulator (path under its URL).
func (e *novaEnv) do(method, path, token, mv string, body any) rawResp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, _ := json.Marshal(b)
		rd = bytes.NewReader(data)
	}
	req, _ := http.NewRequest(method, e.sim.URL()+path, rd)
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if mv != "" {
		req.Header.Set("OpenStack-API-Version", "compute "+mv)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := rawResp{code: resp.StatusCode, header: resp.Header, text: string(data)}
	_ = json.Unmarshal(data, &r.body)
	return r
}

// errMessage digs the message out of a Nova fault body.
func (r rawResp) errMessage() string {
	for _, v := range r.body {
		if m, ok := v.(map[string]any); ok {
			if s, ok := m["message"].(string); ok {
				return s
			}
		}
	}
	return ""
}

func (e *novaEnv) volume(id string) cloudsim.VolumeInfo {
	for _, v := range e.sim.Volumes() {
		if v.ID == id {
			return v
		}
	}
	return cloudsim.VolumeInfo{Status: "gone"}
}

func (e *novaEnv) image(id string) cloudsim.ImageInfo {
	for _, im := range e.sim.Images() {
		if im.ID == id {
			return im
		}
	}
	return cloudsim.ImageInfo{Status: "gone"}
}
