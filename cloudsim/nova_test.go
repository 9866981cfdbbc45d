package cloudsim_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/instanceactions"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"

	"github.com/ostask/ostask/cloudsim"
)

func TestNovaVersionDocuments(t *testing.T) {
	e := newNovaEnv(t, nil)
	r := e.do("GET", "/compute/", "", "", nil)
	if r.code != 200 {
		t.Fatalf("GET /compute/: %d %s", r.code, r.text)
	}
	vals, _ := r.body["versions"].([]any)
	found := false
	for _, v := range vals {
		m := v.(map[string]any)
		if m["id"] == "v2.1" {
			found = m["version"] == "2.100" && m["min_version"] == "2.1" && m["status"] == "CURRENT"
		}
	}
	if !found {
		t.Fatalf("no v2.1 entry with version 2.100: %s", r.text)
	}
	for _, p := range []string{"/compute/v2.1/", "/compute/v2.1"} {
		r = e.do("GET", p, "", "", nil)
		v, _ := r.body["version"].(map[string]any)
		if r.code != 200 || v["version"] != "2.100" || v["min_version"] != "2.1" {
			t.Fatalf("GET %s: %d %s", p, r.code, r.text)
		}
	}
}

func TestNovaMicroversionNegotiation(t *testing.T) {
	e := newNovaEnv(t, nil)
	for _, mv := range []string{"2.101", "1.5"} {
		r := e.do("GET", "/compute/v2.1/servers", e.demoTok, mv, nil)
		if r.code != http.StatusNotAcceptable {
			t.Errorf("microversion %s: %d, want 406", mv, r.code)
		}
		_, err := servers.Get(e.ctx, at(e.demo, mv), "x").Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusNotAcceptable) {
			t.Errorf("gophercloud at %s: %v, want 406", mv, err)
		}
	}
	r := e.do("GET", "/compute/v2.1/servers", e.demoTok, "2.100", nil)
	if r.code != 200 || r.header.Get("X-OpenStack-Nova-API-Version") != "2.100" || r.header.Get("OpenStack-API-Version") != "compute 2.100" {
		t.Fatalf("2.100: %d %v", r.code, r.header)
	}
	r = e.do("GET", "/compute/v2.1/servers", e.demoTok, "", nil)
	if r.header.Get("X-OpenStack-Nova-API-Version") != "2.1" {
		t.Fatalf("default microversion: %v", r.header)
	}
}

func TestNovaFlavors(t *testing.T) {
	e := newNovaEnv(t, nil)
	pages, err := flavors.ListDetail(e.demo, nil).AllPages(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := flavors.ExtractFlavors(pages)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]flavors.Flavor{}
	zero := false
	for _, f := range all {
		ids[f.ID] = f
		zero = zero || f.Disk == 0
	}
	for _, id := range []string{"1", "2", "3", "4", "5"} {
		if !strings.HasPrefix(ids[id].Name, "m1.") {
			t.Errorf("flavor %s: %+v", id, ids[id])
		}
	}
	if !zero {
		t.Error("no zero-disk flavor")
	}
	f, err := flavors.Get(e.ctx, e.demo, "2").Extract()
	if err != nil || f.Name != "m1.small" || f.RAM != 2048 {
		t.Fatalf("get 2: %+v %v", f, err)
	}
	_, err = flavors.Get(e.ctx, e.demo, "99").Extract()
	if !gophercloud.ResponseCodeIs(err, 404) || !strings.Contains(err.Error(), "Flavor 99 could not be found.") {
		t.Fatalf("get 99: %v", err)
	}
	r := e.do("GET", "/compute/v2.1/flavors?limit=2", e.demoTok, "", nil)
	if fl := r.body["flavors"].([]any); len(fl) != 2 || r.body["flavors_links"] == nil {
		t.Fatalf("flavors limit 2: %s", r.text)
	}
}

