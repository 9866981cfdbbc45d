package conformance_test

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// volumeKeys360 is a volume body at 3.60 for a project member.
var volumeKeys360 = []string{"attachments", "availability_zone", "bootable", "consistencygroup_id", "created_at",
	"description", "encrypted", "group_id", "id", "links", "metadata", "multiattach", "name",
	"os-vol-tenant-attr:tenant_id", "replication_status", "service_uuid", "shared_targets", "size", "snapshot_id",
	"source_volid", "status", "updated_at", "user_id", "volume_type"}

// volumeCreateKeys360 is the 202 body of a volume create: the same, but
// without the tenant attribute (the API builds it before the row exists).
var volumeCreateKeys360 = slices.DeleteFunc(slices.Clone(volumeKeys360), func(k string) bool { return k == "os-vol-tenant-attr:tenant_id" })

var volumeAttachmentKeys = []string{"attached_at", "attachment_id", "device", "host_name", "id", "server_id", "volume_id"}

func checkVolumeBody(t *testing.T, what string, v map[string]any, want []string) {
	t.Helper()
	checkKeys(t, what, v, want, nil)
	// The create response is built before the row is read back, so only
	// it may carry microseconds.
	re := reDBTime
	if what == "volume 202" {
		re = reNoZTime
	}
	checkTime(t, what+" created_at", v["created_at"], re, false)
	checkTime(t, what+" updated_at", v["updated_at"], re, true)
	if b := v["bootable"]; b != "false" && b != "true" {
		t.Errorf("%s bootable %#v, want a string", what, b)
	}
	for _, a := range list(v, "attachments") {
		at := a.(map[string]any)
		checkKeys(t, what+" attachment", at, volumeAttachmentKeys, nil)
		checkTime(t, what+" attached_at", at["attached_at"], reDBTime, true)
	}
}

