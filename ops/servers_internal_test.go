package ops

import "testing"

// The id of a created server is read from the 202 answer as gophercloud
// decoded it; an answer without one is an error, not a server "".
func TestCreatedServerID(t *testing.T) {
	ok := map[string]any{"server": map[string]any{"id": "7f1c", "adminPass": "x", "links": []any{}}}
	if id, err := createdServerID(ok); err != nil || id != "7f1c" {
		t.Fatalf("createdServerID(%v) = %q, %v; want 7f1c", ok, id, err)
	}
	for _, bad := range []any{nil, "text", map[string]any{}, map[string]any{"server": "x"},
		map[string]any{"server": map[string]any{"id": 7}}, map[string]any{"server": map[string]any{"id": ""}}} {
		if id, err := createdServerID(bad); err == nil {
			t.Errorf("createdServerID(%v) = %q, nil; want an error", bad, id)
		}
	}
}
