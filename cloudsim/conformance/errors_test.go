package conformance_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
)

const unknownID = "00000000-0000-0000-0000-000000000000"

// TestErrorBodies: 400, 404 and 406 bodies of Nova, Cinder and Glance.
func TestErrorBodies(t *testing.T) {
	t.Parallel()
	s := be.demo

	t.Run("400 malformed JSON", func(t *testing.T) {
		r := raw(t, s.compute, "POST", "servers", mvMain, `{"server": `)
		checkFault(t, "POST /servers with bad JSON", r, 400, "badRequest", regexp.MustCompile(`^Malformed request body$`))
	})
	t.Run("404 server", func(t *testing.T) {
		r := raw(t, s.compute, "GET", "servers/"+unknownID, mvMain, nil)
		checkFault(t, "GET unknown server", r, 404, "itemNotFound", regexp.MustCompile(`^Instance `+unknownID+` could not be found\.$`))
		if ct := r.Header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
			t.Errorf("Nova fault Content-Type %q", ct)
		}
	})
	t.Run("404 flavor", func(t *testing.T) {
		r := raw(t, s.compute, "GET", "flavors/no-such-flavor", mvMain, nil)
		checkFault(t, "GET unknown flavor", r, 404, "itemNotFound", regexp.MustCompile(`^Flavor no-such-flavor could not be found\.$`))
	})
	t.Run("404 volume", func(t *testing.T) {
		r := raw(t, s.volume, "GET", "volumes/"+unknownID, mvVolume, nil)
		checkFault(t, "GET unknown volume", r, 404, "itemNotFound", regexp.MustCompile(`^Volume `+unknownID+` could not be found\.$`))
	})
	t.Run("404 image", func(t *testing.T) {
		r := raw(t, s.image, "GET", "images/"+unknownID, "", nil)
		if r.Code != 404 {
			t.Fatalf("GET unknown image: %s", r)
		}
		// Glance answers with webob's JSON error, not a Nova-style fault.
		checkKeys(t, "glance 404", r.JSON, []string{"code", "message", "title"}, nil)
		if str(r.JSON, "code") != "404 Not Found" || str(r.JSON, "title") != "Not Found" ||
			!strings.HasPrefix(str(r.JSON, "message"), "No image found with ID "+unknownID) {
			t.Errorf("glance 404 body %s", r.Body)
		}
	})

	t.Run("406 compute", func(t *testing.T) {
		r := raw(t, s.compute, "GET", "servers", "2.999", nil)
		checkFault(t, "compute 2.999", r, 406, "computeFault",
			regexp.MustCompile(`^Version 2\.999 is not supported by the API\. Minimum is 2\.1 and maximum is 2\.\d+\.$`))
		if got := r.Header.Get("OpenStack-API-Version"); got != "compute 2.999" {
			t.Errorf("406 OpenStack-API-Version %q, want the requested version echoed", got)
		}
		if got := r.Header.Get("X-OpenStack-Nova-API-Version"); got != "2.999" {
			t.Errorf("406 X-OpenStack-Nova-API-Version %q, want the requested version echoed", got)
		}
	})
	t.Run("406 volume", func(t *testing.T) {
		r := raw(t, s.volume, "GET", "volumes", "3.999", nil)
		checkFault(t, "volume 3.999", r, 406, "computeFault",
			regexp.MustCompile(`^Version 3\.999 is not supported by the API\. Minimum is 3\.0 and maximum is 3\.\d+\.$`))
		if got := r.Header.Get("OpenStack-API-Version"); got != "volume 3.999" {
			t.Errorf("406 OpenStack-API-Version %q, want the requested version echoed", got)
		}
	})
	t.Run("microversion echo", func(t *testing.T) {
		r := raw(t, s.compute, "GET", "flavors", "2.44", nil)
		if r.Code != 200 || r.Header.Get("OpenStack-API-Version") != "compute 2.44" || r.Header.Get("X-OpenStack-Nova-API-Version") != "2.44" {
			t.Errorf("compute 2.44 echo: %d %v", r.Code, r.Header)
		}
		r = raw(t, s.volume, "GET", "volumes", mvVolume, nil)
		if r.Code != 200 || r.Header.Get("OpenStack-API-Version") != "volume "+mvVolume {
			t.Errorf("volume %s echo: %d %v", mvVolume, r.Code, r.Header)
		}
		if r.Header.Get("X-Openstack-Request-Id") == "" {
			t.Errorf("volume response without X-Openstack-Request-Id")
		}
	})

	t.Run("messages as Nova writes them", func(t *testing.T) {
		// The body is sent as written, so that Python's dict repr shows
		// its keys in this order on both clouds.
		body := `{"server": {"name": "x", "imageRef": "` + be.imageID + `", "flavorRef": "` + be.flavorID + `", "min_count": 1, "config_drive": true, "description": null}}`
		r := raw(t, s.compute, "POST", "servers", "2.37", body)
		checkFault(t, "networks required", r, 400, "badRequest", regexp.MustCompile(`^`+regexp.QuoteMeta(
			"Invalid input for field/attribute server. Value: {'name': 'x', 'imageRef': '"+be.imageID+"', 'flavorRef': '"+be.flavorID+
				"', 'min_count': 1, 'config_drive': True, 'description': None}. 'networks' is a required property")+`$`))
		r = raw(t, s.compute, "POST", "servers", mvMain, map[string]any{"server": map[string]any{"name": be.name("noimage"),
			"imageRef": unknownID, "flavorRef": be.flavorID, "networks": "none"}})
		checkFault(t, "unknown image", r, 400, "badRequest", regexp.MustCompile(`^Can not find requested image$`))
		limitMsg := regexp.MustCompile(`^` + regexp.QuoteMeta("Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'") + `$`)
		for _, path := range []string{"servers?limit=-1", "servers/detail?limit=-1", "flavors/detail?limit=-1"} {
			checkFault(t, path, raw(t, s.compute, "GET", path, mvMain, nil), 400, "badRequest", limitMsg)
		}
	})
	t.Run("unknown routes", func(t *testing.T) {
		// webob's JSON 404 on Nova, Cinder and Glance (Nova and Cinder
		// route on the method too, so a known path with another method
		// is a 404 as well).
		for _, c := range []struct {
			what, method, path string
			sc                 *gophercloud.ServiceClient
		}{
			{"nova path", "GET", "bogus", s.compute},
			{"nova method", "PATCH", "servers", s.compute},
			{"cinder path", "GET", "bogus", s.volume},
			{"cinder method", "PATCH", "volumes", s.volume},
			{"glance path", "GET", "bogus", s.image},
		} {
			r := raw(t, c.sc, c.method, c.path, "", nil)
			if r.Code != 404 || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
				t.Errorf("%s: %s", c.what, r)
				continue
			}
			checkKeys(t, c.what+" 404", r.JSON, []string{"code", "message", "title"}, nil)
			if str(r.JSON, "code") != "404 Not Found" || str(r.JSON, "message") != "The resource could not be found.<br /><br />\n\n\n" {
				t.Errorf("%s: body %s", c.what, r.Body)
			}
		}
		r := raw(t, s.image, "PATCH", "images", "", nil)
		if r.Code != 405 || str(r.JSON, "code") != "405 Method Not Allowed" ||
			str(r.JSON, "message") != "The method PATCH is not allowed for this resource. <br /><br />\n" {
			t.Errorf("glance known path, other method: %s", r)
		}
	})
}
