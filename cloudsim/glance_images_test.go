package cloudsim_test

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/ostask/ostask/cloudsim"
)

func imgURL(e *bsEnv, path string) string {
	return e.img.ResourceBaseURL() + strings.TrimPrefix(path, "/")
}

// glanceFault checks a webob JSON error body.
func glanceFault(t *testing.T, r bsResp, code int, message string) {
	t.Helper()
	m := r.JSON(t)
	if r.Code != code || m["message"] != message+"<br /><br />\n\n\n" ||
		m["code"] != fmt.Sprintf("%d %s", code, http.StatusText(code)) || m["title"] != http.StatusText(code) {
		t.Fatalf("want %d %q, got %d %s", code, message, r.Code, r.Body)
	}
}

func TestGlanceVersionDocuments(t *testing.T) {
	e := bsStart(t, cloudsim.Config{})
	for _, tc := range []struct {
		path string
		code int
	}{{"/image/", 300}, {"/image/versions", 200}} {
		resp, err := http.Get(e.sim.URL() + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Fatalf("%s: %d", tc.path, resp.StatusCode)
		}
		r := e.raw(t, "GET", e.sim.URL()+tc.path, "")
		vs := r.JSON(t)["versions"].([]any)
		var current []string
		for _, v := range vs {
			m := v.(map[string]any)
			href := m["links"].([]any)[0].(map[string]any)["href"]
			if href != e.sim.URL()+"/image/v2/" {
				t.Fatalf("href %v", href)
			}
			if m["status"] == "CURRENT" {
				current = append(current, m["id"].(string))
			}
		}
		if len(vs) < 10 || !slices.Equal(current, []string{"v2.18"}) {
			t.Fatalf("versions %s", r.Body)
		}
	}
}

var withZ = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)

