package cloudsim_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/ostask/ostask/cloudsim"
)

func bsGetVolume(t *testing.T, e *bsEnv, id string) *volumes.Volume {
	t.Helper()
	v, err := volumes.Get(context.Background(), e.vol, id).Extract()
	if err != nil {
		t.Fatalf("get volume %s: %v", id, err)
	}
	return v
}

func bsCreateVolume(t *testing.T, e *bsEnv, opts volumes.CreateOpts) *volumes.Volume {
	t.Helper()
	v, err := volumes.Create(context.Background(), e.vol, opts, nil).Extract()
	if err != nil {
		t.Fatalf("create volume: %v", err)
	}
	return v
}

func bsWantStatus(t *testing.T, e *bsEnv, id, status string) *volumes.Volume {
	t.Helper()
	v := bsGetVolume(t, e, id)
	if v.Status != status {
		t.Fatalf("volume %s: status %q, want %q", id, v.Status, status)
	}
	return v
}

func bsWantGone(t *testing.T, e *bsEnv, id string) {
	t.Helper()
	err := volumes.Get(context.Background(), e.vol, id).Err
	if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("volume %s: want 404, got %v", id, err)
	}
}

func TestCinderVersionDocuments(t *testing.T) {
	e := bsStart(t, cloudsim.Config{})
	for _, tc := range []struct {
		url  string
		code int
	}{
		{e.sim.URL() + "/volume/", http.StatusMultipleChoices},
		{e.sim.URL() + "/volume/v3/", http.StatusOK},
	} {
		r := e.raw(t, "GET", tc.url, "")
		if r.Code != tc.code {
			t.Fatalf("GET %s: %d %s", tc.url, r.Code, r.Body)
		}
		vs := r.JSON(t)["versions"].([]any)
		v := vs[0].(map[string]any)
		if v["id"] != "v3.0" || v["version"] != "3.71" || v["min_version"] != "3.0" || v["status"] != "CURRENT" {
			t.Fatalf("version document %v", v)
		}
		links := v["links"].([]any)
		if self := links[len(links)-1].(map[string]any); self["href"] != e.sim.URL()+"/volume/v3/" {
			t.Fatalf("self link %v", self)
		}
	}
	// The root needs no token; /v3/ does.
	resp, err := http.Get(e.sim.URL() + "/volume/")
	if err != nil || resp.StatusCode != http.StatusMultipleChoices {
		t.Fatalf("unauthenticated root: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(e.sim.URL() + "/volume/v3/")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated /v3/: %v %v", resp, err)
	}
	resp.Body.Close()
}

func TestCinderVolumeLifecycle(t *testing.T) {
	e := bsStart(t, cloudsim.Config{})
	ctx := context.Background()
	v := bsCreateVolume(t, e, volumes.CreateOpts{Size: 2, Name: "data", Description: "scratch",
		Metadata: map[string]string{"role": "db"}, AvailabilityZone: "nova", VolumeType: "lvmdriver-1"})
	if v.Status != "creating" || v.Bootable != "false" || !v.UpdatedAt.IsZero() || v.Size != 2 ||
		v.Name != "data" || v.Description != "scratch" || v.Metadata["role"] != "db" ||
		v.VolumeType != "lvmdriver-1" || v.AvailabilityZone != "nova" || v.UserID != cloudsim.DemoUserID ||
		len(v.Attachments) != 0 || v.Multiattach || v.Encrypted {
		t.Fatalf("create response %+v", v)
	}
	if !v.CreatedAt.Equal(bsEpoch) {
		t.Fatalf("created_at %v, want %v", v.CreatedAt, bsEpoch)
	}
	got := bsWantStatus(t, e, v.ID, "creating")
	if got.TenantID != cloudsim.DemoProjectID {
		t.Fatalf("tenant attribute %q", got.TenantID)
	}
	e.tick(1)
	got = bsWantStatus(t, e, v.ID, "available")
	if !got.UpdatedAt.Equal(bsEpoch.Add(e.step).Truncate(time.Second)) { // whole seconds, as read from Cinder's DB
		t.Fatalf("updated_at %v", got.UpdatedAt)
	}

	// Update (PUT /volumes/{id}) renames and replaces metadata.
	name := "data-2"
	up, err := volumes.Update(ctx, e.vol, v.ID, volumes.UpdateOpts{Name: &name, Metadata: map[string]string{"a": "b"}}).Extract()
	if err != nil || up.Name != "data-2" || up.Metadata["a"] != "b" || up.Metadata["role"] != "" {
		t.Fatalf("update: %+v %v", up, err)
	}

	if err := volumes.Delete(ctx, e.vol, v.ID, nil).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	bsWantStatus(t, e, v.ID, "deleting")
	e.tick(1)
	bsWantGone(t, e, v.ID)
	r := e.raw(t, "GET", e.volURL("volumes/"+v.ID), "")
	if name, code, msg := cinderFault(t, r); r.Code != 404 || name != "itemNotFound" || code != 404 ||
		msg != "Volume "+v.ID+" could not be found." {
		t.Fatalf("404 body %s", r.Body)
	}
	pages, err := volumes.List(e.vol, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := volumes.ExtractVolumes(pages); len(all) != 0 {
		t.Fatalf("deleted volume listed: %+v", all)
	}
}

func TestCinderCreateFromImage(t *testing.T) {
	e := bsStart(t, cloudsim.Config{})
	v := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1, Name: "boot", ImageID: cloudsim.CirrosImageID})
	if v.Status != "creating" || v.Bootable != "false" {
		t.Fatalf("create response %+v", v)
	}
	e.tick(1)
	bsWantStatus(t, e, v.ID, "downloading")
	e.tick(1)
	got := bsWantStatus(t, e, v.ID, "available")
	if got.Bootable != "true" || got.VolumeImageMetadata["image_id"] != cloudsim.CirrosImageID ||
		got.VolumeImageMetadata["image_name"] != cloudsim.CirrosImageName {
		t.Fatalf("volume from image %+v", got)
	}
	// An image name works as imageRef too, as in Cinder.
	v2 := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1, ImageID: cloudsim.CirrosImageName})
	e.tick(2)
	if got := bsWantStatus(t, e, v2.ID, "available"); got.Bootable != "true" {
		t.Fatalf("by name: %+v", got)
	}
}

func TestCinderVolumeMetadata(t *testing.T) {
	e := bsStart(t, cloudsim.Config{})
	ctx := context.Background()
	v := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1, Metadata: map[string]string{"a": "1"}})
	var out struct {
		Metadata map[string]string `json:"metadata"`
	}
	// POST merges.
	if _, err := e.vol.Post(ctx, e.volURL("volumes/"+v.ID+"/metadata"),
		map[string]any{"metadata": map[string]string{"ostask.idempotency": "k-1"}}, &out, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		t.Fatal(err)
	}
	if out.Metadata["a"] != "1" || out.Metadata["ostask.idempotency"] != "k-1" {
		t.Fatalf("after POST %v", out.Metadata)
	}
	// PUT replaces.
	out.Metadata = nil
	if _, err := e.vol.Put(ctx, e.volURL("volumes/"+v.ID+"/metadata"),
		map[string]any{"metadata": map[string]string{"b": "2"}}, &out, &gophercloud.RequestOpts{OkCodes: []int{200}}); err != nil {
		t.Fatal(err)
	}
	if len(out.Metadata) != 1 || out.Metadata["b"] != "2" {
		t.Fatalf("after PUT %v", out.Metadata)
	}
	out.Metadata = nil
	if _, err := e.vol.Get(ctx, e.volURL("volumes/"+v.ID+"/metadata"), &out, nil); err != nil || out.Metadata["b"] != "2" {
		t.Fatalf("GET metadata %v %v", out.Metadata, err)
	}
	if got := bsGetVolume(t, e, v.ID); got.Metadata["b"] != "2" {
		t.Fatalf("volume metadata %v", got.Metadata)
	}
	// Single keys.
	r := e.raw(t, "GET", e.volURL("volumes/"+v.ID+"/metadata/b"), "")
	if r.Code != 200 || !strings.Contains(string(r.Body), `"meta":{"b":"2"}`) {
		t.Fatalf("GET key: %d %s", r.Code, r.Body)
	}
	r = e.raw(t, "PUT", e.volURL("volumes/"+v.ID+"/metadata/c"), `{"meta":{"d":"4"}}`)
	if _, _, msg := cinderFault(t, r); r.Code != 400 || msg != "Request body and URI mismatch" {
		t.Fatalf("mismatch: %d %s", r.Code, r.Body)
	}
	if r = e.raw(t, "DELETE", e.volURL("volumes/"+v.ID+"/metadata/b"), ""); r.Code != 200 {
		t.Fatalf("DELETE key: %d %s", r.Code, r.Body)
	}
	r = e.raw(t, "DELETE", e.volURL("volumes/"+v.ID+"/metadata/b"), "")
	if _, _, msg := cinderFault(t, r); r.Code != 404 || msg != "Volume "+v.ID+" has no metadata with key b." {
		t.Fatalf("DELETE missing key: %d %s", r.Code, r.Body)
	}
	// Bad metadata gets the jsonschema message.
	r = e.raw(t, "POST", e.volURL("volumes/"+v.ID+"/metadata"), `{"metadata":{"k":1}}`)
	if _, _, msg := cinderFault(t, r); r.Code != 400 || msg != "Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'" {
		t.Fatalf("bad metadata: %d %s", r.Code, r.Body)
	}
}

func TestCinderListPaginationAndFilters(t *testing.T) {
	e := bsStart(t, cloudsim.Config{})
	ctx := context.Background()
	var ids []string
	for i := range 7 {
		md := map[string]string{"parity": []string{"even", "odd"}[i%2]}
		v := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1, Name: "v" + string(rune('0'+i)), Metadata: md})
		ids = append(ids, v.ID)
		e.clock.Advance(e.step / 5) // distinct created_at, walks not yet done
	}
	e.tick(1)
	// Newest first (created_at desc), three pages of at most 3.
	var seen []string
	pagesSeen := 0
	err := volumes.List(e.vol, volumes.ListOpts{Limit: 3}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		vs, err := volumes.ExtractVolumes(p)
		if err != nil {
			return false, err
		}
		pagesSeen++
		for _, v := range vs {
			seen = append(seen, v.ID)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(ids)
	slices.Reverse(want)
	if !slices.Equal(seen, want) || pagesSeen < 3 {
		t.Fatalf("pages %d, order %v, want %v", pagesSeen, seen, want)
	}
	// The next link sits in volumes_links, only on full pages.
	r := e.raw(t, "GET", e.volURL("volumes/detail?limit=3"), "")
	links, _ := r.JSON(t)["volumes_links"].([]any)
	if len(links) != 1 || !strings.Contains(links[0].(map[string]any)["href"].(string), "marker="+want[2]) {
		t.Fatalf("volumes_links %s", r.Body)
	}
	r = e.raw(t, "GET", e.volURL("volumes/detail?limit=10"), "")
	if _, ok := r.JSON(t)["volumes_links"]; ok {
		t.Fatalf("next link on a partial page: %s", r.Body)
	}

	listNames := func(opts volumes.ListOpts) []string {
		t.Helper()
		pages, err := volumes.List(e.vol, opts).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		vs, _ := volumes.ExtractVolumes(pages)
		var names []string
		for _, v := range vs {
			names = append(names, v.Name)
		}
		slices.Sort(names)
		return names
	}
	if got := listNames(volumes.ListOpts{Name: "v3"}); !slices.Equal(got, []string{"v3"}) {
		t.Fatalf("name filter %v", got)
	}
	if got := listNames(volumes.ListOpts{Metadata: map[string]string{"parity": "odd"}}); !slices.Equal(got, []string{"v1", "v3", "v5"}) {
		t.Fatalf("metadata filter %v", got)
	}
	if got := listNames(volumes.ListOpts{Status: "available"}); len(got) != 7 {
		t.Fatalf("status filter %v", got)
	}
	no := false
	if got := listNames(volumes.ListOpts{Bootable: &no}); len(got) != 7 {
		t.Fatalf("bootable filter %v", got)
	}
	if got := listNames(volumes.ListOpts{Status: "error"}); len(got) != 0 {
		t.Fatalf("status=error %v", got)
	}
	if got := listNames(volumes.ListOpts{Sort: "name:asc", Limit: 2}); len(got) != 7 {
		t.Fatalf("sorted paging %v", got)
	}

	// An unknown marker is looked up like a volume: 404.
	r = e.raw(t, "GET", e.volURL("volumes/detail?marker=8b0e3f70-0000-4000-8000-000000000000"), "")
	if name, _, _ := cinderFault(t, r); r.Code != 404 || name != "itemNotFound" {
		t.Fatalf("unknown marker: %d %s", r.Code, r.Body)
	}
	r = e.raw(t, "GET", e.volURL("volumes/detail?limit=x"), "")
	if _, _, msg := cinderFault(t, r); r.Code != 400 || msg != "limit param must be an integer" {
		t.Fatalf("bad limit: %d %s", r.Code, r.Body)
	}
	// MaxLimit caps the page.
	capped := bsStart(t, cloudsim.Config{MaxLimit: 2})
	for range 3 {
		bsCreateVolume(t, capped, volumes.CreateOpts{Size: 1})
	}
	r = capped.raw(t, "GET", capped.volURL("volumes?limit=50"), "")
	if vs := r.JSON(t)["volumes"].([]any); len(vs) != 2 {
		t.Fatalf("cap: %s", r.Body)
	}
}

var cinderDeleteRefusal = "Invalid volume: Volume status must be available or error or error_restoring or error_extending or error_managing and must not be migrating, attached, belong to a group, have snapshots, awaiting a transfer, or be disassociated from snapshots after volume transfer."

func TestCinderDeletePreconditions(t *testing.T) {
	e := bsStart(t, cloudsim.Config{Faults: &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
		{Op: cloudsim.OpVolumeCreate, Name: "broken", Kind: cloudsim.FaultError},
		{Op: cloudsim.OpVolumeExtend, Name: "grow-fails", Kind: cloudsim.FaultError},
	}}})
	ctx := context.Background()
	creating := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1})
	r := e.raw(t, "DELETE", e.volURL("volumes/"+creating.ID), "")
	if name, code, msg := cinderFault(t, r); r.Code != 400 || name != "badRequest" || code != 400 || msg != cinderDeleteRefusal {
		t.Fatalf("delete while creating: %d %s", r.Code, r.Body)
	}
	broken := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1, Name: "broken"})
	grow := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1, Name: "grow-fails"})
	e.tick(1)
	bsWantStatus(t, e, broken.ID, "error")
	if err := volumes.ExtendSize(ctx, e.vol, grow.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	r = e.raw(t, "DELETE", e.volURL("volumes/"+grow.ID), "")
	if _, _, msg := cinderFault(t, r); r.Code != 400 || msg != cinderDeleteRefusal {
		t.Fatalf("delete while extending: %d %s", r.Code, r.Body)
	}
	e.tick(1)
	bsWantStatus(t, e, grow.ID, "error_extending")
	// error and error_extending volumes may be deleted.
	for _, id := range []string{broken.ID, grow.ID, creating.ID} {
		if err := volumes.Delete(ctx, e.vol, id, nil).ExtractErr(); err != nil {
			t.Fatalf("delete %s: %v", id, err)
		}
	}
	// A second delete while deleting is refused too.
	r = e.raw(t, "DELETE", e.volURL("volumes/"+broken.ID), "")
	if r.Code != 400 {
		t.Fatalf("delete while deleting: %d %s", r.Code, r.Body)
	}
	e.tick(1)
	for _, id := range []string{broken.ID, grow.ID, creating.ID} {
		bsWantGone(t, e, id)
	}
}

func TestCinderExtend(t *testing.T) {
	e := bsStart(t, cloudsim.Config{})
	ctx := context.Background()
	v := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1})
	err := volumes.ExtendSize(ctx, e.vol, v.ID, volumes.ExtendSizeOpts{NewSize: 3}).ExtractErr()
	r := e.raw(t, "POST", e.volURL("volumes/"+v.ID+"/action"), `{"os-extend":{"new_size":3}}`)
	if _, _, msg := cinderFault(t, r); !gophercloud.ResponseCodeIs(err, 400) ||
		msg != "Invalid volume: Volume "+v.ID+" status must be '{'status': 'available'}' to extend, currently creating." {
		t.Fatalf("extend while creating: %v / %s", err, r.Body)
	}
	e.tick(1)
	r = e.raw(t, "POST", e.volURL("volumes/"+v.ID+"/action"), `{"os-extend":{"new_size":1}}`)
	if _, _, msg := cinderFault(t, r); r.Code != 400 ||
		msg != "Invalid input received: New size for extend must be greater than current size. (current: 1, extended: 1)." {
		t.Fatalf("extend to same size: %d %s", r.Code, r.Body)
	}
	if err := volumes.ExtendSize(ctx, e.vol, v.ID, volumes.ExtendSizeOpts{NewSize: 3}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if got := bsWantStatus(t, e, v.ID, "extending"); got.Size != 1 {
		t.Fatalf("size while extending %d", got.Size)
	}
	e.tick(1)
	if got := bsWantStatus(t, e, v.ID, "available"); got.Size != 3 {
		t.Fatalf("size after extend %d", got.Size)
	}
	// A string of digits is a size too; an unknown action is refused.
	if r := e.raw(t, "POST", e.volURL("volumes/"+v.ID+"/action"), `{"os-extend":{"new_size":"4"}}`); r.Code != 202 {
		t.Fatalf("string size: %d %s", r.Code, r.Body)
	}
	r = e.raw(t, "POST", e.volURL("volumes/"+v.ID+"/action"), `{"os-frobnicate":{}}`)
	if _, _, msg := cinderFault(t, r); r.Code != 400 || !strings.HasPrefix(msg, "There is no such action: os-frobnicate") {
		t.Fatalf("unknown action: %d %s", r.Code, r.Body)
	}
}

func TestCinderBadInput(t *testing.T) {
	e := bsStart(t, cloudsim.Config{})
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		fault, msg               string
	}{
		{"malformed JSON", "POST", "volumes", `{"volume":`, 400, "badRequest", "Malformed request body"},
		{"no volume key", "POST", "volumes", `{"size":1}`, 400, "badRequest", "'volume' is a required property"},
		{"missing size", "POST", "volumes", `{"volume":{"name":"x"}}`, 400, "badRequest",
			"Invalid input received: Volume size 'None' must be an integer and greater than 0"},
		{"size abc", "POST", "volumes", `{"volume":{"size":"abc"}}`, 400, "badRequest",
			"Invalid input for field/attribute size. Value: abc. 'abc' does not match '^[0-9]+$'"},
		{"size zero", "POST", "volumes", `{"volume":{"size":0}}`, 400, "badRequest",
			"Invalid input for field/attribute size. Value: 0. 0 is less than the minimum of 1"},
		{"size float", "POST", "volumes", `{"volume":{"size":1.5}}`, 400, "badRequest",
			"Invalid input for field/attribute size. Value: 1.5. 1.5 is not of type 'integer', 'string', 'null'"},
		{"unknown image", "POST", "volumes", `{"volume":{"size":1,"imageRef":"4f1c7d2a-9e3b-4a6c-8d0f-1b2e3c4d5e6f"}}`, 400, "badRequest",
			"Invalid image identifier or unable to access requested image."},
		{"unknown volume type", "POST", "volumes", `{"volume":{"size":1,"volume_type":"gold"}}`, 404, "itemNotFound",
			"Volume type with name gold could not be found."},
		{"bad AZ", "POST", "volumes", `{"volume":{"size":1,"availability_zone":"mars"}}`, 400, "badRequest",
			"Availability zone 'mars' is invalid."},
		{"image too big", "POST", "volumes", `{"volume":{"size":1,"imageRef":"` + cloudsim.DebianImageID + `"}}`, 400, "badRequest",
			"Invalid input received: Volume size 1GB cannot be smaller than the image minDisk size 2GB."},
		{"unknown key at 3.53", "POST", "volumes", `{"volume":{"size":1,"colour":"red"}}`, 400, "badRequest",
			"Invalid input for field/attribute volume. Value: {'colour': 'red', 'size': 1}. Additional properties are not allowed ('colour' was unexpected)"},
		{"invalid UUID in path", "GET", "volumes/not-a-uuid", "", 404, "itemNotFound", "Volume not-a-uuid could not be found."},
		{"delete unknown", "DELETE", "volumes/not-a-uuid", "", 404, "itemNotFound", "Volume not-a-uuid could not be found."},
		{"action body not an object", "POST", "volumes/x/action", `[]`, 400, "badRequest", "Malformed request body"},
		{"extend missing new_size", "POST", "volumes/x/action", `{"os-extend":{}}`, 400, "badRequest",
			"Invalid input for field/attribute os-extend. Value: {}. 'new_size' is a required property"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.raw(t, tc.method, e.volURL(tc.path), tc.body, "OpenStack-API-Version", "volume 3.60")
			name, code, msg := cinderFault(t, r)
			if r.Code != tc.code || name != tc.fault || int(code) != tc.code || msg != tc.msg {
				t.Fatalf("got %d %s", r.Code, r.Body)
			}
			if r.Header.Get("X-Openstack-Request-Id") == "" || r.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("headers %v", r.Header)
			}
		})
	}
	// Before 3.53 unknown keys in the volume are ignored.
	if r := e.raw(t, "POST", e.volURL("volumes"), `{"volume":{"size":1,"colour":"red"}}`, "OpenStack-API-Version", "volume 3.52"); r.Code != 202 {
		t.Fatalf("3.52 extra key: %d %s", r.Code, r.Body)
	}
}

