package conformance_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// imageKeys are the keys every Glance v2 image body has. Custom properties
// are top-level keys too, and some deployments add direct_url (config
// show_image_direct_url) or stores (multiple stores), so extra keys are
// allowed here and listed in the log instead.
var imageKeys = []string{"checksum", "container_format", "created_at", "disk_format", "file", "id", "min_disk",
	"min_ram", "name", "os_hash_algo", "os_hash_value", "os_hidden", "owner", "protected", "schema", "self", "size",
	"status", "tags", "updated_at", "virtual_size", "visibility"}

func checkImageBody(t *testing.T, what string, im map[string]any) {
	t.Helper()
	var missing []string
	for _, k := range imageKeys {
		if _, ok := im[k]; !ok {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s on %s: missing keys %v (all: %v)", what, be.label(), missing, keysOf(im))
	}
	checkTime(t, what+" created_at", im["created_at"], reZTime, false)
	checkTime(t, what+" updated_at", im["updated_at"], reZTime, false)
	if s := str(im, "self"); s != "/v2/images/"+str(im, "id") {
		t.Errorf("%s self %q", what, s)
	}
	if s := str(im, "file"); s != "/v2/images/"+str(im, "id")+"/file" {
		t.Errorf("%s file %q", what, s)
	}
}

// TestImages: the base image's body, the list's top-level next link and
// gophercloud's pager over it.
//
// Not parallel: it pages through every image, and the server tests make
// and delete snapshots, so a marker could vanish between two pages (a 400
// on a real Glance too).
func TestImages(t *testing.T) {
	ctx := testCtx(t)
	c := be.demo.image

	r := raw(t, c, "GET", "images/"+be.imageID, "", nil)
	if r.Code != 200 {
		t.Fatalf("GET image: %s", r)
	}
	checkImageBody(t, "base image", r.JSON)
	if str(r.JSON, "status") != "active" || str(r.JSON, "visibility") != "public" {
		t.Errorf("base image %s/%s", str(r.JSON, "status"), str(r.JSON, "visibility"))
	}
	var extra []string
	for _, k := range keysOf(r.JSON) {
		if !strings.Contains(strings.Join(imageKeys, " ")+" ", k+" ") {
			extra = append(extra, k)
		}
	}
	t.Logf("base image extra keys on %s: %v", be.label(), extra)

	// Page through two images of the test's own, found by a tag, so that
	// the pages do not depend on what else the cloud holds (a fresh one
	// has a single image).
	tag := be.name("images")
	var own []string
	for i := range 2 {
		cr := raw(t, c, "POST", "images", "", map[string]any{"name": be.name(fmt.Sprintf("img-%d", i)), "tags": []string{tag},
			"disk_format": "raw", "container_format": "bare", "visibility": "private"})
		if cr.Code != 201 {
			t.Fatalf("create image: %s", cr)
		}
		id := str(cr.JSON, "id")
		own = append(own, id)
		t.Cleanup(func() {
			ctx, cancel := cleanupCtx()
			defer cancel()
			_ = images.Delete(ctx, c, id).ExtractErr()
		})
	}
	r = raw(t, c, "GET", "images?limit=1&tag="+url.QueryEscape(tag), "", nil)
	if r.Code != 200 {
		t.Fatalf("list: %s", r)
	}
	checkKeys(t, "image list", r.JSON, []string{"images", "first", "schema", "next"}, nil)
	fu, _ := url.Parse(str(r.JSON, "first"))
	if fu == nil || fu.Path != "/v2/images" || fu.Query().Get("limit") != "1" || fu.Query().Get("tag") != tag || str(r.JSON, "schema") != "/v2/schemas/images" {
		t.Errorf("list first %q schema %q", str(r.JSON, "first"), str(r.JSON, "schema"))
	}
	first := list(r.JSON, "images")
	next := str(r.JSON, "next")
	if len(first) != 1 || !strings.HasPrefix(next, "/v2/images?") || !strings.Contains(next, "marker="+str(first[0].(map[string]any), "id")) ||
		!strings.Contains(next, "tag=") {
		t.Fatalf("first page %d images, next %q", len(first), next)
	}
	checkImageBody(t, "listed image", first[0].(map[string]any))
	r = raw(t, c, "GET", c.Endpoint+strings.TrimPrefix(next, "/"), "", nil)
	second := list(r.JSON, "images")
	if r.Code != 200 || len(second) != 1 || str(second[0].(map[string]any), "id") == str(first[0].(map[string]any), "id") {
		t.Fatalf("second page: %s", r)
	}
	if got := []string{str(first[0].(map[string]any), "id"), str(second[0].(map[string]any), "id")}; !sameSet(got, own) {
		t.Errorf("paged %v, want the test's images %v", got, own)
	}
	r = raw(t, c, "GET", c.Endpoint+strings.TrimPrefix(str(r.JSON, "next"), "/"), "", nil)
	if l := list(r.JSON, "images"); r.Code != 200 || len(l) != 0 || r.JSON["next"] != nil {
		t.Errorf("third page: %s", r)
	}

	all := raw(t, c, "GET", "images", "", nil)
	if _, ok := all.JSON["next"]; ok {
		t.Errorf("an unlimited list that fits has next")
	}
	seen := map[string]bool{}
	pages := 0
	err := images.List(c, images.ListOpts{Limit: 1}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		pages++
		ims, err := images.ExtractImages(p)
		for _, im := range ims {
			if seen[im.ID] {
				t.Errorf("pager repeats image %s", im.ID)
			}
			seen[im.ID] = true
		}
		return pages < 50, err
	})
	if err != nil || !seen[be.imageID] && pages < 50 {
		t.Errorf("pager over images: %d pages, base image seen %v, %v", pages, seen[be.imageID], err)
	}
}