func TestNovaBuildWalkAndServerView(t *testing.T) {
	e := newNovaEnv(t, nil)
	desc := "web tier"
	_ = desc
	r := e.do("POST", "/compute/v2.1/servers", e.demoTok, "2.52", map[string]any{"server": map[string]any{
		"name": "web-1", "imageRef": e.defaultImage, "flavorRef": "1", "networks": "auto",
		"metadata": map[string]string{"role": "web"}, "tags": []string{"blue"}, "description": desc}})
	if r.code != 202 {
		t.Fatalf("create: %d %s", r.code, r.text)
	}
	srv := r.body["server"].(map[string]any)
	id := srv["id"].(string)
	if _, has := srv["status"]; has || srv["adminPass"] == "" || !strings.HasSuffix(r.header.Get("Location"), "/servers/"+id) {
		t.Fatalf("create body/headers: %s %v", r.text, r.header)
	}
	walk := []struct{ status, task string }{
		{"BUILD", "scheduling"}, {"BUILD", "networking"}, {"BUILD", "block_device_mapping"},
		{"BUILD", "block_device_mapping"}, {"BUILD", "spawning"}, {"ACTIVE", ""},
	}
	for i, w := range walk {
		if i > 0 {
			e.tick(time.Second)
		}
		e.wantState(id, w.status, w.task)
	}
	got := e.get(id)
	if got.PowerState != servers.RUNNING || got.HostID == "" || got.Metadata["role"] != "web" || got.LaunchedAt.IsZero() {
		t.Fatalf("active server: %+v", got)
	}
	if got.Tags == nil || len(*got.Tags) != 1 {
		t.Fatalf("tags: %v", got.Tags)
	}
	if got.Image["id"] != e.defaultImage {
		t.Fatalf("image: %v", got.Image)
	}
	if len(got.Addresses) == 0 {
		t.Fatal("no addresses")
	}
	// The raw view: second-precision Z times, flavor dict at 2.47+,
	// description at 2.19+, no fault while ACTIVE, admin attributes.
	r = e.do("GET", "/compute/v2.1/servers/"+id, e.adminTok, "2.100", nil)
	sv := r.body["server"].(map[string]any)
	if u := sv["updated"].(string); len(u) != len("2026-03-01T12:00:05Z") || !strings.HasSuffix(u, "Z") {
		t.Errorf("updated %q", u)
	}
	if la := sv["OS-SRV-USG:launched_at"].(string); strings.HasSuffix(la, "Z") || !strings.Contains(la, ".") {
		t.Errorf("launched_at %q", la)
	}
	if fl, ok := sv["flavor"].(map[string]any); !ok || fl["original_name"] != "m1.tiny" {
		t.Errorf("flavor at 2.100: %v", sv["flavor"])
	}
	if sv["description"] != desc || sv["OS-EXT-SRV-ATTR:host"] == nil || sv["locked"] != false {
		t.Errorf("view: %v", sv)
	}
	if _, has := sv["fault"]; has {
		t.Error("fault on an ACTIVE server")
	}
	if _, has := sv["progress"]; !has {
		t.Error("no progress on ACTIVE")
	}
	r = e.do("GET", "/compute/v2.1/servers/"+id, e.demoTok, "2.1", nil)
	sv = r.body["server"].(map[string]any)
	if fl := sv["flavor"].(map[string]any); fl["id"] != "1" {
		t.Errorf("flavor at 2.1: %v", fl)
	}
	for _, k := range []string{"description", "tags", "locked", "OS-EXT-SRV-ATTR:host"} {
		if _, has := sv[k]; has {
			t.Errorf("%s shown at 2.1 to a member", k)
		}
	}
	// networks "none" leaves addresses empty.
	none, err := servers.Create(e.ctx, at(e.demo, "2.37"), servers.CreateOpts{Name: "isolated", ImageRef: e.defaultImage,
		FlavorRef: "1", Networks: "none"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	e.settle()
	if got := e.get(none.ID); len(got.Addresses) != 0 || got.Status != "ACTIVE" {
		t.Fatalf("networks none: %+v", got)
	}
}

func TestNovaCreateValidation(t *testing.T) {
	e := newNovaEnv(t, nil)
	bad := "99999999-9999-4999-8999-999999999999"
	srv := func(kv ...any) map[string]any {
		m := map[string]any{"name": "v", "imageRef": e.defaultImage, "flavorRef": "1", "networks": "auto"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
				continue
			}
			m[kv[i].(string)] = kv[i+1]
		}
		return map[string]any{"server": m}
	}
	for _, tc := range []struct {
		name string
		mv   string
		body any
		code int
		msg  string
	}{
		{"malformed", "2.37", `{"server": {`, 400, "Malformed request body"},
		{"not an object", "2.37", `[1,2]`, 400, "Malformed request body"},
		{"no server", "2.37", map[string]any{"x": 1}, 400, "'server' is a required property"},
		{"missing networks at 2.37", "2.37", srv("networks", nil), 400, "'networks' is a required property"},
		{"networks optional at 2.36", "2.36", srv("networks", nil), 202, ""},
		{"bad network uuid", "2.37", srv("networks", []any{map[string]any{"uuid": "nope"}}), 400, "Invalid input for field/attribute uuid. Value: nope. 'nope' is not a 'uuid'"},
		{"bad networks string", "2.37", srv("networks", "some"), 400, "Invalid input for field/attribute networks"},
		{"network list", "2.37", srv("networks", []any{map[string]any{"uuid": bad}}), 202, ""},
		{"unknown flavor", "2.37", srv("flavorRef", "99"), 400, "Flavor 99 could not be found."},
		{"integer flavor", "2.37", srv("flavorRef", 2), 202, ""},
		{"unknown image", "2.37", srv("imageRef", bad), 400, "Can not find requested image"},
		{"bad imageRef", "2.37", srv("imageRef", "nope"), 400, "Invalid imageRef provided."},
		{"no imageRef", "2.37", srv("imageRef", nil), 400, "Missing imageRef attribute"},
		{"missing name", "2.37", srv("name", nil), 400, "'name' is a required property"},
		{"wrong-typed name", "2.37", srv("name", 12), 400, "is not of type 'string'"},
		{"wrong-typed metadata", "2.37", srv("metadata", map[string]any{"a": 1}), 400, "is not of type 'string'"},
		{"tags before 2.52", "2.51", srv("tags", []string{"a"}), 400, "Additional properties are not allowed ('tags' was unexpected)"},
		{"unknown property", "2.37", srv("bogus", 1), 400, "Additional properties are not allowed ('bogus' was unexpected)"},
		{"zero disk flavor", "2.37", srv("flavorRef", "6"), 403, "Only volume-backed servers are allowed for flavors with zero disk."},
		{"bad az", "2.37", srv("availability_zone", "moon"), 400, "availability zone"},
		{"bdm unknown volume", "2.37", srv("imageRef", nil, "block_device_mapping_v2", []any{map[string]any{"source_type": "volume",
			"destination_type": "volume", "uuid": bad, "boot_index": 0}}), 400, "failed to get volume " + bad},
		{"bdm image without size", "2.37", srv("imageRef", nil, "block_device_mapping_v2", []any{map[string]any{"source_type": "image",
			"destination_type": "volume", "uuid": e.defaultImage, "boot_index": 0}}), 400, "non-zero size"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/compute/v2.1/servers", e.demoTok, tc.mv, tc.body)
			if r.code != tc.code {
				t.Fatalf("%d %s, want %d", r.code, r.text, tc.code)
			}
			if tc.msg != "" && !strings.Contains(r.errMessage(), tc.msg) {
				t.Fatalf("message %q, want %q", r.errMessage(), tc.msg)
			}
			if tc.code >= 400 && r.body["badRequest"] == nil && tc.code == 400 {
				t.Fatalf("fault name: %s", r.text)
			}
		})
	}
	r := e.do("GET", "/compute/v2.1/servers/"+"99999999-9999-4999-8999-999999999999", e.demoTok, "", nil)
	if r.code != 404 || r.errMessage() != "Instance 99999999-9999-4999-8999-999999999999 could not be found." || r.body["itemNotFound"] == nil {
		t.Fatalf("get unknown: %d %s", r.code, r.text)
	}
}

