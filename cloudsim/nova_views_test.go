package cloudsim_test

import (
	"slices"
	"testing"

	"github.com/ostask/ostask/cloudsim"
)

// Keys that depend on the microversion, the caller and the view, as a Zed
// Nova shows them: OS-EXT-SRV-ATTR:hostname to everyone from 2.90 (to
// admins from 2.3); server_groups from 2.71 in show and update, never in
// list entries.
func TestServerKeysByMicroversionAndView(t *testing.T) {
	e := newNovaEnv(t, nil)
	id := e.active("keys")
	get := func(t *testing.T, view, mv string, admin bool) map[string]any {
		tok, all := e.demoTok, ""
		if admin {
			tok, all = e.adminTok, "?all_tenants=1"
		}
		var r rawResp
		switch view {
		case "show":
			r = e.do("GET", "/compute/v2.1/servers/"+id, tok, mv, nil)
		case "update":
			r = e.do("PUT", "/compute/v2.1/servers/"+id, tok, mv, map[string]any{"server": map[string]any{"name": "keys"}})
		case "detail":
			r = e.do("GET", "/compute/v2.1/servers/detail"+all, tok, mv, nil)
			if r.code == 200 {
				return r.body["servers"].([]any)[0].(map[string]any)
			}
		}
		if r.code != 200 {
			t.Fatalf("%s at %s: %d %s", view, mv, r.code, r.text)
		}
		return r.body["server"].(map[string]any)
	}
	tests := []struct {
		view, mv         string
		admin            bool
		hostname, groups bool
	}{
		{"show", "2.89", false, false, true},
		{"show", "2.90", false, true, true},
		{"show", "2.70", false, false, false},
		{"show", "2.71", false, false, true},
		{"show", "2.3", true, true, false},
		{"update", "2.71", false, false, true},
		{"update", "2.90", false, true, true},
		{"detail", "2.89", false, false, false},
		{"detail", "2.90", false, true, false},
		{"detail", "2.100", true, true, false},
	}
	for _, tc := range tests {
		who := "member"
		if tc.admin {
			who = "admin"
		}
		t.Run(tc.view+" "+tc.mv+" "+who, func(t *testing.T) {
			sv := get(t, tc.view, tc.mv, tc.admin)
			_, hasHost := sv["OS-EXT-SRV-ATTR:hostname"]
			_, hasGroups := sv["server_groups"]
			if hasHost != tc.hostname || hasGroups != tc.groups {
				t.Fatalf("hostname %v server_groups %v, want %v %v", hasHost, hasGroups, tc.hostname, tc.groups)
			}
		})
	}
}

// actionEvents returns the events of the action named action (the newest
// such) as listed: names in order, and each event's keys.
func (e *novaEnv) actionEvents(id, action, tok, mv string) (names []string, results []string, message any, keys [][]string) {
	e.t.Helper()
	r := e.do("GET", "/compute/v2.1/servers/"+id+"/os-instance-actions", tok, mv, nil)
	var req string
	for _, a := range r.body["instanceActions"].([]any) {
		if m := a.(map[string]any); m["action"] == action {
			req = m["request_id"].(string)
			break
		}
	}
	if req == "" {
		e.t.Fatalf("no %s action: %s", action, r.text)
	}
	d := e.do("GET", "/compute/v2.1/servers/"+id+"/os-instance-actions/"+req, tok, mv, nil)
	ia := d.body["instanceAction"].(map[string]any)
	for _, ev := range ia["events"].([]any) {
		m := ev.(map[string]any)
		names = append(names, m["event"].(string))
		res, _ := m["result"].(string)
		results = append(results, res)
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		keys = append(keys, ks)
	}
	return names, results, ia["message"], keys
}