// TestVolumeLifecycle: create, get, list, detail, extend and delete of one
// volume, with the bodies and status walks a client sees.
func TestVolumeLifecycle(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := be.demo.volume
	name := be.name("vol")
	id, created := createVolume(t, name)
	cv := obj(created.JSON, "volume")
	checkVolumeBody(t, "volume 202", cv, volumeCreateKeys360)
	if str(cv, "status") != "creating" || cv["updated_at"] != nil || cv["size"] != float64(1) {
		t.Errorf("volume 202: status %v updated_at %v size %v", cv["status"], cv["updated_at"], cv["size"])
	}

	v, seen := waitVolume(t, id, func(s string) bool { return s != "creating" })
	if str(v, "status") != "available" {
		t.Fatalf("volume walk %v", seen)
	}
	checkVolumeBody(t, "volume", v, volumeKeys360)
	if got, err := volumes.Get(ctx, c, id).Extract(); err != nil || got.Status != "available" || got.CreatedAt.IsZero() {
		t.Errorf("gophercloud volume Get: %+v, %v", got, err)
	}

	t.Run("list and detail", func(t *testing.T) {
		r := raw(t, c, "GET", "volumes?name="+url.QueryEscape(name), mvVolume, nil)
		l := list(r.JSON, "volumes")
		if r.Code != 200 || len(l) != 1 {
			t.Fatalf("list by name: %s", r)
		}
		checkKeys(t, "volume in list", l[0].(map[string]any), []string{"id", "links", "name"}, nil)
		if _, ok := r.JSON["volumes_links"]; ok {
			t.Errorf("a list without limit has volumes_links")
		}
		r = raw(t, c, "GET", "volumes/detail?name="+url.QueryEscape(name), mvVolume, nil)
		l = list(r.JSON, "volumes")
		if r.Code != 200 || len(l) != 1 {
			t.Fatalf("detail by name: %s", r)
		}
		checkVolumeBody(t, "volume in detail", l[0].(map[string]any), volumeKeys360)
	})

	t.Run("extend", func(t *testing.T) {
		if err := volumes.ExtendSize(ctx, at(c, mvVolume), id, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		v, seen := waitVolume(t, id, func(s string) bool { return s == "available" || s == "error_extending" })
		for _, s := range seen {
			if s != "available" && s != "extending" && s != "error_extending" {
				t.Errorf("extend walk %v", seen)
			}
		}
		switch {
		case str(v, "status") == "available" && v["size"] == float64(2):
		case str(v, "status") == "error_extending" && v["size"] == float64(1) && be.real():
			// A backend whose driver cannot extend (realstack's fake LVM) fails the
			// extend: listed in DIFFERENCES.md.
			t.Logf("extend on %s ended in error_extending (driver limitation); walk %v", be.label(), seen)
		default:
			t.Errorf("after extend: status %v size %v, walk %v", v["status"], v["size"], seen)
		}
	})

	t.Run("delete", func(t *testing.T) {
		r := raw(t, c, "DELETE", "volumes/"+id, mvVolume, nil)
		if r.Code != 202 {
			t.Fatalf("delete: %s", r)
		}
		var last *rawResp
		poll(t, "volume delete", func() (bool, error) {
			last = raw(t, c, "GET", "volumes/"+id, mvVolume, nil)
			if last.Code == 200 {
				if s := str(obj(last.JSON, "volume"), "status"); s != "deleting" && s != "available" && s != "error_extending" {
					return false, fmt.Errorf("status %s while deleting", s)
				}
			}
			return last.Code == 404, nil
		})
		checkFault(t, "GET deleted volume", last, 404, "itemNotFound", regexp.MustCompile(`^Volume `+id+` could not be found\.$`))
		r = raw(t, c, "GET", "volumes/detail?name="+url.QueryEscape(name), mvVolume, nil)
		if len(list(r.JSON, "volumes")) != 0 {
			t.Errorf("the detail list still shows the deleted volume")
		}
	})
}

// TestVolumePagination: volumes_links on full pages only, the marker, an
// empty page after a full last page, and gophercloud's pager.
func TestVolumePagination(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := be.demo.volume
	name := be.name("vpage")
	var ids []string
	for range 3 {
		id, _ := createVolume(t, name)
		ids = append(ids, id)
	}
	for _, id := range ids {
		waitVolume(t, id, func(s string) bool { return s == "available" })
	}
	next := "volumes?name=" + url.QueryEscape(name) + "&limit=1"
	var got []string
	var sizes []int
	for page := 0; next != "" && page < 6; page++ {
		r := raw(t, c, "GET", next, mvVolume, nil)
		if r.Code != 200 {
			t.Fatalf("page %d: %s", page, r)
		}
		l := list(r.JSON, "volumes")
		sizes = append(sizes, len(l))
		for _, v := range l {
			got = append(got, str(v.(map[string]any), "id"))
		}
		next = ""
		links := list(r.JSON, "volumes_links")
		if len(l) == 1 {
			if len(links) != 1 || str(links[0].(map[string]any), "rel") != "next" {
				t.Fatalf("full page %d without a next link: %s", page, r.Body)
			}
			next = str(links[0].(map[string]any), "href")
			u, _ := url.Parse(next)
			if u.Query().Get("marker") != got[len(got)-1] || u.Query().Get("name") != name {
				t.Errorf("next link %s: want the last id as marker and the name filter kept", next)
			}
		} else if _, ok := r.JSON["volumes_links"]; ok {
			t.Errorf("short page %d has volumes_links: %s", page, r.Body)
		}
	}
	if !slices.Equal(sizes, []int{1, 1, 1, 0}) || !sameSet(got, ids) {
		t.Errorf("pages %v, ids %v, want %v", sizes, got, ids)
	}
	pages := 0
	var gp []string
	err := volumes.List(at(c, mvVolume), volumes.ListOpts{Name: name, Limit: 1}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		pages++
		vs, err := volumes.ExtractVolumes(p)
		for _, v := range vs {
			gp = append(gp, v.ID)
		}
		return true, err
	})
	if err != nil || pages != 3 || !sameSet(gp, ids) {
		t.Errorf("gophercloud pager: %d pages, %v, %v", pages, gp, err)
	}
}

