package conformance_test

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"testing"
)

// typeErrorFault is the message of Nova's computeFault when sorting build
// requests raises TypeError.
var typeErrorFault = regexp.MustCompile(`^Unexpected API Error\. Please report this at http://bugs\.launchpad\.net/nova/ and attach the Nova API log if possible\.\n<class 'TypeError'>$`)

// TestSortWhileScheduling: while two or more of the listed servers are
// still Nova build requests, sorting by updated_at answers 500 (Nova sorts
// build requests in Python and their updated_at is None); sorting by
// created_at answers 200 at the same moment, and updated_at works again
// once the servers are built. The name filter keeps other tests' servers
// out of the count.
func TestSortWhileScheduling(t *testing.T) {
	t.Parallel()
	c := be.demo.compute
	base := be.name("sched")
	_, _ = createServer(t, base, map[string]any{"min_count": 3, "max_count": 3})
	filter := "name=" + url.QueryEscape("^"+base+"-")
	var codes, okCodes []int
	poll(t, "three servers built", func() (bool, error) {
		r := raw(t, c, "GET", "servers/detail?"+filter+"&sort_key=updated_at&sort_dir=asc", mvMain, nil)
		codes = append(codes, r.Code)
		if r.Code == 500 {
			checkFault(t, "sort by updated_at while scheduling", r, 500, "computeFault", typeErrorFault)
		} else if r.Code != 200 {
			return false, fmt.Errorf("sort by updated_at: %s", r)
		}
		for _, q := range []string{"&sort_key=created_at&sort_dir=asc", ""} {
			r := raw(t, c, "GET", "servers/detail?"+filter+q, mvMain, nil)
			okCodes = append(okCodes, r.Code)
			if r.Code != 200 {
				return false, fmt.Errorf("list %q while scheduling: %s", q, r)
			}
		}
		r = raw(t, c, "GET", "servers/detail?"+filter, mvMain, nil)
		idle := 0
		for _, s := range list(r.JSON, "servers") {
			if activeIdle(stateOf(s.(map[string]any))) {
				idle++
			}
		}
		return idle == 3, nil
	})
	waitAllActive(t, filter, 3) // registers the cleanup of all three
	if !slices.Contains(codes, 500) {
		t.Errorf("sort_key=updated_at never answered 500 while the servers were scheduled: %v", codes)
	}
	r := raw(t, c, "GET", "servers/detail?"+filter+"&sort_key=updated_at&sort_dir=asc", mvMain, nil)
	if r.Code != 200 || len(list(r.JSON, "servers")) != 3 {
		t.Errorf("sort by updated_at once built: %s", r)
	}
	t.Logf("%s: updated_at sort codes while building %v; created_at/unsorted codes %v", be.label(), codes, okCodes)
}

// TestMicroversionGatedKeys: OS-EXT-SRV-ATTR:hostname is shown to members
// from 2.90; server_groups (2.71) is in show, not in list entries; an
// instance-action event's details (2.84) are for admins only.
func TestMicroversionGatedKeys(t *testing.T) {
	t.Parallel()
	id := sharedServer(t)
	c := be.demo.compute
	byName := "servers/detail?name=" + url.QueryEscape("^"+be.name("shared")+"$")
	for _, tc := range []struct {
		what, path, mv   string
		hostname, groups bool
	}{
		{"show", "servers/" + id, "2.89", false, true},
		{"show", "servers/" + id, "2.90", true, true},
		{"show", "servers/" + id, "2.70", false, false},
		{"detail", byName, "2.71", false, false},
		{"detail", byName, "2.90", true, false},
	} {
		r := raw(t, c, "GET", tc.path, tc.mv, nil)
		sv := obj(r.JSON, "server")
		if tc.what == "detail" {
			if l := list(r.JSON, "servers"); len(l) == 1 {
				sv = l[0].(map[string]any)
			}
		}
		if sv == nil {
			t.Fatalf("%s at %s: %s", tc.what, tc.mv, r)
		}
		_, hasHost := sv["OS-EXT-SRV-ATTR:hostname"]
		_, hasGroups := sv["server_groups"]
		if hasHost != tc.hostname || hasGroups != tc.groups {
			t.Errorf("member %s at %s: hostname %v server_groups %v, want %v %v", tc.what, tc.mv, hasHost, hasGroups, tc.hostname, tc.groups)
		}
	}

	r := raw(t, c, "GET", "servers/"+id+"/os-instance-actions", "2.84", nil)
	acts := list(r.JSON, "instanceActions")
	if len(acts) == 0 {
		t.Fatalf("no actions: %s", r)
	}
	req := str(acts[len(acts)-1].(map[string]any), "request_id")
	events := func(sess *session) []any {
		d := raw(t, sess.compute, "GET", "servers/"+id+"/os-instance-actions/"+req, "2.84", nil)
		return list(obj(d.JSON, "instanceAction"), "events")
	}
	for _, e := range events(be.demo) {
		checkKeys(t, "member event at 2.84", e.(map[string]any), []string{"event", "start_time", "finish_time", "result", "hostId"}, nil)
	}
	if be.admin == nil {
		return
	}
	for _, e := range events(be.admin) {
		checkKeys(t, "admin event at 2.84", e.(map[string]any),
			[]string{"event", "start_time", "finish_time", "result", "hostId", "host", "traceback", "details"}, nil)
	}
}

