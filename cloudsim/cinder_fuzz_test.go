package cloudsim_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ostask/ostask/cloudsim"
)

// fuzzCinder is a simulator driven through its Handler, without a listener,
// with a demo token and one available volume.
type fuzzCinder struct {
	h     http.Handler
	token string
	volID string
}

func newFuzzCinder(f *testing.F) *fuzzCinder {
	sim, err := cloudsim.New(cloudsim.Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = sim.Close() })
	fc := &fuzzCinder{h: sim.Handler()}
	auth := `{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"demo","domain":{"id":"default"},"password":"secret"}}},"scope":{"project":{"name":"demo","domain":{"id":"default"}}}}}`
	rec := fc.do("POST", "/identity/v3/auth/tokens", auth)
	if rec.Code != 201 {
		f.Fatalf("auth: %d %s", rec.Code, rec.Body)
	}
	fc.token = rec.Header().Get("X-Subject-Token")
	rec = fc.do("POST", "/volume/v3/"+cloudsim.DemoProjectID+"/volumes", `{"volume":{"size":1}}`)
	var out struct {
		Volume struct{ ID string } `json:"volume"`
	}
	if rec.Code != 202 || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
		f.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	fc.volID = out.Volume.ID
	return fc
}

func (fc *fuzzCinder) do(method, path, body string, headers ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("X-Auth-Token", fc.token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	fc.h.ServeHTTP(rec, req)
	return rec
}

// checkAnswer fails on a 5xx and on an error that is not a Cinder fault body.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("body %q: %d %s", body, rec.Code, rec.Body)
	}
	if rec.Code >= 400 {
		var fault map[string]struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(bytes.TrimSpace(rec.Body.Bytes()), &fault); err != nil || len(fault) != 1 {
			t.Fatalf("body %q: %d with a non-fault answer %s", body, rec.Code, rec.Body)
		}
		for _, f := range fault {
			if f.Code != rec.Code || f.Message == "" {
				t.Fatalf("body %q: fault %+v for %d", body, f, rec.Code)
			}
		}
	}
}

var cinderMicroversions = []string{"3.0", "3.42", "3.53", "3.71"}

func FuzzCinderVolumeCreate(f *testing.F) {
	fc := newFuzzCinder(f)
	for _, seed := range []string{
		`{"volume":{"size":1}}`, `{"volume":{"size":"2","name":" x ","description":null}}`,
		`{"volume":{"size":1,"imageRef":"` + cloudsim.CirrosImageID + `"}}`,
		`{"volume":{"size":1,"imageRef":"http://glance/v2/images/` + cloudsim.CirrosImageID + `"}}`,
		`{"volume":{"size":1,"image_id":"cirros-0.6.2-x86_64-disk","metadata":{"a":"b"}}}`,
		`{"volume":{"size":1,"source_volid":"` + fc.volID + `"}}`,
		`{"volume":{"size":0}}`, `{"volume":{"size":-1}}`, `{"volume":{"size":1e40}}`, `{"volume":{"size":"abc"}}`,
		`{"volume":{"size":99999999999999999999999}}`, `{"volume":{"size":true}}`, `{"volume":{"size":[1]}}`,
		`{"volume":{"size":1,"metadata":{"bad key!":"v"}}}`, `{"volume":{"size":1,"metadata":{"k":{"x":1}}}}`,
		`{"volume":{"size":1,"multiattach":"yes"}}`, `{"volume":{"size":1,"snapshot_id":"nope"}}`,
		`{"volume":{"size":1,"volume_type":"` + cloudsim.DefaultVolumeTypeID + `"}}`,
		`{"volume":{"size":1,"availability_zone":""}}`, `{"volume":{"size":1,"backup_id":"7f4f6a43-7e27-4b1c-9e2a-0f1e2d3c4b5a"}}`,
		`{"volume":null}`, `{"volume":[]}`, `{"volume":{}}`, `{}`, `[]`, `null`, `5`, `"x"`, ``, `{`, `{"volume":{"size":1}} x`,
		`{"volume":{"size":1},"OS-SCH-HNT:scheduler_hints":{"same_host":["x"]}}`, `{"volume":{"size":1},"extra":1}`,
		"{\"volume\":{\"name\":\"\xff\xfe\",\"size\":1}}",
	} {
		f.Add([]byte(seed), uint8(0))
		f.Add([]byte(seed), uint8(2))
	}
	f.Fuzz(func(t *testing.T, body []byte, mv uint8) {
		rec := fc.do("POST", "/volume/v3/"+cloudsim.DemoProjectID+"/volumes", string(body),
			"OpenStack-API-Version", "volume "+cinderMicroversions[int(mv)%len(cinderMicroversions)])
		checkAnswer(t, rec, body)
	})
}

func FuzzCinderVolumeAction(f *testing.F) {
	fc := newFuzzCinder(f)
	for _, seed := range []string{
		`{"os-extend":{"new_size":2}}`, `{"os-extend":{"new_size":"3"}}`, `{"os-extend":{"new_size":0}}`,
		`{"os-extend":{"new_size":1.5}}`, `{"os-extend":{"new_size":null}}`, `{"os-extend":{}}`, `{"os-extend":null}`,
		`{"os-extend":{"new_size":2,"x":1}}`, `{"os-extend":[]}`, `{"os-extend":{"new_size":4294967296}}`,
		`{"os-extend":{"new_size":2},"os-reset_status":{}}`, `{"os-reset_status":{"status":"available"}}`,
		`{}`, `[]`, `null`, `1`, `""`, ``, `{"os-extend":`, `{"os-extend":{"new_size":2}}{}`,
	} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, unknownVolume bool) {
		id := fc.volID
		if unknownVolume {
			id = "not-a-volume"
		}
		rec := fc.do("POST", "/volume/v3/"+cloudsim.DemoProjectID+"/volumes/"+id+"/action", string(body),
			"OpenStack-API-Version", "volume 3.71")
		checkAnswer(t, rec, body)
	})
}