func TestCinderProjectMismatch(t *testing.T) {
	e := bsStart(t, cloudsim.Config{})
	url := e.sim.URL() + "/volume/v3/" + cloudsim.AdminProjectID + "/volumes/detail"
	r := e.raw(t, "GET", url, "")
	if name, _, msg := cinderFault(t, r); r.Code != 400 || name != "badRequest" || msg != "Malformed request url" {
		t.Fatalf("foreign project in URL: %d %s", r.Code, r.Body)
	}
	// Another project's volume is invisible to demo, visible to admin.
	_, adminVol, _ := bsLogin(t, e.sim, "admin", "admin")
	v, err := volumes.Create(context.Background(), adminVol, volumes.CreateOpts{Size: 1}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	bsWantGone(t, e, v.ID)
	got, err := volumes.Get(context.Background(), adminVol, v.ID).Extract()
	if err != nil || got.Host != "" {
		t.Fatalf("admin get: %+v %v", got, err)
	}
}

var bsNoZ = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$`)

func TestCinderTimeFormat(t *testing.T) {
	e := bsStart(t, cloudsim.Config{})
	v := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1})
	r := e.raw(t, "GET", e.volURL("volumes/"+v.ID), "")
	body := r.JSON(t)["volume"].(map[string]any)
	if !bsNoZ.MatchString(body["created_at"].(string)) || body["updated_at"] != nil {
		t.Fatalf("creating: created_at %v updated_at %v", body["created_at"], body["updated_at"])
	}
	if body["bootable"] != "false" {
		t.Fatalf("bootable %#v", body["bootable"])
	}
	e.tick(1)
	r = e.raw(t, "GET", e.volURL("volumes/detail"), "")
	for _, x := range r.JSON(t)["volumes"].([]any) {
		vb := x.(map[string]any)
		for _, k := range []string{"created_at", "updated_at"} {
			if s, _ := vb[k].(string); !bsNoZ.MatchString(s) || strings.HasSuffix(s, "Z") {
				t.Fatalf("%s = %q", k, vb[k])
			}
		}
	}
}
