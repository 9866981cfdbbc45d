package cloudsim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/ostask/ostask/cloudsim"
)

// bsEnv is a simulator on a fake clock with gophercloud clients for the
// block storage and image services, logged in as the demo user.
type bsEnv struct {
	sim   *cloudsim.Sim
	clock *cloudsim.FakeClock
	pc    *gophercloud.ProviderClient
	vol   *gophercloud.ServiceClient
	img   *gophercloud.ServiceClient
	step  time.Duration // one background step (FastTiming, no jitter)
}

var bsEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// bsStart starts a simulator with fast, jitter-free timing on a fake
// clock, so that each Advance(e.step) moves every walk exactly one step.
func bsStart(t testing.TB, cfg cloudsim.Config) *bsEnv {
	t.Helper()
	clock := cloudsim.NewFakeClock(bsEpoch)
	tm := cloudsim.FastTiming()
	tm.Jitter = 0
	cfg.Clock, cfg.Timing = clock, &tm
	sim, err := cloudsim.Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	e := &bsEnv{sim: sim, clock: clock, step: tm.VolumeCreate}
	e.pc, e.vol, e.img = bsLogin(t, sim, "demo", "demo")
	return e
}

func bsLogin(t testing.TB, sim *cloudsim.Sim, user, project string) (*gophercloud.ProviderClient, *gophercloud.ServiceClient, *gophercloud.ServiceClient) {
	t.Helper()
	ctx := context.Background()
	pc, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: sim.AuthURL(),
		Username: user, Password: "secret", DomainName: "Default", TenantName: project})
	if err != nil {
		t.Fatal(err)
	}
	vol, err := openstack.NewBlockStorageV3(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	img, err := openstack.NewImageV2(pc, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	return pc, vol, img
}

// tick moves the fake clock by n background steps, one at a time: a walk
// schedules its next step when the previous one runs, so each step must be
// applied (Sim.Volumes applies due steps) before the clock moves on.
func (e *bsEnv) tick(n int) {
	for range n {
		e.clock.Advance(e.step)
		e.sim.Volumes()
	}
}

// bsResp is a response read in full.
type bsResp struct {
	Code   int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a generic map.
func (r bsResp) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("decode %q: %v", r.Body, err)
	}
	return m
}

// raw sends a request with the demo token, bypassing gophercloud's
// checks, to see exactly what the simulator answers.
func (e *bsEnv) raw(t testing.TB, method, url string, body string, headers ...string) bsResp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", e.pc.Token())
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return bsResp{resp.StatusCode, resp.Header, bytes.TrimSpace(b)}
}

// volURL is the project-scoped Cinder endpoint plus path.
func (e *bsEnv) volURL(path string) string { return e.vol.Endpoint + strings.TrimPrefix(path, "/") }

// cinderFault returns the (name, code, message) of a Cinder fault body.
func cinderFault(t testing.TB, r bsResp) (string, float64, string) {
	t.Helper()
	m := r.JSON(t)
	if len(m) != 1 {
		t.Fatalf("fault body has %d keys: %s", len(m), r.Body)
	}
	for name, v := range m {
		inner, _ := v.(map[string]any)
		code, _ := inner["code"].(float64)
		msg, _ := inner["message"].(string)
		return name, code, msg
	}
	return "", 0, ""
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }
