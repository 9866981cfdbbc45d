package cloudsim

import (
	"context"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// renderedNote is one notification of sv as the pipe publishes it.
func renderedNote(s *Sim, sv *server, name string, now time.Time) []byte {
	a := sv.Actions[len(sv.Actions)-1]
	note, _ := s.novaNotification(sv, a, name, notedState{vm: sv.VMState, task: sv.TaskState}, now)
	return note.body()
}

// The notification pipe renders every state change a consumer may see:
// what one costs, under the simulator's lock and after.
func BenchmarkNotificationRender(b *testing.B) {
	sim, err := Start(context.Background(), Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer sim.Close()
	id := sim.NovaSeedServersForTest(1)[0]
	sim.mu.Lock()
	sv := sim.servers[id]
	sv.Actions = append(sv.Actions, &instanceAction{Action: "create", RequestID: "req-bench", UserID: DemoUserID, ProjectID: DemoProjectID})
	sim.mu.Unlock()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		renderedNote(sim, sv, "instance.create.end", now)
	}
}

// A rendered notification has the envelope and every field of Nova's
// payloads, nulls included, whatever the server lacks.
func TestNotificationShape(t *testing.T) {
	sim, err := Start(context.Background(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	now := time.Date(2026, 1, 2, 3, 4, 5, 678900000, time.UTC)
	sv := &server{ID: "sid", Name: "nm", ProjectID: "p", UserID: "u", ImageRef: "img", FlavorID: sim.flavors[0].ID, Host: "h1",
		VMState: vmActive, Created: now, Updated: now, LaunchedAt: now, Tags: []string{"t"},
		Volumes: []*serverVolume{{VolumeID: "v1", Device: "/dev/vdb", Tag: "x"}},
		Fault:   &fault{Message: "boom", Details: "tb"}, nova: &novaServer{IP: "10.0.0.1", MAC: "fa:16:3e:00:00:01"},
		Actions: []*instanceAction{{Action: "create", RequestID: "req-1", UserID: "u", ProjectID: "p"}}}
	common := []string{"uuid", "tenant_id", "user_id", "request_id", "action_initiator_user", "action_initiator_project",
		"display_name", "display_description", "host_name", "host", "node", "availability_zone", "image_uuid", "key_name",
		"kernel_id", "ramdisk_id", "os_type", "architecture", "created_at", "launched_at", "updated_at", "terminated_at",
		"deleted_at", "state", "task_state", "power_state", "progress", "flavor", "ip_addresses", "block_devices", "metadata",
		"locked", "auto_disk_config", "locked_reason", "fault"}
	for _, tc := range []struct {
		name, payload string
		extra         []string
	}{
		{"instance.create.error", "InstanceCreatePayload", []string{"keypairs", "tags", "trusted_image_certificates"}},
		{"instance.reboot.end", "InstanceActionPayload", nil},
	} {
		note, _ := sim.novaNotification(sv, sv.Actions[0], tc.name, notedState{vm: sv.VMState, task: sv.TaskState}, now)
		var env map[string]any
		if err := json.Unmarshal(note.body(), &env); err != nil || env["oslo.version"] != "2.0" {
			t.Fatalf("%s: envelope %v: %v", tc.name, env, err)
		}
		var msg map[string]any
		if err := json.Unmarshal([]byte(env["oslo.message"].(string)), &msg); err != nil {
			t.Fatal(err)
		}
		// The pipe renders with encoding/json/v2: the message is the one
		// encoding/json renders of the same note (same ids), field for field.
		var v1msg map[string]any
		if b, err := json.Marshal(note); err != nil || json.Unmarshal(b, &v1msg) != nil || !reflect.DeepEqual(msg, v1msg) {
			t.Errorf("%s: rendered\n%v\nencoding/json renders\n%v", tc.name, msg, v1msg)
		}
		for _, k := range []string{"message_id", "publisher_id", "event_type", "priority", "payload", "timestamp", "_unique_id",
			"_context_request_id", "_context_project_id", "_context_user_id"} {
			if _, ok := msg[k]; !ok {
				t.Errorf("%s: message lacks %s", tc.name, k)
			}
		}
		payload := msg["payload"].(map[string]any)
		data := payload["nova_object.data"].(map[string]any)
		want := append(slices.Clone(common), tc.extra...)
		if got := slices.Sorted(maps.Keys(data)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("%s: payload fields %v, want %v", tc.name, got, slices.Sorted(slices.Values(want)))
		}
		if payload["nova_object.name"] != tc.payload || data["display_description"] != nil || data["os_type"] != nil ||
			data["task_state"] != nil || data["metadata"] == nil {
			t.Errorf("%s: payload %v", tc.name, payload)
		}
		fault, _ := data["fault"].(map[string]any)
		if failed := strings.HasSuffix(tc.name, ".error"); failed != (fault != nil) {
			t.Errorf("%s: fault %v", tc.name, data["fault"])
		}
		bdm := data["block_devices"].([]any)[0].(map[string]any)["nova_object.data"].(map[string]any)
		if bdm["volume_id"] != "v1" || bdm["tag"] != "x" || bdm["boot_index"] != nil {
			t.Errorf("%s: block device %v", tc.name, bdm)
		}
	}
}