func TestNovaPaginationAndFilters(t *testing.T) {
	e := newNovaEnv(t, nil)
	var ids []string
	for i := 0; i < 25; i++ {
		ids = append(ids, e.create(fmt.Sprintf("pg-%02d", i)))
	}
	e.settle()
	requests := 0
	seen := map[string]bool{}
	var order []string
	pages, err := servers.List(e.demo, servers.ListOpts{Limit: 10}).AllPages(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, err := servers.ExtractServers(pages)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range all {
		if seen[s.ID] {
			t.Fatalf("duplicate %s", s.ID)
		}
		seen[s.ID] = true
		order = append(order, s.ID)
	}
	if len(all) != 25 {
		t.Fatalf("got %d servers, want 25", len(all))
	}
	// newest first
	if order[0] != ids[24] || order[24] != ids[0] {
		t.Fatal("not sorted by created_at desc")
	}
	requests = int(e.sim.Counters().Get("GET", "/compute/v2.1/servers/detail"))
	if requests < 3 {
		t.Fatalf("%d page requests, want >= 3", requests)
	}
	// servers_links only on full pages.
	r := e.do("GET", "/compute/v2.1/servers/detail?limit=5&marker="+ids[5], e.demoTok, "", nil)
	if n := len(r.body["servers"].([]any)); n != 5 || r.body["servers_links"] == nil {
		t.Fatalf("page after marker: %d, links %v", n, r.body["servers_links"])
	}
	link := r.body["servers_links"].([]any)[0].(map[string]any)["href"].(string)
	if !strings.Contains(link, "/servers/detail?") || !strings.Contains(link, "marker="+ids[0]) || !strings.Contains(link, "limit=5") {
		t.Fatalf("next link %s", link)
	}
	r = e.do("GET", "/compute/v2.1/servers/detail?limit=5&marker="+ids[0], e.demoTok, "", nil)
	if n := len(r.body["servers"].([]any)); n != 0 || r.body["servers_links"] != nil {
		t.Fatalf("after the oldest: %s", r.text)
	}
	r = e.do("GET", "/compute/v2.1/servers/detail?limit=30", e.demoTok, "", nil)
	if r.body["servers_links"] != nil {
		t.Fatal("links on a short page")
	}
	r = e.do("GET", "/compute/v2.1/servers?marker=nope", e.demoTok, "", nil)
	if r.code != 400 || r.errMessage() != "marker [nope] not found" {
		t.Fatalf("unknown marker: %d %s", r.code, r.text)
	}
	for _, q := range []string{"limit=-1", "limit=x"} {
		if r = e.do("GET", "/compute/v2.1/servers?"+q, e.demoTok, "", nil); r.code != 400 {
			t.Errorf("%s: %d", q, r.code)
		}
	}
	// A marker deleted between pages still works.
	if err := servers.Delete(e.ctx, e.demo, ids[10]).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.settle()
	r = e.do("GET", "/compute/v2.1/servers/detail?limit=3&marker="+ids[10], e.demoTok, "", nil)
	if r.code != 200 || len(r.body["servers"].([]any)) != 3 {
		t.Fatalf("deleted marker: %d %s", r.code, r.text)
	}
	// Filters: name regex, status.
	named, _ := servers.List(e.demo, servers.ListOpts{Name: "pg-0[0-4]"}).AllPages(e.ctx)
	if got, _ := servers.ExtractServers(named); len(got) != 5 {
		t.Fatalf("name regex: %d", len(got))
	}
	st, _ := servers.List(e.demo, servers.ListOpts{Status: "BUILD"}).AllPages(e.ctx)
	if got, _ := servers.ExtractServers(st); len(got) != 0 {
		t.Fatalf("status BUILD: %d", len(got))
	}
	if r = e.do("GET", "/compute/v2.1/servers?status=bogus", e.demoTok, "2.38", nil); r.code != 400 {
		t.Fatalf("bad status at 2.38: %d", r.code)
	}
	if r = e.do("GET", "/compute/v2.1/servers?status=bogus", e.demoTok, "2.37", nil); r.code != 200 || len(r.body["servers"].([]any)) != 0 {
		t.Fatalf("bad status at 2.37: %d %s", r.code, r.text)
	}
	// The admin sees other projects only with all_tenants.
	if r = e.do("GET", "/compute/v2.1/servers", e.adminTok, "", nil); len(r.body["servers"].([]any)) != 0 {
		t.Fatalf("admin without all_tenants sees %d", len(r.body["servers"].([]any)))
	}
	if r = e.do("GET", "/compute/v2.1/servers?all_tenants=1", e.adminTok, "", nil); len(r.body["servers"].([]any)) != 24 {
		t.Fatalf("admin all_tenants sees %d", len(r.body["servers"].([]any)))
	}
}

func TestNovaChangesSinceAndDelete(t *testing.T) {
	e := newNovaEnv(t, nil)
	keep := e.active("keep")
	gone := e.active("gone")
	e.tick(5 * time.Second)
	since := e.clock.Now()
	if err := servers.Delete(e.ctx, e.demo, gone).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.wantState(gone, "ACTIVE", "deleting")
	e.tick(time.Second)
	_, err := servers.Get(e.ctx, e.demo, gone).Extract()
	if !gophercloud.ResponseCodeIs(err, 404) || !strings.Contains(err.Error(), "Instance "+gone+" could not be found.") {
		t.Fatalf("get deleted: %v", err)
	}
	pages, err := servers.List(e.demo, servers.ListOpts{ChangesSince: since.Format(time.RFC3339)}).AllPages(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := servers.ExtractServers(pages)
	if len(got) != 1 || got[0].ID != gone || got[0].Status != "DELETED" || got[0].VmState != "deleted" {
		t.Fatalf("changes-since: %+v", got)
	}
	// Inclusive: since == updated matches.
	r := e.do("GET", "/compute/v2.1/servers/detail?changes-since="+got[0].Updated.Format(time.RFC3339), e.demoTok, "", nil)
	if len(r.body["servers"].([]any)) != 1 {
		t.Fatalf("inclusive changes-since: %s", r.text)
	}
	// Plain lists hide it.
	all, _ := servers.List(e.demo, nil).AllPages(e.ctx)
	if list, _ := servers.ExtractServers(all); len(list) != 1 || list[0].ID != keep {
		t.Fatalf("plain list: %+v", list)
	}
	// changes-before (2.66+) and its ordering rule.
	q := "changes-since=" + since.Format(time.RFC3339) + "&changes-before=" + since.Add(-time.Second).Format(time.RFC3339)
	if r = e.do("GET", "/compute/v2.1/servers/detail?"+q, e.demoTok, "2.66", nil); r.code != 400 {
		t.Fatalf("changes-before < changes-since: %d", r.code)
	}
	q = "changes-before=" + since.Add(-time.Second).Format(time.RFC3339)
	r = e.do("GET", "/compute/v2.1/servers/detail?"+q, e.demoTok, "2.66", nil)
	if n := len(r.body["servers"].([]any)); n != 1 {
		t.Fatalf("changes-before: %d servers: %s", n, r.text)
	}
	if r = e.do("GET", "/compute/v2.1/servers?changes-since=notatime", e.demoTok, "", nil); r.code != 400 {
		t.Fatalf("bad changes-since: %d", r.code)
	}
	// Delete is allowed during a build, and in ERROR.
	b := e.create("short-lived")
	if err := servers.Delete(e.ctx, e.demo, b).ExtractErr(); err != nil {
		t.Fatalf("delete during build: %v", err)
	}
	e.settle()
	if _, err := servers.Get(e.ctx, e.demo, b).Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("build deleted: %v", err)
	}
	// Actions of a deleted server: 404 before 2.21, listed after.
	if _, err := instanceactions.List(at(e.demo, "2.20"), gone, nil).AllPages(e.ctx); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("actions of deleted at 2.20: %v", err)
	}
	ap, err := instanceactions.List(at(e.demo, "2.21"), gone, nil).AllPages(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	acts, _ := instanceactions.ExtractInstanceActions(ap)
	if len(acts) != 2 || acts[0].Action != "delete" || acts[1].Action != "create" {
		t.Fatalf("actions: %+v", acts)
	}
	// The purge after DeletedRetention forgets it.
	e.tick(25 * time.Hour)
	e.demo, e.demoTok = computeClient(t, e.sim, "demo", "demo")
	if _, err := instanceactions.List(at(e.demo, "2.21"), gone, nil).AllPages(e.ctx); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("actions after purge: %v", err)
	}
}