// TestAttachDetach: attach through Nova at 2.60 (gophercloud needs <= 2.100
// for the 200 body), the Cinder volume walks to in-use, and back to
// available after the detach.
func TestAttachDetach(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	sid, _ := createServer(t, be.name("attach"), nil)
	vid, _ := createVolume(t, be.name("attach"))
	waitVolume(t, vid, func(s string) bool { return s == "available" })
	waitServer(t, sid, activeIdle)

	res := volumeattach.Create(ctx, at(be.demo.compute, mvMain), sid, volumeattach.CreateOpts{VolumeID: vid})
	va, err := res.Extract()
	if err != nil {
		t.Fatalf("attach: %v", err)
	}
	body := obj(res.Body.(map[string]any), "volumeAttachment")
	checkKeys(t, "attach 200", body, []string{"device", "id", "serverId", "volumeId"}, nil)
	if va.VolumeID != vid || va.ServerID != sid || va.Device == "" {
		t.Errorf("attachment %+v", va)
	}
	v, seen := waitVolume(t, vid, func(s string) bool { return s == "in-use" })
	for _, s := range seen {
		if !slices.Contains([]string{"available", "reserved", "attaching", "in-use"}, s) {
			t.Errorf("attach walk %v", seen)
		}
	}
	checkVolumeBody(t, "attached volume", v, volumeKeys360)
	atts := list(v, "attachments")
	if len(atts) != 1 || str(atts[0].(map[string]any), "server_id") != sid {
		t.Fatalf("attachments %v", atts)
	}
	a := atts[0].(map[string]any)
	if str(a, "device") != va.Device || str(a, "volume_id") != vid || a["attached_at"] == nil {
		t.Errorf("attachment %v vs nova %+v", a, va)
	}
	waitServer(t, sid, activeIdle)
	sv := getServer(t, be.demo.compute, sid, mvMain)
	vols := list(sv, "os-extended-volumes:volumes_attached")
	if len(vols) != 1 || str(vols[0].(map[string]any), "id") != vid {
		t.Errorf("volumes_attached %v", vols)
	} else {
		checkKeys(t, "volumes_attached entry", vols[0].(map[string]any), []string{"id", "delete_on_termination"}, nil)
	}
	r := raw(t, be.demo.compute, "GET", "servers/"+sid+"/os-volume_attachments", mvMain, nil)
	if l := list(r.JSON, "volumeAttachments"); r.Code != 200 || len(l) != 1 {
		t.Errorf("os-volume_attachments: %s", r)
	} else {
		checkKeys(t, "os-volume_attachments entry", l[0].(map[string]any), []string{"device", "id", "serverId", "volumeId"}, nil)
	}

	if err := volumeattach.Delete(ctx, at(be.demo.compute, mvMain), sid, vid).ExtractErr(); err != nil {
		t.Fatalf("detach: %v", err)
	}
	v, seen = waitVolume(t, vid, func(s string) bool { return s == "available" })
	for _, s := range seen {
		if !slices.Contains([]string{"in-use", "detaching", "available"}, s) {
			t.Errorf("detach walk %v", seen)
		}
	}
	if len(list(v, "attachments")) != 0 {
		t.Errorf("attachments after detach: %v", v["attachments"])
	}
	actions := raw(t, be.demo.compute, "GET", "servers/"+sid+"/os-instance-actions", mvMain, nil)
	var names []string
	for _, a := range list(actions.JSON, "instanceActions") {
		names = append(names, str(a.(map[string]any), "action"))
	}
	if !slices.Equal(names, []string{"detach_volume", "attach_volume", "create"}) {
		t.Errorf("actions %v", names)
	}
}