func TestGlanceShowSeededImage(t *testing.T) {
	e := bsStart(t, cloudsim.Config{})
	im, err := images.Get(context.Background(), e.img, cloudsim.CirrosImageID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if im.Name != cloudsim.CirrosImageName || im.Status != images.ImageStatusActive || im.Visibility != images.ImageVisibilityPublic ||
		im.Owner != cloudsim.AdminProjectID || im.SizeBytes <= 0 || im.Checksum == "" || im.DiskFormat != "qcow2" ||
		im.ContainerFormat != "bare" || im.Protected || im.Properties["os_distro"] != "cirros" ||
		im.File != "/v2/images/"+im.ID+"/file" || im.Schema != "/v2/schemas/image" || im.CreatedAt.IsZero() {
		t.Fatalf("cirros %+v", im)
	}
	r := e.raw(t, "GET", imgURL(e, "images/"+cloudsim.CirrosImageID), "")
	body := r.JSON(t)
	for _, k := range []string{"created_at", "updated_at"} {
		if s, _ := body[k].(string); !withZ.MatchString(s) {
			t.Fatalf("%s = %v", k, body[k])
		}
	}
	if body["self"] != "/v2/images/"+cloudsim.CirrosImageID || body["os_hidden"] != false || body["os_hash_algo"] != "sha512" {
		t.Fatalf("body %s", r.Body)
	}
	glanceFault(t, e.raw(t, "GET", imgURL(e, "images/not-an-image"), ""), 404, "No image found with ID not-an-image")
}

func TestGlanceListPagingFiltersAndDelete(t *testing.T) {
	e := bsStart(t, cloudsim.Config{Faults: &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpImageDelete, Name: "fragile", Nth: 1, Kind: cloudsim.FaultError},
		{Op: cloudsim.OpImageDelete, Name: "sticky", Kind: cloudsim.FaultHang},
	}}})
	ctx := context.Background()
	var mine []string
	for _, name := range []string{"snap-a", "snap-b", "snap-c", "fragile", "sticky"} {
		e.clock.Advance(time.Second)
		im, err := images.Create(ctx, e.img, images.CreateOpts{Name: name, Tags: []string{"ostask"},
			DiskFormat: "qcow2", ContainerFormat: "bare", Properties: map[string]string{"image_type": "snapshot"}}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if im.Status != images.ImageStatusQueued || im.Visibility != images.ImageVisibilityShared || im.Owner != cloudsim.DemoProjectID {
			t.Fatalf("created %+v", im)
		}
		mine = append(mine, im.ID)
	}
	// 7 images, 2 a page, newest first: 4 pages through the relative next.
	var seen []string
	pages := 0
	err := images.List(e.img, images.ListOpts{Limit: 2}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		ims, err := images.ExtractImages(p)
		pages++
		for _, im := range ims {
			seen = append(seen, im.ID)
		}
		return true, err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(mine)
	slices.Reverse(want)
	want = append(want, cloudsim.DebianImageID, cloudsim.CirrosImageID)
	if !slices.Equal(seen, want) || pages < 4 {
		t.Fatalf("%d pages: %v, want %v", pages, seen, want)
	}
	r := e.raw(t, "GET", imgURL(e, "images?limit=2"), "")
	m := r.JSON(t)
	if m["next"] != "/v2/images?limit=2&marker="+want[1] || m["first"] != "/v2/images?limit=2" || m["schema"] != "/v2/schemas/images" {
		t.Fatalf("links %s", r.Body)
	}

	names := func(opts images.ListOpts) []string {
		t.Helper()
		all, err := images.List(e.img, opts).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ims, _ := images.ExtractImages(all)
		var out []string
		for _, im := range ims {
			out = append(out, im.Name)
		}
		return out
	}
	for _, tc := range []struct {
		opts images.ListOpts
		want []string
	}{
		{images.ListOpts{Name: "snap-b"}, []string{"snap-b"}},
		{images.ListOpts{Status: images.ImageStatusActive}, []string{cloudsim.DebianImageName, cloudsim.CirrosImageName}},
		{images.ListOpts{Visibility: images.ImageVisibilityPublic, SortKey: "name", SortDir: "asc"}, []string{cloudsim.CirrosImageName, cloudsim.DebianImageName}},
		{images.ListOpts{Owner: cloudsim.DemoProjectID, Sort: "name:asc"}, []string{"fragile", "snap-a", "snap-b", "snap-c", "sticky"}},
		{images.ListOpts{Tags: []string{"ostask"}, SortKey: "created_at", SortDir: "asc", Limit: 1}, []string{"snap-a", "snap-b", "snap-c", "fragile", "sticky"}},
	} {
		if got := names(tc.opts); !slices.Equal(got, tc.want) {
			t.Fatalf("%+v: %v, want %v", tc.opts, got, tc.want)
		}
	}
	glanceFault(t, e.raw(t, "GET", imgURL(e, "images?visibility=everyone"), ""), 400, "Invalid visibility value: everyone")
	glanceFault(t, e.raw(t, "GET", imgURL(e, "images?limit=-1"), ""), 400, "limit param must be positive")
	glanceFault(t, e.raw(t, "GET", imgURL(e, "images?sort_dir=up"), ""), 400, "Invalid sort direction: up")
	glanceFault(t, e.raw(t, "GET", imgURL(e, "images?marker=4b8e2f10-1111-4222-8333-944455556666"), ""), 400,
		"No image found with ID 4b8e2f10-1111-4222-8333-944455556666")

	// Delete: 204 and gone at once.
	if err := images.Delete(ctx, e.img, mine[0]).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := images.Get(ctx, e.img, mine[0]).Err; !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("after delete: %v", err)
	}
	glanceFault(t, e.raw(t, "DELETE", imgURL(e, "images/"+mine[0]), ""), 404, "Failed to find image "+mine[0]+" to delete")
	// Someone else's public image: 403; a protected one even for its owner.
	glanceFault(t, e.raw(t, "DELETE", imgURL(e, "images/"+cloudsim.CirrosImageID), ""), 403,
		"You are not authorized to complete delete_image action.")
	_, _, adminImg := bsLogin(t, e.sim, "admin", "admin")
	if err := images.Delete(ctx, adminImg, cloudsim.DebianImageID).ExtractErr(); !gophercloud.ResponseCodeIs(err, 403) {
		t.Fatalf("protected: %v", err)
	}
	// image.delete error: 500 and the image stays; the retry works.
	if err := images.Delete(ctx, e.img, mine[3]).ExtractErr(); !gophercloud.ResponseCodeIs(err, 500) {
		t.Fatalf("fault: %v", err)
	}
	if im, err := images.Get(ctx, e.img, mine[3]).Extract(); err != nil || im.Status != images.ImageStatusQueued {
		t.Fatalf("after failed delete: %+v %v", im, err)
	}
	if err := images.Delete(ctx, e.img, mine[3]).ExtractErr(); err != nil {
		t.Fatalf("retry: %v", err)
	}
	// image.delete hang: the call never answers; the image stays.
	hctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := images.Delete(hctx, e.img, mine[4]).ExtractErr(); err == nil {
		t.Fatal("hung delete answered")
	}
	if _, err := images.Get(ctx, e.img, mine[4]).Extract(); err != nil {
		t.Fatalf("after hung delete: %v", err)
	}
}

func TestGlanceCreateValidation(t *testing.T) {
	e := bsStart(t, cloudsim.Config{})
	glanceFault(t, e.raw(t, "POST", imgURL(e, "images"), `{"name":"x","status":"active"}`), 403, "Attribute 'status' is read-only.")
	glanceFault(t, e.raw(t, "POST", imgURL(e, "images"), `{"name":"x","visibility":"everyone"}`), 400,
		"Provided object does not match schema 'image': 'everyone' is not one of ['community', 'public', 'private', 'shared']")
	glanceFault(t, e.raw(t, "POST", imgURL(e, "images"), `{`), 400, "Malformed JSON in request body.")
	r := e.raw(t, "POST", imgURL(e, "images"), `{"id":"`+cloudsim.CirrosImageID+`"}`)
	glanceFault(t, r, 409, "Image with identifier "+cloudsim.CirrosImageID+" already exists!")
}