// TestFlavorExtraSpecs: the os-extra_specs routes that the openstack CLI's
// flavor list reads, and extra_specs in flavor bodies from 2.61.
func TestFlavorExtraSpecs(t *testing.T) {
	t.Parallel()
	c := be.demo.compute
	r := raw(t, c, "GET", "flavors/"+be.flavorID+"/os-extra_specs", mvMain, nil)
	if r.Code != 200 || r.JSON["extra_specs"] == nil {
		t.Fatalf("os-extra_specs: %s", r)
	}
	checkKeys(t, "os-extra_specs", r.JSON, []string{"extra_specs"}, nil)
	r = raw(t, c, "GET", "flavors/"+be.flavorID+"/os-extra_specs/no-such-key", mvMain, nil)
	checkFault(t, "unknown extra spec", r, 404, "itemNotFound",
		regexp.MustCompile(`^Flavor `+regexp.QuoteMeta(be.flavorID)+` has no extra specs with key no-such-key\.$`))
	for _, mv := range []string{"2.60", "2.61"} {
		r := raw(t, c, "GET", "flavors/"+be.flavorID, mv, nil)
		_, has := obj(r.JSON, "flavor")["extra_specs"]
		if has != (mv == "2.61") {
			t.Errorf("flavor show at %s: extra_specs present %v", mv, has)
		}
	}
}

// TestResizeEvents: a resize's instance action has Nova's five events,
// newest first, each a Success.
func TestResizeEvents(t *testing.T) {
	t.Parallel()
	c := be.demo.compute
	id, _ := createServer(t, be.name("resize"), nil)
	waitServer(t, id, activeIdle)
	r := raw(t, c, "POST", "servers/"+id+"/action", mvMain, map[string]any{"resize": map[string]any{"flavorRef": be.biggerFlavorID}})
	if r.Code != 202 {
		t.Fatalf("resize: %s", r)
	}
	waitServer(t, id, func(s serverState) bool { return s.Status == "VERIFY_RESIZE" && s.Task == "" })
	acts := list(raw(t, c, "GET", "servers/"+id+"/os-instance-actions", mvMain, nil).JSON, "instanceActions")
	if len(acts) == 0 || str(acts[0].(map[string]any), "action") != "resize" {
		t.Fatalf("actions %v", acts)
	}
	d := raw(t, c, "GET", "servers/"+id+"/os-instance-actions/"+str(acts[0].(map[string]any), "request_id"), mvMain, nil)
	var names []string
	for _, e := range list(obj(d.JSON, "instanceAction"), "events") {
		ev := e.(map[string]any)
		names = append(names, str(ev, "event"))
		if str(ev, "result") != "Success" {
			t.Errorf("event %v", ev)
		}
	}
	want := []string{"compute_finish_resize", "compute_resize_instance", "compute_prep_resize", "cold_migrate", "conductor_migrate_server"}
	if !slices.Equal(names, want) {
		t.Errorf("resize events %v, want %v", names, want)
	}
	if r := raw(t, c, "POST", "servers/"+id+"/action", mvMain, map[string]any{"confirmResize": nil}); r.Code != 204 {
		t.Fatalf("confirm: %s", r)
	}
	waitServer(t, id, activeIdle)
}
