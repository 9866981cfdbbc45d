package cloudsim_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/ostask/ostask/cloudsim"
)

func TestCinderAttachedVolume(t *testing.T) {
	e := bsStart(t, cloudsim.Config{})
	ctx := context.Background()
	v := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1})
	e.tick(1)
	server := "5b9f6c1e-8a2d-4f3b-9c7e-1d2a3b4c5d6e"
	e.sim.CinderAttachForTest(v.ID, server)
	got := bsWantStatus(t, e, v.ID, "in-use")
	if len(got.Attachments) != 1 {
		t.Fatalf("attachments %+v", got.Attachments)
	}
	a := got.Attachments[0]
	if a.ID != v.ID || a.VolumeID != v.ID || a.ServerID != server || a.AttachmentID == "" || a.Device != "/dev/vdb" ||
		a.HostName != "" || !a.AttachedAt.Equal(e.clock.Now().Truncate(time.Second)) { // whole seconds, as read from Cinder's DB
		t.Fatalf("attachment %+v", a)
	}
	r := e.raw(t, "DELETE", e.volURL("volumes/"+v.ID), "")
	if _, _, msg := cinderFault(t, r); r.Code != 400 || msg != cinderDeleteRefusal {
		t.Fatalf("delete attached: %d %s", r.Code, r.Body)
	}
	// In-use volumes can be extended from 3.42 only.
	r = e.raw(t, "POST", e.volURL("volumes/"+v.ID+"/action"), `{"os-extend":{"new_size":2}}`, "OpenStack-API-Version", "volume 3.41")
	if _, _, msg := cinderFault(t, r); r.Code != 400 ||
		msg != "Invalid volume: Volume "+v.ID+" status must be '{'status': 'available'}' to extend, currently in-use." {
		t.Fatalf("extend in-use at 3.41: %d %s", r.Code, r.Body)
	}
	e.vol.Microversion = "3.42"
	if err := volumes.ExtendSize(ctx, e.vol, v.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	bsWantStatus(t, e, v.ID, "extending")
	e.tick(1)
	if got := bsWantStatus(t, e, v.ID, "in-use"); got.Size != 2 {
		t.Fatalf("size %d", got.Size)
	}
}

func TestCinderFaultPlan(t *testing.T) {
	ctx := context.Background()
	t.Run("create error probability 1", func(t *testing.T) {
		e := bsStart(t, cloudsim.Config{Faults: &cloudsim.FaultPlan{Ops: map[cloudsim.Op]cloudsim.OpFaults{
			cloudsim.OpVolumeCreate: {Error: 1}}}})
		v := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1})
		e.tick(1)
		bsWantStatus(t, e, v.ID, "error")
		// From an image, the failure comes after the download started.
		v = bsCreateVolume(t, e, volumes.CreateOpts{Size: 1, ImageID: cloudsim.CirrosImageID})
		e.tick(1)
		bsWantStatus(t, e, v.ID, "downloading")
		e.tick(1)
		if got := bsWantStatus(t, e, v.ID, "error"); got.Bootable != "false" {
			t.Fatalf("failed copy is bootable: %+v", got)
		}
	})
	t.Run("hangs", func(t *testing.T) {
		e := bsStart(t, cloudsim.Config{Faults: &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
			{Op: cloudsim.OpVolumeCreate, Name: "stuck", Kind: cloudsim.FaultHang},
			{Op: cloudsim.OpVolumeDelete, Name: "undying", Kind: cloudsim.FaultHang},
			{Op: cloudsim.OpVolumeExtend, Name: "undying", Kind: cloudsim.FaultHang},
			{Op: cloudsim.OpVolumeDelete, Name: "bad-delete", Kind: cloudsim.FaultError},
		}}})
		stuck := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1, Name: "stuck"})
		undying := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1, Name: "undying"})
		badDelete := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1, Name: "bad-delete"})
		e.tick(1)
		if err := volumes.ExtendSize(ctx, e.vol, undying.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if err := volumes.Delete(ctx, e.vol, badDelete.ID, nil).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		e.tick(20)
		bsWantStatus(t, e, stuck.ID, "creating")
		bsWantStatus(t, e, undying.ID, "extending")
		bsWantStatus(t, e, badDelete.ID, "error_deleting")

		undying2 := bsCreateVolume(t, e, volumes.CreateOpts{Size: 1, Name: "undying"})
		e.tick(1)
		if err := volumes.Delete(ctx, e.vol, undying2.ID, nil).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		e.tick(20)
		bsWantStatus(t, e, undying2.ID, "deleting")
	})
	t.Run("lose response on create", func(t *testing.T) {
		e := bsStart(t, cloudsim.Config{Faults: &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
			{Op: cloudsim.OpVolumeCreate, Name: "lost", Kind: cloudsim.FaultLoseResponse}}}})
		_, err := volumes.Create(ctx, e.vol, volumes.CreateOpts{Size: 1, Name: "lost"}, nil).Extract()
		if err == nil {
			t.Fatal("create answered despite lose-response")
		}
		var found []cloudsim.VolumeInfo
		for _, v := range e.sim.Volumes() {
			if v.Name == "lost" {
				found = append(found, v)
			}
		}
		if len(found) != 1 || found[0].Status != "creating" {
			t.Fatalf("volumes named lost: %+v", found)
		}
		e.tick(1)
		bsWantStatus(t, e, found[0].ID, "available")
	})
	t.Run("scripted 503 on create", func(t *testing.T) {
		e := bsStart(t, cloudsim.Config{Faults: &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{
			{Op: cloudsim.OpVolumeCreate, Name: "busy", Nth: 1, Kind: cloudsim.Fault503}}}})
		r := e.raw(t, "POST", e.volURL("volumes"), `{"volume":{"size":1,"name":"busy"}}`)
		if name, _, _ := cinderFault(t, r); r.Code != 503 || name != "serviceUnavailable" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("503: %d %v %s", r.Code, r.Header, r.Body)
		}
		if n := len(e.sim.Volumes()); n != 0 {
			t.Fatalf("a refused create made %d volumes", n)
		}
		// The second try goes through.
		if r := e.raw(t, "POST", e.volURL("volumes"), `{"volume":{"size":1,"name":"busy"}}`); r.Code != 202 {
			t.Fatalf("retry: %d %s", r.Code, r.Body)
		}
	})
	t.Run("429 with Retry-After on a Cinder route", func(t *testing.T) {
		e := bsStart(t, cloudsim.Config{Faults: &cloudsim.FaultPlan{API: cloudsim.APIFaults{
			Match: "POST /volume/", RateLimit: 1, RetryAfter: 3 * time.Second}}})
		_, err := volumes.Create(ctx, e.vol, volumes.CreateOpts{Size: 1}, nil).Extract()
		var ue gophercloud.ErrUnexpectedResponseCode
		if !gophercloud.ResponseCodeIs(err, http.StatusTooManyRequests) {
			t.Fatalf("want 429, got %v", err)
		}
		if !errorsAs(err, &ue) || ue.ResponseHeader.Get("Retry-After") != "3" {
			t.Fatalf("Retry-After %q", ue.ResponseHeader.Get("Retry-After"))
		}
		// Reads are not matched.
		if r := e.raw(t, "GET", e.volURL("volumes/detail"), ""); r.Code != 200 {
			t.Fatalf("GET: %d", r.Code)
		}
	})
}