func TestNovaActionWalks(t *testing.T) {
	e := newNovaEnv(t, nil)
	id := e.active("walker")
	c := e.demo
	type stateSeq []struct{ status, task string }
	walk := func(name string, d time.Duration, seq stateSeq) {
		t.Helper()
		for i, w := range seq {
			if i > 0 {
				e.tick(d)
			}
			if st, ts := e.state(id); st != w.status || ts != w.task {
				t.Fatalf("%s step %d: %s/%q, want %s/%q", name, i, st, ts, w.status, w.task)
			}
		}
	}
	// soft reboot: each of the three task states lasts Reboot/3.
	if err := servers.Reboot(e.ctx, c, id, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	walk("soft reboot", 400*time.Millisecond, stateSeq{{"REBOOT", "rebooting"}, {"REBOOT", "reboot_pending"}, {"REBOOT", "reboot_started"}, {"ACTIVE", ""}})
	if err := servers.Reboot(e.ctx, c, id, servers.RebootOpts{Type: servers.HardReboot}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	// 409 while a task_state is set, in Nova's words.
	err := servers.Resize(e.ctx, c, id, servers.ResizeOpts{FlavorRef: "2"}).ExtractErr()
	want := fmt.Sprintf("Cannot 'resize' instance %s while it is in task_state rebooting_hard", id)
	if !gophercloud.ResponseCodeIs(err, 409) || !strings.Contains(err.Error(), want) {
		t.Fatalf("resize during reboot: %v", err)
	}
	walk("hard reboot", 400*time.Millisecond, stateSeq{{"HARD_REBOOT", "rebooting_hard"}, {"HARD_REBOOT", "reboot_pending_hard"}, {"HARD_REBOOT", "reboot_started_hard"}, {"ACTIVE", ""}})
	// stop/start: status stays ACTIVE (SHUTOFF) while powering-off (on).
	if err := servers.Stop(e.ctx, c, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	walk("stop", time.Second, stateSeq{{"ACTIVE", "powering-off"}, {"SHUTOFF", ""}})
	if e.get(id).PowerState != servers.SHUTDOWN {
		t.Fatal("power state after stop")
	}
	err = servers.Stop(e.ctx, c, id).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, 409) || !strings.Contains(err.Error(), "Cannot 'stop' instance "+id+" while it is in vm_state stopped") {
		t.Fatalf("stop when stopped: %v", err)
	}
	if err := servers.Start(e.ctx, c, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	walk("start", time.Second, stateSeq{{"SHUTOFF", "powering-on"}, {"ACTIVE", ""}})
	// resize → VERIFY_RESIZE → confirm (204, asynchronous).
	if err := servers.Resize(e.ctx, c, id, servers.ResizeOpts{FlavorRef: "2"}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	walk("resize", time.Second, stateSeq{{"RESIZE", "resize_prep"}, {"RESIZE", "resize_migrating"}, {"RESIZE", "resize_migrated"}, {"RESIZE", "resize_finish"}, {"VERIFY_RESIZE", ""}})
	if fl := e.get(id).Flavor; fl["original_name"] != "m1.small" {
		t.Fatalf("flavor after resize: %v", fl)
	}
	res := servers.ConfirmResize(e.ctx, c, id)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	walk("confirm", time.Second, stateSeq{{"VERIFY_RESIZE", ""}, {"ACTIVE", ""}})
	err = servers.ConfirmResize(e.ctx, c, id).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, 409) {
		t.Fatalf("confirm when active: %v", err)
	}
	// resize → revert: back to the old flavor.
	if err := servers.Resize(e.ctx, c, id, servers.ResizeOpts{FlavorRef: "3"}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.settle()
	if err := servers.RevertResize(e.ctx, c, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	walk("revert", time.Second, stateSeq{{"REVERT_RESIZE", "resize_reverting"}, {"ACTIVE", ""}})
	if fl := e.get(id).Flavor; fl["original_name"] != "m1.small" {
		t.Fatalf("flavor after revert: %v", fl)
	}
	if err := servers.Resize(e.ctx, c, id, servers.ResizeOpts{FlavorRef: "2"}).ExtractErr(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("resize to the same flavor: %v", err)
	}
	// migrate is admin-only and ends in VERIFY_RESIZE.
	if err := servers.Migrate(e.ctx, c, id).ExtractErr(); !gophercloud.ResponseCodeIs(err, 403) {
		t.Fatalf("member migrate: %v", err)
	}
	before := e.get(id).Host
	if err := servers.Migrate(e.ctx, e.admin, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	walk("migrate", time.Second, stateSeq{{"RESIZE", "resize_prep"}, {"RESIZE", "resize_migrating"}, {"RESIZE", "resize_migrated"}, {"RESIZE", "resize_finish"}, {"VERIFY_RESIZE", ""}})
	if after := e.get(id).Host; after == before {
		t.Fatalf("migrate kept host %s", after)
	}
	if err := servers.ConfirmResize(e.ctx, c, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.settle()
	// live migration (2.25+: block_migration "auto" is required).
	if r := e.do("POST", "/compute/v2.1/servers/"+id+"/action", e.adminTok, "2.25", map[string]any{"os-migrateLive": map[string]any{"host": nil}}); r.code != 400 {
		t.Fatalf("live migrate without block_migration: %d", r.code)
	}
	r := e.do("POST", "/compute/v2.1/servers/"+id+"/action", e.adminTok, "2.25", map[string]any{"os-migrateLive": map[string]any{"host": nil, "block_migration": "auto"}})
	if r.code != 202 {
		t.Fatalf("live migrate: %d %s", r.code, r.text)
	}
	walk("live-migrate", time.Second, stateSeq{{"MIGRATING", "migrating"}, {"ACTIVE", ""}})
	// unknown action
	if r = e.do("POST", "/compute/v2.1/servers/"+id+"/action", e.demoTok, "", map[string]any{"fly": nil}); r.code != 400 || r.errMessage() != "There is no such action: fly" {
		t.Fatalf("unknown action: %d %s", r.code, r.text)
	}
	// instance actions: newest first, each with its request id.
	ap, err := instanceactions.List(at(c, "2.58"), id, nil).AllPages(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	acts, _ := instanceactions.ExtractInstanceActions(ap)
	var names []string
	for _, a := range acts {
		names = append(names, a.Action)
	}
	wantNames := "live-migration confirmResize migrate revertResize resize confirmResize resize start stop reboot reboot create"
	if strings.Join(names, " ") != wantNames {
		t.Fatalf("actions %q\nwant    %q", strings.Join(names, " "), wantNames)
	}
	d, err := instanceactions.Get(e.ctx, at(c, "2.84"), id, acts[len(acts)-1].RequestID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if d.Action != "create" || d.Message != "" || d.Events == nil || len(*d.Events) != 1 || d.UpdatedAt == nil {
		t.Fatalf("create action: %+v", d)
	}
	for _, ev := range *d.Events {
		if ev.Result != "Success" || ev.FinishTime.IsZero() || ev.HostID == nil {
			t.Fatalf("event %+v", ev)
		}
	}
	if _, err := instanceactions.Get(e.ctx, c, id, "req-nope").Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("unknown action: %v", err)
	}
}

func TestNovaRequestIDIsActionRequestID(t *testing.T) {
	e := newNovaEnv(t, nil)
	id := e.active("rid")
	res := servers.Stop(e.ctx, e.demo, id)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	rid := res.Header.Get("X-Openstack-Request-Id")
	if rid == "" || res.Header.Get("X-Compute-Request-Id") != rid {
		t.Fatalf("request id headers: %v", res.Header)
	}
	a, err := instanceactions.Get(e.ctx, e.demo, id, rid).Extract()
	if err != nil || a.Action != "stop" {
		t.Fatalf("action for %s: %+v %v", rid, a, err)
	}
}

func TestNovaCreateImageAndBackup(t *testing.T) {
	e := newNovaEnv(t, nil)
	id := e.active("snapper")
	// Before 2.45: Location header, no body.
	res := servers.CreateImage(e.ctx, at(e.demo, "2.44"), id, servers.CreateImageOpts{Name: "snap-44"})
	img44, err := res.ExtractImageID()
	if err != nil || img44 == "" || !strings.HasSuffix(res.Header.Get("Location"), "/image/images/"+img44) {
		t.Fatalf("2.44: %q %v %v", img44, err, res.Header)
	}
	steps := []struct{ task, image string }{
		{"image_snapshot_pending", "queued"}, {"image_snapshot", "saving"}, {"image_pending_upload", "saving"},
		{"image_uploading", "saving"}, {"", "active"},
	}
	for i, s := range steps {
		if i > 0 {
			e.tick(time.Second)
		}
		e.wantState(id, "ACTIVE", s.task)
		if got := e.image(img44).Status; got != s.image {
			t.Fatalf("step %d: image %s, want %s", i, got, s.image)
		}
	}
	props := e.image(img44).Properties
	if props["image_type"] != "snapshot" || props["instance_uuid"] != id || props["base_image_ref"] != e.defaultImage {
		t.Fatalf("snapshot properties %v", props)
	}
	// From 2.45: {"image_id"} body with Content-Type application/json.
	res = servers.CreateImage(e.ctx, at(e.demo, "2.45"), id, servers.CreateImageOpts{Name: "snap-45"})
	img45, err := res.ExtractImageID()
	if err != nil || img45 == "" || res.Header.Get("Location") != "" || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("2.45: %q %v %v", img45, err, res.Header)
	}
	err = servers.Reboot(e.ctx, e.demo, id, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, 409) || !strings.Contains(err.Error(), "task_state image_snapshot_pending") {
		t.Fatalf("reboot during snapshot: %v", err)
	}
	e.settle()
	// Backups with rotation 2 keep the two newest.
	var backups []string
	for i := 0; i < 3; i++ {
		r := e.do("POST", "/compute/v2.1/servers/"+id+"/action", e.demoTok, "2.45",
			map[string]any{"createBackup": map[string]any{"name": fmt.Sprintf("bk-%d", i), "backup_type": "daily", "rotation": 2}})
		if r.code != 202 {
			t.Fatalf("backup: %d %s", r.code, r.text)
		}
		backups = append(backups, r.body["image_id"].(string))
		e.wantState(id, "ACTIVE", "image_backup")
		e.settle()
	}
	if e.image(backups[0]).Status != "gone" || e.image(backups[1]).Status != "active" || e.image(backups[2]).Properties["image_type"] != "backup" {
		t.Fatalf("rotation: %v %v %v", e.image(backups[0]), e.image(backups[1]), e.image(backups[2]))
	}
	r := e.do("POST", "/compute/v2.1/servers/"+id+"/action", e.demoTok, "2.45", map[string]any{"createBackup": map[string]any{"name": "x"}})
	if r.code != 400 || !strings.Contains(r.errMessage(), "'backup_type' is a required property") {
		t.Fatalf("backup without type: %d %s", r.code, r.text)
	}
}

func TestNovaVolumeAttachDetach(t *testing.T) {
	e := newNovaEnv(t, nil)
	id := e.active("vm")
	vol := e.sim.NovaNewVolumeForTest("data", 1)
	c := at(e.demo, "2.79")
	att, err := volumeattach.Create(e.ctx, c, id, volumeattach.CreateOpts{VolumeID: vol, DeleteOnTermination: true}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if att.VolumeID != vol || att.ServerID != id || att.Device != "/dev/vdb" || att.DeleteOnTermination == nil || !*att.DeleteOnTermination {
		t.Fatalf("attachment %+v", att)
	}
	for i, want := range []string{"reserved", "attaching", "in-use"} {
		if i > 0 {
			e.tick(time.Second)
		}
		if got := e.volume(vol); got.Status != want || len(got.ServerIDs) != 1 || got.ServerIDs[0] != id {
			t.Fatalf("step %d: volume %+v, want %s", i, got, want)
		}
	}
	// Attach at the top of gophercloud's range.
	vol2 := e.sim.NovaNewVolumeForTest("data2", 1)
	if _, err := volumeattach.Create(e.ctx, at(e.demo, "2.100"), id, volumeattach.CreateOpts{VolumeID: vol2}).Extract(); err != nil {
		t.Fatalf("attach at 2.100: %v", err)
	}
	e.settle()
	// The volume is in use now: 409.
	_, err = volumeattach.Create(e.ctx, c, id, volumeattach.CreateOpts{VolumeID: vol2}).Extract()
	if !gophercloud.ResponseCodeIs(err, 400) && !gophercloud.ResponseCodeIs(err, 409) {
		t.Fatalf("attach twice: %v", err)
	}
	other := e.active("other")
	_, err = volumeattach.Create(e.ctx, c, other, volumeattach.CreateOpts{VolumeID: vol2}).Extract()
	if !gophercloud.ResponseCodeIs(err, 409) {
		t.Fatalf("attach an in-use volume: %v", err)
	}
	_, err = volumeattach.Create(e.ctx, c, id, volumeattach.CreateOpts{VolumeID: "99999999-9999-4999-8999-999999999999"}).Extract()
	if !gophercloud.ResponseCodeIs(err, 404) {
		t.Fatalf("attach unknown volume: %v", err)
	}
	// List: id before 2.89, attachment_id/bdm_uuid after.
	r := e.do("GET", "/compute/v2.1/servers/"+id+"/os-volume_attachments", e.demoTok, "2.88", nil)
	if first := r.body["volumeAttachments"].([]any)[0].(map[string]any); first["id"] != vol {
		t.Fatalf("2.88 list: %s", r.text)
	}
	r = e.do("GET", "/compute/v2.1/servers/"+id+"/os-volume_attachments", e.demoTok, "2.89", nil)
	first := r.body["volumeAttachments"].([]any)[0].(map[string]any)
	if _, has := first["id"]; has || first["attachment_id"] == nil || first["bdm_uuid"] == nil {
		t.Fatalf("2.89 list: %s", r.text)
	}
	pages, err := volumeattach.List(c, id).AllPages(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := volumeattach.ExtractVolumeAttachments(pages); len(list) != 2 {
		t.Fatalf("list: %+v", list)
	}
	if got := e.get(id).AttachedVolumes; len(got) != 2 {
		t.Fatalf("volumes_attached %+v", got)
	}
	// Detach: detaching → available.
	if err := volumeattach.Delete(e.ctx, c, id, vol2).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if got := e.volume(vol2).Status; got != "detaching" {
		t.Fatalf("detach: %s", got)
	}
	e.tick(time.Second)
	if got := e.volume(vol2); got.Status != "available" || len(got.ServerIDs) != 0 {
		t.Fatalf("detached: %+v", got)
	}
	// Attach is refused while a task_state is set.
	if err := servers.Stop(e.ctx, e.demo, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	_, err = volumeattach.Create(e.ctx, c, id, volumeattach.CreateOpts{VolumeID: vol2}).Extract()
	if !gophercloud.ResponseCodeIs(err, 409) || !strings.Contains(err.Error(), "Cannot 'attach_volume' instance "+id+" while it is in task_state powering-off") {
		t.Fatalf("attach while powering-off: %v", err)
	}
	e.settle()
	// Deleting the server deletes the delete_on_termination volume.
	if err := servers.Delete(e.ctx, e.demo, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	e.settle()
	if got := e.volume(vol).Status; got != "gone" {
		t.Fatalf("delete_on_termination volume: %s", got)
	}
	ap, _ := instanceactions.List(e.demo, other, nil).AllPages(e.ctx)
	_ = ap
	acts, err := instanceactions.List(at(e.demo, "2.21"), id, nil).AllPages(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	list, _ := instanceactions.ExtractInstanceActions(acts)
	var names []string
	for _, a := range list {
		names = append(names, a.Action)
	}
	if got := strings.Join(names, " "); got != "delete stop detach_volume attach_volume attach_volume create" {
		t.Fatalf("actions %q", got)
	}
}

func TestNovaBootFromVolume(t *testing.T) {
	e := newNovaEnv(t, nil)
	c := at(e.demo, "2.37")
	srv, err := servers.Create(e.ctx, c, servers.CreateOpts{Name: "bfv", FlavorRef: "6", Networks: "auto",
		BlockDevice: []servers.BlockDevice{{SourceType: servers.SourceImage, DestinationType: servers.DestinationVolume,
			UUID: e.defaultImage, VolumeSize: 1, BootIndex: 0, DeleteOnTermination: true}}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	e.tick(time.Second) // networking
	e.tick(time.Second) // block_device_mapping: the volume is created
	got := e.get(srv.ID)
	if got.TaskState != "block_device_mapping" || len(got.AttachedVolumes) != 1 {
		t.Fatalf("bdm step: %+v", got)
	}
	root := got.AttachedVolumes[0].ID
	if s := e.volume(root).Status; s != "creating" {
		t.Fatalf("root volume %s", s)
	}
	e.tick(time.Second)
	if s := e.volume(root).Status; s != "downloading" {
		t.Fatalf("root volume %s", s)
	}
	e.tick(time.Second)
	if s := e.volume(root); s.Status != "in-use" || s.ServerIDs[0] != srv.ID {
		t.Fatalf("root volume %+v", s)
	}
	e.settle()
	got = e.get(srv.ID)
	if got.Status != "ACTIVE" || got.Image != nil {
		t.Fatalf("bfv server: %s image %v", got.Status, got.Image)
	}
	r := e.do("GET", "/compute/v2.1/servers/"+srv.ID, e.demoTok, "", nil)
	if r.body["server"].(map[string]any)["image"] != "" {
		t.Fatalf("image of a bfv server: %v", r.body["server"].(map[string]any)["image"])
	}
	if err := volumeattach.Delete(e.ctx, c, srv.ID, root).ExtractErr(); !gophercloud.ResponseCodeIs(err, 400) {
		t.Fatalf("detach root: %v", err)
	}
	// Boot from an existing volume, kept on delete.
	vol := e.sim.NovaNewVolumeForTest("boot", 1)
	srv2, err := servers.Create(e.ctx, c, servers.CreateOpts{Name: "bfv2", FlavorRef: "6", Networks: "none",
		BlockDevice: []servers.BlockDevice{{SourceType: servers.SourceVolume, DestinationType: servers.DestinationVolume,
			UUID: vol, BootIndex: 0}}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if s := e.volume(vol).Status; s != "reserved" {
		t.Fatalf("existing boot volume %s", s)
	}
	e.settle()
	if s := e.volume(vol).Status; s != "in-use" {
		t.Fatalf("existing boot volume %s", s)
	}
	for _, id := range []string{srv.ID, srv2.ID} {
		if err := servers.Delete(e.ctx, c, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
	e.settle()
	if s := e.volume(root).Status; s != "gone" {
		t.Fatalf("delete_on_termination root: %s", s)
	}
	if s := e.volume(vol).Status; s != "available" {
		t.Fatalf("kept root: %s", s)
	}
}

func TestServerQuota(t *testing.T) {
	ctx := context.Background()
	sim, err := cloudsim.Start(ctx, cloudsim.Config{ServerQuota: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	c, _ := computeClient(t, sim, "demo", "demo")
	c.Microversion = "2.60"
	img := cloudsim.CirrosImageID
	// max_count is trimmed to what fits; min_count must fit.
	if r := servers.Create(ctx, c, servers.CreateOpts{Name: "q", FlavorRef: "1", ImageRef: img, Networks: "none", Min: 1, Max: 1000}, nil); r.Err != nil {
		t.Fatal(r.Err)
	}
	if n := len(sim.Servers(false)); n != 3 {
		t.Fatalf("%d servers, want 3 (the quota)", n)
	}
	err = servers.Create(ctx, c, servers.CreateOpts{Name: "over", FlavorRef: "1", ImageRef: img, Networks: "none"}, nil).Err
	if !gophercloud.ResponseCodeIs(err, 403) || !strings.Contains(err.Error(), "Quota exceeded for instances") {
		t.Fatalf("want 403 quota exceeded, got %v", err)
	}
}