// Instance-action events as a Zed Nova writes them (checked on realstack),
// newest first.
func TestInstanceActionEventsAsNovaWritesThem(t *testing.T) {
	resizeEvents := []string{"compute_finish_resize", "compute_resize_instance", "compute_prep_resize", "cold_migrate", "conductor_migrate_server"}
	e := newNovaEnv(t, nil)
	id := e.active("events")
	act := func(tok, body string) {
		t.Helper()
		if r := e.do("POST", "/compute/v2.1/servers/"+id+"/action", tok, "2.60", body); r.code >= 300 {
			t.Fatalf("%s: %d %s", body, r.code, r.text)
		}
		e.settle()
	}
	act(e.demoTok, `{"resize": {"flavorRef": "2"}}`)
	act(e.demoTok, `{"revertResize": null}`)
	act(e.adminTok, `{"migrate": null}`)
	act(e.demoTok, `{"confirmResize": null}`)
	act(e.demoTok, `{"lock": null}`)
	act(e.demoTok, `{"unlock": null}`)
	act(e.adminTok, `{"os-migrateLive": {"host": null, "block_migration": "auto"}}`)
	tests := []struct {
		action string
		want   []string
	}{
		{"resize", resizeEvents},
		{"migrate", resizeEvents},
		{"revertResize", []string{"compute_finish_revert_resize", "compute_revert_resize"}},
		{"confirmResize", []string{"compute_confirm_resize"}},
		{"lock", []string{"api_lock"}},
		{"unlock", []string{"api_unlock"}},
		{"live-migration", []string{"compute_post_live_migration_at_destination", "compute_live_migration", "compute_pre_live_migration",
			"compute_check_can_live_migrate_source", "compute_check_can_live_migrate_destination", "conductor_live_migrate_instance"}},
		{"create", []string{"compute__do_build_and_run_instance"}},
	}
	for _, tc := range tests {
		t.Run(tc.action, func(t *testing.T) {
			names, results, msg, _ := e.actionEvents(id, tc.action, e.demoTok, "2.60")
			if !slices.Equal(names, tc.want) || msg != nil {
				t.Fatalf("events %v message %v, want %v and null", names, msg, tc.want)
			}
			for i, r := range results {
				if r != "Success" {
					t.Errorf("%s: result %q", names[i], r)
				}
			}
		})
	}
	t.Run("details only for admins at 2.84", func(t *testing.T) {
		for _, c := range []struct {
			tok, who string
			want     []string
		}{
			{e.demoTok, "member", []string{"event", "finish_time", "hostId", "result", "start_time"}},
			{e.adminTok, "admin", []string{"details", "event", "finish_time", "host", "hostId", "result", "start_time", "traceback"}},
		} {
			_, _, _, keys := e.actionEvents(id, "resize", c.tok, "2.84")
			for _, ks := range keys {
				if !slices.Equal(ks, c.want) {
					t.Errorf("%s event keys %v, want %v", c.who, ks, c.want)
				}
			}
		}
	})
}

// A resize the scheduler cannot place rolls back silently; only the
// conductor's events fail, and the action says Error.
func TestResizeRollbackEvents(t *testing.T) {
	plan := &cloudsim.FaultPlan{Scripted: []cloudsim.Scripted{{Op: cloudsim.OpServerResize, Kind: cloudsim.FaultRollback}}}
	e := newNovaEnv(t, plan)
	id := e.active("nohost")
	if r := e.do("POST", "/compute/v2.1/servers/"+id+"/action", e.demoTok, "2.60", `{"resize": {"flavorRef": "2"}}`); r.code != 202 {
		t.Fatalf("resize: %d %s", r.code, r.text)
	}
	e.settle()
	e.wantState(id, "ACTIVE", "")
	names, results, msg, _ := e.actionEvents(id, "resize", e.demoTok, "2.60")
	if !slices.Equal(names, []string{"cold_migrate", "conductor_migrate_server"}) || !slices.Equal(results, []string{"Error", "Error"}) || msg != "Error" {
		t.Fatalf("events %v results %v message %v", names, results, msg)
	}
}
