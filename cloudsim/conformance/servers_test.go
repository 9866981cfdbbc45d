package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/instanceactions"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// serverKeys260 is the key set of a server body at 2.60 for a project
// member, for a server booted with networks "none" (so no ports and no
// security_groups key). progress comes only in progressStatuses; fault
// only in ERROR (and DELETED).
var serverKeys260 = []string{"OS-DCF:diskConfig", "OS-EXT-AZ:availability_zone", "OS-EXT-STS:power_state",
	"OS-EXT-STS:task_state", "OS-EXT-STS:vm_state", "OS-SRV-USG:launched_at", "OS-SRV-USG:terminated_at",
	"accessIPv4", "accessIPv6", "addresses", "config_drive", "created", "description", "flavor", "hostId", "id",
	"image", "key_name", "links", "locked", "metadata", "name", "os-extended-volumes:volumes_attached",
	"status", "tags", "tenant_id", "updated", "user_id"}

// adminServerKeys260 are the extra keys an admin sees at 2.60.
var adminServerKeys260 = []string{"OS-EXT-SRV-ATTR:host", "OS-EXT-SRV-ATTR:hypervisor_hostname",
	"OS-EXT-SRV-ATTR:instance_name", "OS-EXT-SRV-ATTR:reservation_id", "OS-EXT-SRV-ATTR:launch_index",
	"OS-EXT-SRV-ATTR:hostname", "OS-EXT-SRV-ATTR:kernel_id", "OS-EXT-SRV-ATTR:ramdisk_id",
	"OS-EXT-SRV-ATTR:root_device_name", "OS-EXT-SRV-ATTR:user_data", "host_status"}

var progressStatuses = map[string]bool{"ACTIVE": true, "BUILD": true, "REBUILD": true, "RESIZE": true, "VERIFY_RESIZE": true, "MIGRATING": true}

// buildTasks are the task states a server in BUILD may show.
var buildTasks = map[string]bool{"scheduling": true, "networking": true, "block_device_mapping": true, "spawning": true}

var (
	actionKeys      = []string{"action", "instance_uuid", "message", "project_id", "request_id", "start_time", "updated_at", "user_id"}
	eventKeys       = []string{"event", "start_time", "finish_time", "result"}
	adminEventExtra = []string{"traceback"}
)

// checkServerBody checks the key set of one server body at 2.60.
func checkServerBody(t *testing.T, what string, sv map[string]any, admin bool) {
	t.Helper()
	want := slices.Clone(serverKeys260)
	st := str(sv, "status")
	if progressStatuses[st] {
		want = append(want, "progress")
	}
	if st == "ERROR" {
		want = append(want, "fault")
	}
	var optional []string
	if st == "DELETED" {
		optional = append(optional, "fault")
	}
	if admin {
		want = append(want, adminServerKeys260...)
	}
	checkKeys(t, what, sv, want, optional)
	checkTime(t, what+" created", sv["created"], reNovaTime, false)
	checkTime(t, what+" updated", sv["updated"], reNovaTime, false)
	checkTime(t, what+" launched_at", sv["OS-SRV-USG:launched_at"], reDBTime, true)
	checkTime(t, what+" terminated_at", sv["OS-SRV-USG:terminated_at"], reDBTime, true)
	if f := obj(sv, "fault"); f != nil {
		checkTime(t, what+" fault.created", f["created"], reNovaTime, false)
	}
}

// checkAction checks one os-instance-actions entry at 2.60.
func checkAction(t *testing.T, what string, a map[string]any, withEvents, admin bool) {
	t.Helper()
	want := slices.Clone(actionKeys)
	if withEvents {
		want = append(want, "events")
	}
	checkKeys(t, what, a, want, nil)
	checkTime(t, what+" start_time", a["start_time"], reDBTime, false)
	checkTime(t, what+" updated_at", a["updated_at"], reDBTime, true)
	for _, e := range list(a, "events") {
		ev, _ := e.(map[string]any)
		var extra []string
		if admin {
			extra = adminEventExtra
		}
		checkKeys(t, what+" event "+str(ev, "event"), ev, append(slices.Clone(eventKeys), extra...), nil)
		checkTime(t, what+" event start_time", ev["start_time"], reDBTime, false)
		checkTime(t, what+" event finish_time", ev["finish_time"], reDBTime, true)
	}
}

