package cloudsim_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/ostask/ostask/cloudsim"
)

// Unknown routes and methods get each service's JSON error body, as a Zed
// cloud sends it, never Go's plain-text "404 page not found".
func TestUnknownRoutesAndMethods(t *testing.T) {
	e := newNovaEnv(t, nil)
	const webob404 = `{"code":"404 Not Found","message":"The resource could not be found.<br /><br />\n\n\n","title":"Not Found"}`
	tests := []struct {
		name, method, path string
		code               int
		body               string // the JSON body, compact, keys sorted
	}{
		{"nova unknown path", "GET", "/compute/v2.1/bogus", 404, webob404},
		{"nova known path, other method", "PATCH", "/compute/v2.1/servers", 404, webob404},
		{"cinder unknown path", "GET", "/volume/v3/" + cloudsim.DemoProjectID + "/bogus", 404, webob404},
		{"cinder known path, other method", "PATCH", "/volume/v3/" + cloudsim.DemoProjectID + "/volumes", 404, webob404},
		{"glance unknown path", "GET", "/image/v2/bogus", 404, webob404},
		{"glance known path, other method", "PATCH", "/image/v2/images", 405,
			`{"code":"405 Method Not Allowed","message":"The method PATCH is not allowed for this resource. <br /><br />\n","title":"Method Not Allowed"}`},
		{"keystone unknown path", "GET", "/identity/v3/bogus", 404,
			`{"error":{"code":404,"message":"The resource could not be found.","title":"Not Found"}}`},
		{"keystone known path, other method", "PATCH", "/identity/v3/auth/tokens", 405,
			`{"message":"The method is not allowed for the requested URL."}`},
		{"outside every service", "GET", "/nothing/here", 404, webob404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, e.demoTok, "", nil)
			if r.code != tc.code || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				t.Fatalf("%d %s %q", r.code, r.header.Get("Content-Type"), r.text)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tc.body), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(r.body, want) {
				t.Fatalf("body %q\nwant %s", r.text, tc.body)
			}
		})
	}
	t.Run("nova unknown path needs a token first", func(t *testing.T) {
		if r := e.do("GET", "/compute/v2.1/bogus", "", "", nil); r.code != 401 {
			t.Fatalf("%d %s, want 401", r.code, r.text)
		}
	})
}

// A flavor's extra specs are readable by any project member, as a list and
// one key at a time, and are in flavor bodies from 2.61.
func TestFlavorExtraSpecs(t *testing.T) {
	e := newNovaEnv(t, nil)
	tests := []struct {
		name, path, mv string
		code           int
		body           string
	}{
		{"list", "/compute/v2.1/flavors/3/os-extra_specs", "2.1", 200, `{"extra_specs":{"hw_rng:allowed":"True"}}`},
		{"list empty", "/compute/v2.1/flavors/1/os-extra_specs", "2.1", 200, `{"extra_specs":{}}`},
		{"one key", "/compute/v2.1/flavors/3/os-extra_specs/hw_rng:allowed", "2.1", 200, `{"hw_rng:allowed":"True"}`},
		{"unknown key", "/compute/v2.1/flavors/3/os-extra_specs/nope", "2.1", 404,
			`{"itemNotFound":{"code":404,"message":"Flavor 3 has no extra specs with key nope."}}`},
		{"unknown flavor", "/compute/v2.1/flavors/99/os-extra_specs", "2.1", 404,
			`{"itemNotFound":{"code":404,"message":"Flavor 99 could not be found."}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", tc.path, e.demoTok, tc.mv, nil)
			got, _ := json.Marshal(r.body)
			if r.code != tc.code || string(got) != tc.body {
				t.Fatalf("%d %s, want %d %s", r.code, got, tc.code, tc.body)
			}
		})
	}
	for _, c := range []struct {
		mv   string
		want bool
	}{{"2.60", false}, {"2.61", true}} {
		for _, path := range []string{"/compute/v2.1/flavors/3", "/compute/v2.1/flavors/detail"} {
			r := e.do("GET", path, e.demoTok, c.mv, nil)
			fl, _ := r.body["flavor"].(map[string]any)
			if fl == nil {
				for _, f := range r.body["flavors"].([]any) {
					if f.(map[string]any)["id"] == "3" {
						fl = f.(map[string]any)
					}
				}
			}
			specs, has := fl["extra_specs"].(map[string]any)
			if has != c.want || (has && specs["hw_rng:allowed"] != "True") {
				t.Errorf("%s at %s: extra_specs %v, want present=%v", path, c.mv, fl["extra_specs"], c.want)
			}
		}
	}
}
