package conformance_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var reVersion = regexp.MustCompile(`^\d+\.\d+$`)

// mvLess compares two "major.minor" versions.
func mvLess(a, b string) bool {
	am, an, _ := strings.Cut(a, ".")
	bm, bn, _ := strings.Cut(b, ".")
	x, _ := strconv.Atoi(am)
	y, _ := strconv.Atoi(bm)
	if x != y {
		return x < y
	}
	p, _ := strconv.Atoi(an)
	q, _ := strconv.Atoi(bn)
	return p < q
}

// rootOf cuts an endpoint before its version segment ("/v2.1", "/v3").
func rootOf(endpoint, segment string) string {
	i := strings.Index(endpoint, segment)
	if i < 0 {
		return endpoint
	}
	return endpoint[:i+1]
}

// TestVersionDocuments: the version documents of compute, volume and image
// have the shape clients parse, and the ranges cover what the suite uses.
func TestVersionDocuments(t *testing.T) {
	t.Parallel()
	s := be.demo
	statuses := map[string]bool{"CURRENT": true, "SUPPORTED": true, "DEPRECATED": true, "EXPERIMENTAL": true}

	t.Run("compute", func(t *testing.T) {
		r := raw(t, s.compute, "GET", rootOf(s.compute.Endpoint, "/v2.1"), "", nil)
		if r.Code != 200 {
			t.Fatalf("GET compute root: %s", r)
		}
		var cur map[string]any
		for _, v := range list(r.JSON, "versions") {
			m, _ := v.(map[string]any)
			checkKeys(t, "compute version "+str(m, "id"), m, []string{"id", "status", "version", "min_version", "updated", "links"}, nil)
			if !statuses[str(m, "status")] {
				t.Errorf("compute version status %q", str(m, "status"))
			}
			checkTime(t, "compute version updated", m["updated"], reNovaTime, false)
			if str(m, "id") == "v2.1" {
				cur = m
			}
		}
		if cur == nil || str(cur, "status") != "CURRENT" || str(cur, "min_version") != "2.1" || !reVersion.MatchString(str(cur, "version")) {
			t.Fatalf("compute v2.1 entry %v", cur)
		}
		if mvLess(str(cur, "version"), mvMain) {
			t.Fatalf("compute max %s is below the suite's %s", str(cur, "version"), mvMain)
		}
		t.Logf("compute microversions %s - %s", str(cur, "min_version"), str(cur, "version"))

		r = raw(t, s.compute, "GET", "", "", nil)
		v := obj(r.JSON, "version")
		if r.Code != 200 || str(v, "version") != str(cur, "version") {
			t.Fatalf("GET compute v2.1: %s", r)
		}
		checkKeys(t, "compute v2.1 document", v, []string{"id", "status", "version", "min_version", "updated", "links", "media-types"}, nil)
	})

	t.Run("volume", func(t *testing.T) {
		r := raw(t, s.volume, "GET", rootOf(s.volume.Endpoint, "/v3/"), "", nil)
		if r.Code != 200 && r.Code != 300 {
			t.Fatalf("GET volume root: %s", r)
		}
		var cur map[string]any
		for _, v := range list(r.JSON, "versions") {
			m, _ := v.(map[string]any)
			checkKeys(t, "volume version "+str(m, "id"), m, []string{"id", "status", "version", "min_version", "updated", "links", "media-types"}, nil)
			if !statuses[str(m, "status")] {
				t.Errorf("volume version status %q", str(m, "status"))
			}
			checkTime(t, "volume version updated", m["updated"], reNovaTime, false)
			if str(m, "id") == "v3.0" {
				cur = m
			}
		}
		if cur == nil || str(cur, "status") != "CURRENT" || str(cur, "min_version") != "3.0" || mvLess(str(cur, "version"), mvVolume) {
			t.Fatalf("volume v3.0 entry %v", cur)
		}
		t.Logf("volume microversions %s - %s", str(cur, "min_version"), str(cur, "version"))
	})

	t.Run("image", func(t *testing.T) {
		r := raw(t, s.image, "GET", s.image.Endpoint+"versions", "", nil)
		if r.Code != 200 {
			t.Fatalf("GET image versions: %s", r)
		}
		current := 0
		var ids []string
		for _, v := range list(r.JSON, "versions") {
			m, _ := v.(map[string]any)
			checkKeys(t, "image version "+str(m, "id"), m, []string{"id", "status", "links"}, nil)
			if !statuses[str(m, "status")] || !strings.HasPrefix(str(m, "id"), "v2.") {
				t.Errorf("image version %v", m)
			}
			if str(m, "status") == "CURRENT" {
				current++
			}
			ids = append(ids, str(m, "id"))
		}
		if current != 1 {
			t.Errorf("image versions: %d CURRENT, want 1", current)
		}
		t.Logf("image versions %v", ids)
	})
}