// checkWalk checks that every state seen is one Nova shows on that walk.
func checkWalk(t *testing.T, what string, seen []serverState, allowed map[serverState]bool) {
	t.Helper()
	for _, st := range seen {
		if !allowed[st] {
			t.Errorf("%s: state %v is not on the walk (seen %v)", what, st, seen)
		}
	}
}

func buildWalk() map[serverState]bool {
	m := map[serverState]bool{{"ACTIVE", "", "active"}: true, {"BUILD", "", "building"}: true}
	for task := range buildTasks {
		m[serverState{"BUILD", task, "building"}] = true
	}
	return m
}

var reConflict = `^Cannot '%s' instance %s while it is in (task_state %s|vm_state %s)$`

// TestServerLifecycle walks one server through create, stop, start,
// createImage at 2.44 and 2.45 and delete, and checks what each step shows,
// including what stays visible after the delete.
func TestServerLifecycle(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := be.demo.compute
	id, created := createServer(t, be.name("life"), nil)

	t.Run("202 body", func(t *testing.T) {
		body := obj(created.JSON, "server")
		checkKeys(t, "create 202", body, []string{"id", "links", "OS-DCF:diskConfig", "security_groups"}, []string{"adminPass"})
		if _, ok := body["status"]; ok {
			t.Errorf("the 202 body has a status")
		}
		if loc := created.Header.Get("Location"); !strings.HasSuffix(loc, "/servers/"+id) {
			t.Errorf("Location %q", loc)
		}
		var rels []string
		for _, l := range list(body, "links") {
			rels = append(rels, str(l.(map[string]any), "rel"))
		}
		if !slices.Equal(rels, []string{"self", "bookmark"}) {
			t.Errorf("links rels %v", rels)
		}
	})

	sv, seen := waitServer(t, id, activeIdle)
	checkWalk(t, "build", seen, buildWalk())
	if seen[0].Status != "BUILD" && seen[0] != (serverState{"ACTIVE", "", "active"}) {
		t.Errorf("first state %v", seen[0])
	}
	checkServerBody(t, "ACTIVE server", sv, false)
	if sv["OS-EXT-STS:power_state"] != float64(1) || sv["fault"] != nil {
		t.Errorf("ACTIVE server: power_state %v, fault %v", sv["OS-EXT-STS:power_state"], sv["fault"])
	}

	t.Run("stop twice", func(t *testing.T) {
		if err := servers.Stop(ctx, at(c, mvMain), id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		r := raw(t, c, "POST", "servers/"+id+"/action", mvMain, map[string]any{"os-stop": nil})
		checkFault(t, "second stop", r, 409, "conflictingRequest",
			regexp.MustCompile(fmt.Sprintf(reConflict, "stop", id, "powering-off", "stopped")))
		_, seen := waitServer(t, id, func(s serverState) bool { return s.Status == "SHUTOFF" && s.Task == "" })
		checkWalk(t, "stop", seen, map[serverState]bool{{"ACTIVE", "powering-off", "active"}: true, {"SHUTOFF", "", "stopped"}: true})
	})

	t.Run("start twice", func(t *testing.T) {
		if err := servers.Start(ctx, at(c, mvMain), id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		r := raw(t, c, "POST", "servers/"+id+"/action", mvMain, map[string]any{"os-start": nil})
		checkFault(t, "second start", r, 409, "conflictingRequest",
			regexp.MustCompile(fmt.Sprintf(reConflict, "start", id, "powering-on", "active")))
		_, seen := waitServer(t, id, activeIdle)
		checkWalk(t, "start", seen, map[serverState]bool{{"SHUTOFF", "powering-on", "stopped"}: true, {"ACTIVE", "", "active"}: true})
	})

	snapshot := func(t *testing.T, mv string) {
		name := be.name("snap-" + mv)
		res := servers.CreateImage(ctx, at(c, mv), id, servers.CreateImageOpts{Name: name})
		var bodyBytes []byte
		if buf, ok := res.Body.(*bytes.Buffer); ok {
			bodyBytes = bytes.Clone(buf.Bytes())
		}
		imageID, err := res.ExtractImageID()
		if err != nil {
			t.Fatalf("createImage at %s: %v", mv, err)
		}
		t.Cleanup(func() {
			ctx, cancel := cleanupCtx()
			defer cancel()
			_ = images.Delete(ctx, be.demo.image, imageID).ExtractErr()
		})
		loc := res.Header.Get("Location")
		if mv == "2.44" {
			if !strings.HasSuffix(loc, "/images/"+imageID) || strings.Contains(loc, "/v2/images/") {
				t.Errorf("2.44 Location %q, want <image endpoint>/images/<id>", loc)
			}
			if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=UTF-8" {
				t.Errorf("2.44 createImage Content-Type %q", ct)
			}
			if len(bodyBytes) > 0 {
				t.Errorf("2.44 createImage has a body: %s", bodyBytes)
			}
		} else {
			if loc != "" {
				t.Errorf("2.45 createImage has Location %q", loc)
			}
			var body map[string]any
			_ = json.Unmarshal(bodyBytes, &body)
			checkKeys(t, "2.45 createImage body", body, []string{"image_id"}, nil)
		}
		_, seen := waitServer(t, id, activeIdle)
		walk := map[serverState]bool{{"ACTIVE", "", "active"}: true}
		for _, task := range []string{"image_snapshot", "image_snapshot_pending", "image_pending_upload", "image_uploading"} {
			walk[serverState{"ACTIVE", task, "active"}] = true
		}
		checkWalk(t, "createImage", seen, walk)
		poll(t, "snapshot image "+imageID, func() (bool, error) {
			im, err := images.Get(ctx, be.demo.image, imageID).Extract()
			if err != nil {
				return false, err
			}
			return im.Status == images.ImageStatusActive, nil
		})
		r := raw(t, be.demo.image, "GET", "images/"+imageID, "", nil)
		checkImageBody(t, "snapshot image", r.JSON)
		for _, k := range []string{"owner_user_name", "owner_project_name", "boot_roles", "user_id"} {
			if str(r.JSON, k) == "" {
				t.Errorf("snapshot image lacks property %s", k)
			}
		}
		if str(r.JSON, "owner_user_name") != be.demo.authOpts.Username || str(r.JSON, "owner_project_name") != be.demo.authOpts.TenantName {
			t.Errorf("snapshot owner %q/%q", str(r.JSON, "owner_user_name"), str(r.JSON, "owner_project_name"))
		}
		if str(r.JSON, "image_type") != "snapshot" || str(r.JSON, "instance_uuid") != id || str(r.JSON, "base_image_ref") != be.imageID {
			t.Errorf("snapshot properties: image_type %q instance_uuid %q base_image_ref %q",
				str(r.JSON, "image_type"), str(r.JSON, "instance_uuid"), str(r.JSON, "base_image_ref"))
		}
	}
	t.Run("createImage 2.44", func(t *testing.T) { snapshot(t, "2.44") })
	t.Run("createImage 2.45", func(t *testing.T) { snapshot(t, "2.45") })

	t.Run("instance actions", func(t *testing.T) {
		r := raw(t, c, "GET", "servers/"+id+"/os-instance-actions", mvMain, nil)
		if r.Code != 200 {
			t.Fatalf("list actions: %s", r)
		}
		checkKeys(t, "actions list", r.JSON, []string{"instanceActions"}, []string{"links"})
		var names []string
		for _, a := range list(r.JSON, "instanceActions") {
			m := a.(map[string]any)
			checkAction(t, "action "+str(m, "action"), m, false, false)
			names = append(names, str(m, "action"))
		}
		if want := []string{"createImage", "createImage", "start", "stop", "create"}; !slices.Equal(names, want) {
			t.Errorf("actions %v, want %v (newest first)", names, want)
		}
		pages, err := instanceactions.List(at(c, mvMain), id, nil).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if acts, err := instanceactions.ExtractInstanceActions(pages); err != nil || len(acts) != 5 {
			t.Errorf("gophercloud actions: %d, %v", len(acts), err)
		}
	})

	// changes-since compares with the cloud's clock: take it from the
	// server's own updated time, which is inclusive.
	last := getServer(t, c, id, mvMain)
	since := str(last, "updated")

	t.Run("delete", func(t *testing.T) {
		if err := servers.Delete(ctx, at(c, mvMain), id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		r := waitServerGone(t, id)
		checkFault(t, "GET deleted server", r, 404, "itemNotFound", regexp.MustCompile(`^Instance `+id+` could not be found\.$`))
		if _, err := servers.Get(ctx, c, id).Extract(); !isNotFound(err) {
			t.Errorf("gophercloud Get of a deleted server: %v", err)
		}
	})

	t.Run("changes-since shows DELETED", func(t *testing.T) {
		r := raw(t, c, "GET", "servers/detail?changes-since="+url.QueryEscape(since), mvMain, nil)
		if r.Code != 200 {
			t.Fatalf("changes-since: %s", r)
		}
		var found map[string]any
		for _, s := range list(r.JSON, "servers") {
			if m := s.(map[string]any); str(m, "id") == id {
				found = m
			}
		}
		if found == nil {
			t.Fatalf("changes-since=%s does not list the deleted server: %s", since, r.Body)
		}
		if st := stateOf(found); st != (serverState{"DELETED", "", "deleted"}) {
			t.Errorf("deleted server in changes-since: %v", st)
		}
		checkServerBody(t, "DELETED server", found, false)
		checkTime(t, "terminated_at", found["OS-SRV-USG:terminated_at"], reDBTime, false)
		if found["fault"] != nil {
			t.Errorf("a cleanly deleted server has a fault: %v", found["fault"])
		}
		plain := raw(t, c, "GET", "servers/detail?name="+url.QueryEscape("^"+be.name("life")+"$"), mvMain, nil)
		if len(list(plain.JSON, "servers")) != 0 {
			t.Errorf("the plain list still shows the deleted server: %s", plain.Body)
		}
		gc, err := servers.List(at(c, mvMain), servers.ListOpts{ChangesSince: since}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		all, err := servers.ExtractServers(gc)
		if err != nil {
			t.Fatalf("gophercloud cannot decode a DELETED server: %v", err)
		}
		if !slices.ContainsFunc(all, func(s servers.Server) bool { return s.ID == id && s.Status == "DELETED" }) {
			t.Errorf("gophercloud changes-since list lacks the DELETED server")
		}
	})

	t.Run("instance actions after delete", func(t *testing.T) {
		r := raw(t, c, "GET", "servers/"+id+"/os-instance-actions", "2.21", nil)
		if r.Code != 200 {
			t.Fatalf("actions of a deleted server at 2.21: %s", r)
		}
		acts := list(r.JSON, "instanceActions")
		if len(acts) != 6 || str(acts[0].(map[string]any), "action") != "delete" {
			t.Fatalf("actions after delete: %s", r.Body)
		}
		r = raw(t, c, "GET", "servers/"+id+"/os-instance-actions", mvMain, nil)
		if r.Code != 200 {
			t.Fatalf("actions of a deleted server at %s: %s", mvMain, r)
		}
		del := list(r.JSON, "instanceActions")[0].(map[string]any)
		checkAction(t, "delete action", del, false, false)
		d := raw(t, c, "GET", "servers/"+id+"/os-instance-actions/"+str(del, "request_id"), mvMain, nil)
		if d.Code != 200 {
			t.Fatalf("delete action detail: %s", d)
		}
		checkAction(t, "delete action detail", obj(d.JSON, "instanceAction"), true, false)
		old := raw(t, c, "GET", "servers/"+id+"/os-instance-actions", "2.20", nil)
		checkFault(t, "actions of a deleted server at 2.20", old, 404, "itemNotFound", regexp.MustCompile(`^Instance `+id+` could not be found\.$`))
	})
}

// TestServerBodies reads the shared server: its key set at 2.60 for a
// member and for an admin, through the show and the list, and the create
// action's shape.
func TestServerBodies(t *testing.T) {
	t.Parallel()
	id := sharedServer(t)
	c := be.demo.compute

	sv := getServer(t, c, id, mvMain)
	checkServerBody(t, "server show", sv, false)
	if _, ok := sv["security_groups"]; ok {
		t.Errorf("a server without ports shows security_groups")
	}
	if str(obj(sv, "flavor"), "original_name") != flavorName {
		t.Errorf("flavor at 2.60 (>=2.47): %v", sv["flavor"])
	}
	r := raw(t, c, "GET", "servers/detail?name="+url.QueryEscape("^"+be.name("shared")+"$"), mvMain, nil)
	if l := list(r.JSON, "servers"); len(l) != 1 {
		t.Fatalf("detail list by name: %s", r.Body)
	} else {
		checkServerBody(t, "server in detail list", l[0].(map[string]any), false)
	}
	checkKeys(t, "detail list", r.JSON, []string{"servers"}, nil)
	r = raw(t, c, "GET", "servers?name="+url.QueryEscape("^"+be.name("shared")+"$"), mvMain, nil)
	if l := list(r.JSON, "servers"); len(l) != 1 {
		t.Fatalf("list by name: %s", r.Body)
	} else {
		checkKeys(t, "server in list", l[0].(map[string]any), []string{"id", "name", "links"}, nil)
	}
	if got, err := servers.Get(testCtx(t), at(c, mvMain), id).Extract(); err != nil || got.ID != id || got.Updated.IsZero() {
		t.Errorf("gophercloud Get: %+v, %v", got, err)
	}

	r = raw(t, c, "GET", "servers/"+id+"/os-instance-actions", mvMain, nil)
	acts := list(r.JSON, "instanceActions")
	if len(acts) == 0 {
		t.Fatalf("no actions: %s", r)
	}
	create := acts[len(acts)-1].(map[string]any)
	d := raw(t, c, "GET", "servers/"+id+"/os-instance-actions/"+str(create, "request_id"), mvMain, nil)
	a := obj(d.JSON, "instanceAction")
	checkAction(t, "create action", a, true, false)
	var events []string
	for _, e := range list(a, "events") {
		ev := e.(map[string]any)
		events = append(events, str(ev, "event"))
		if str(ev, "result") != "Success" {
			t.Errorf("event %v", ev)
		}
	}
	if !slices.Equal(events, []string{"compute__do_build_and_run_instance"}) {
		t.Errorf("events of a successful create: %v", events)
	}

	if be.admin == nil {
		t.Log("no admin cloud: skipping the admin view")
		return
	}
	asv := getServer(t, be.admin.compute, id, mvMain)
	checkServerBody(t, "admin server show", asv, true)
	ad := raw(t, be.admin.compute, "GET", "servers/"+id+"/os-instance-actions/"+str(create, "request_id"), mvMain, nil)
	checkAction(t, "admin create action", obj(ad.JSON, "instanceAction"), true, true)
}

// TestFailedBuild: a build that fails ends in ERROR with a fault, while the
// create action still says nothing failed.
func TestFailedBuild(t *testing.T) {
	t.Parallel()
	c := be.demo.compute
	id, _ := createServer(t, be.failBuildName(), nil)
	sv, seen := waitServer(t, id, func(s serverState) bool { return s.Status == "ERROR" })
	walk := buildWalk()
	walk[serverState{"ERROR", "", "error"}] = true
	delete(walk, serverState{"ACTIVE", "", "active"})
	checkWalk(t, "failed build", seen, walk)
	checkServerBody(t, "ERROR server", sv, false)
	f := obj(sv, "fault")
	checkKeys(t, "fault", f, []string{"code", "created", "message"}, nil)
	if f["code"] != float64(500) || !strings.HasPrefix(str(f, "message"), "Build of instance "+id+" aborted: ") {
		t.Errorf("fault %v, want code 500 and Build of instance %s aborted: <reason>", f, id)
	}

	r := raw(t, c, "GET", "servers/"+id+"/os-instance-actions", mvMain, nil)
	acts := list(r.JSON, "instanceActions")
	if len(acts) != 1 {
		t.Fatalf("actions of a failed build: %s", r.Body)
	}
	a := acts[0].(map[string]any)
	d := raw(t, c, "GET", "servers/"+id+"/os-instance-actions/"+str(a, "request_id"), mvMain, nil)
	da := obj(d.JSON, "instanceAction")
	checkAction(t, "failed create action", da, true, false)
	if str(da, "action") != "create" || da["message"] != nil {
		t.Errorf("failed create action: action %q message %v", str(da, "action"), da["message"])
	}
	events := list(da, "events")
	if len(events) != 1 || str(events[0].(map[string]any), "event") != "compute__do_build_and_run_instance" ||
		str(events[0].(map[string]any), "result") != "Success" {
		t.Errorf("failed create events %v: want one compute__do_build_and_run_instance, Success", events)
	}
	t.Logf("fault message on %s: %s; events %v", be.label(), str(f, "message"), list(da, "events"))

	if be.admin != nil {
		af := obj(getServer(t, be.admin.compute, id, mvMain), "fault")
		checkKeys(t, "admin fault", af, []string{"code", "created", "message", "details"}, nil)
	}
}

// TestServerPagination: limit/marker paging over three servers, with
// servers_links only on full pages and an empty page after a full last one.
func TestServerPagination(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := be.demo.compute
	base := be.name("page")
	_, _ = createServer(t, base, map[string]any{"min_count": 3, "max_count": 3})
	filter := "name=" + url.QueryEscape("^"+base+"-")
	// Page only once all three are ACTIVE: while servers move from
	// Nova's build requests to their cell, marker paging repeats and skips
	// servers (see cloudsim's build-request model), on a real Nova too.
	ids := waitAllActive(t, filter, 3)

	for _, limit := range []int{1, 2} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			next := fmt.Sprintf("servers/detail?%s&limit=%d", filter, limit)
			var got []string
			var sizes []int
			for page := 0; next != "" && page < 6; page++ {
				r := raw(t, c, "GET", next, mvMain, nil)
				if r.Code != 200 {
					t.Fatalf("page %d: %s", page, r)
				}
				l := list(r.JSON, "servers")
				sizes = append(sizes, len(l))
				for _, s := range l {
					got = append(got, str(s.(map[string]any), "id"))
				}
				next = ""
				links := list(r.JSON, "servers_links")
				if len(l) == limit {
					if len(links) != 1 || str(links[0].(map[string]any), "rel") != "next" {
						t.Fatalf("full page %d without a next link: %s", page, r.Body)
					}
					next = str(links[0].(map[string]any), "href")
					u, _ := url.Parse(next)
					if u.Query().Get("marker") != got[len(got)-1] || u.Query().Get("name") == "" {
						t.Errorf("next link %s: want the last id as marker and the name filter kept", next)
					}
				} else if _, ok := r.JSON["servers_links"]; ok {
					t.Errorf("short page %d has servers_links: %s", page, r.Body)
				}
			}
			want := map[int][]int{1: {1, 1, 1, 0}, 2: {2, 1}}[limit]
			if !slices.Equal(sizes, want) {
				t.Errorf("page sizes %v, want %v", sizes, want)
			}
			if !sameSet(got, ids) {
				t.Errorf("paged ids %v, want %v", got, ids)
			}
		})
	}

	t.Run("gophercloud pager", func(t *testing.T) {
		pages := 0
		var got []string
		err := servers.List(at(c, mvMain), servers.ListOpts{Name: "^" + base + "-", Limit: 1}).EachPage(ctx,
			func(_ context.Context, p pagination.Page) (bool, error) {
				pages++
				svs, err := servers.ExtractServers(p)
				for _, s := range svs {
					got = append(got, s.ID)
				}
				return true, err
			})
		if err != nil || !sameSet(got, ids) || pages != 3 {
			t.Errorf("gophercloud pager: %d pages, %v, %v", pages, got, err)
		}
	})

	t.Run("unknown marker", func(t *testing.T) {
		r := raw(t, c, "GET", "servers?limit=1&marker=no-such-server", mvMain, nil)
		checkFault(t, "unknown marker", r, 400, "badRequest", regexp.MustCompile(`^marker \[no-such-server\] not found$`))
	})
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// waitAllActive waits until the detail list with filter shows want
// servers, every one ACTIVE with no task, registers their deletion and
// returns their ids.
func waitAllActive(t *testing.T, filter string, want int) []string {
	t.Helper()
	var ids []string
	registered := map[string]bool{}
	poll(t, fmt.Sprintf("%d servers ACTIVE", want), func() (bool, error) {
		r := raw(t, be.demo.compute, "GET", "servers/detail?"+filter, mvMain, nil)
		if r.Code != 200 {
			return false, fmt.Errorf("list: %s", r)
		}
		ids = ids[:0]
		idle := 0
		for _, s := range list(r.JSON, "servers") {
			m := s.(map[string]any)
			id := str(m, "id")
			ids = append(ids, id)
			if !registered[id] {
				registered[id] = true
				t.Cleanup(func() { deleteServer(id) })
			}
			if st := stateOf(m); st.Status == "ERROR" {
				return false, fmt.Errorf("server %s went to ERROR", id)
			} else if activeIdle(st) {
				idle++
			}
		}
		return len(ids) == want && idle == want, nil
	})
	return ids
}
