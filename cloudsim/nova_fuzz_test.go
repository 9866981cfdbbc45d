package cloudsim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ostask/ostask/cloudsim"
)

// handlerEnv drives a simulator's Handler in-process, with no network.
type handlerEnv struct {
	sim   *cloudsim.Sim
	h     http.Handler
	token string
}

func newHandlerEnv(tb testing.TB, clock cloudsim.Clock) *handlerEnv {
	tb.Helper()
	sim, err := cloudsim.New(cloudsim.Config{Clock: clock, ServerQuota: 200})
	if err != nil {
		tb.Fatal(err)
	}
	e := &handlerEnv{sim: sim, h: sim.Handler()}
	auth := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"demo","domain":{"id":"default"},"password":"secret"}}},
		"scope":{"project":{"name":"demo","domain":{"id":"default"}}}}}`
	rec := e.serve("POST", "/identity/v3/auth/tokens?nocatalog", "", []byte(auth))
	if rec.Code != 201 {
		tb.Fatalf("auth: %d %s", rec.Code, rec.Body)
	}
	e.token = rec.Header().Get("X-Subject-Token")
	return e
}

func (e *handlerEnv) serve(method, path, mv string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://sim.test"+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if e.token != "" {
		req.Header.Set("X-Auth-Token", e.token)
	}
	if mv != "" {
		req.Header.Set("OpenStack-API-Version", "compute "+mv)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, req)
	return rec
}

// fuzzTarget posts arbitrary bodies to one route at several
// microversions and fails on any 5xx (a panic would be a 500 too).
func fuzzTarget(f *testing.F, seeds []string, path func(e *handlerEnv) string) {
	clock := cloudsim.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	fuzzTargetWith(f, seeds, clock, path)
}

// activeServer creates a server through the handler and lets it build.
func (e *handlerEnv) activeServer(tb testing.TB, clock *cloudsim.FakeClock) string {
	img := ""
	for _, im := range e.sim.Images() {
		if im.Status == "active" {
			img = im.ID
			break
		}
	}
	body, _ := json.Marshal(map[string]any{"server": map[string]any{"name": "target", "imageRef": img, "flavorRef": "1", "networks": "auto"}})
	rec := e.serve("POST", "/compute/v2.1/servers", "2.37", body)
	if rec.Code != 202 {
		tb.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var out struct {
		Server struct{ ID string } `json:"server"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	for i := 0; i < 10; i++ {
		clock.Advance(time.Second)
		e.sim.Servers(false)
	}
	return out.Server.ID
}

var createSeeds = []string{
	`{"server":{"name":"a","imageRef":"0c5e9a2f-7b1d-4e3a-9f6c-2d8b4a7e1c05","flavorRef":"1","networks":"auto"}}`,
	`{"server":{"name":"a","flavorRef":1,"networks":[{"uuid":"x"}],"block_device_mapping_v2":[{"source_type":"image","destination_type":"volume","boot_index":"0","volume_size":"1","uuid":"0c5e9a2f-7b1d-4e3a-9f6c-2d8b4a7e1c05"}]}}`,
	`{"server":{"name":"a","flavorRef":"1","min_count":3,"max_count":2}}`,
	`{"server":{"name":"a","flavorRef":"1","networks":"none","metadata":{"":"x"},"tags":["a/b"],"max_count":1e300}}`,
	`{"server":{"name":null,"flavorRef":[],"imageRef":{},"networks":[null,1,"x"],"block_device_mapping_v2":[{"boot_index":null,"source_type":7}]}}`,
	`{"server":[]}`, `{}`, `[]`, `null`, `"x"`, `{"server":`, ``, `{"server":{"name":"a","flavorRef":"1","return_reservation_id":true,"networks":"auto"}}`,
}

var actionSeeds = []string{
	`{"reboot":{"type":"HARD"}}`, `{"reboot":{"type":"sideways"}}`, `{"reboot":null}`, `{"os-stop":null}`, `{"os-start":null}`,
	`{"resize":{"flavorRef":"2"}}`, `{"resize":{"flavorRef":2.5}}`, `{"confirmResize":null}`, `{"revertResize":null}`,
	`{"migrate":{"host":"compute-1"}}`, `{"os-migrateLive":{"host":null,"block_migration":"auto"}}`,
	`{"createImage":{"name":"s","metadata":{"k":"v"}}}`, `{"createBackup":{"name":"b","backup_type":"daily","rotation":"x"}}`,
	`{"createBackup":{"name":"b","backup_type":"daily","rotation":-1}}`, `{"lock":null}`, `{"unlock":null}`, `{}`, `{"a":1,"b":2}`, `[]`, `nul`,
}

var attachSeeds = []string{
	`{"volumeAttachment":{"volumeId":"99999999-9999-4999-8999-999999999999"}}`,
	`{"volumeAttachment":{"volumeId":"nope","device":"/dev/sdz"}}`,
	`{"volumeAttachment":{"volumeId":"99999999-9999-4999-8999-999999999999","tag":1,"delete_on_termination":"yes"}}`,
	`{"volumeAttachment":null}`, `{"volumeAttachment":[]}`, `{}`, `1`,
}

func FuzzNovaServerCreate(f *testing.F) {
	fuzzTarget(f, createSeeds, func(*handlerEnv) string { return "/compute/v2.1/servers" })
}

func FuzzNovaServerAction(f *testing.F) {
	clock := cloudsim.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	fuzzTargetWith(f, actionSeeds, clock, func(e *handlerEnv) string {
		return "/compute/v2.1/servers/" + e.activeServer(f, clock) + "/action"
	})
}

func FuzzNovaVolumeAttach(f *testing.F) {
	clock := cloudsim.NewFakeClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	fuzzTargetWith(f, attachSeeds, clock, func(e *handlerEnv) string {
		id := e.activeServer(f, clock)
		e.sim.NovaNewVolumeForTest("fuzz", 1)
		return "/compute/v2.1/servers/" + id + "/os-volume_attachments"
	})
}

func fuzzTargetWith(f *testing.F, seeds []string, clock *cloudsim.FakeClock, path func(e *handlerEnv) string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	e := newHandlerEnv(f, clock)
	p := path(e)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, mv := range []string{"2.1", "2.37", "2.45", "2.79", "2.100"} {
			rec := e.serve("POST", p, mv, body)
			if rec.Code >= 500 {
				t.Fatalf("POST %s at %s with %q: %d %s", p, mv, body, rec.Code, rec.Body)
			}
		}
		clock.Advance(time.Second)
		e.sim.Servers(false)
	})
}
