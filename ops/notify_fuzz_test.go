package ops

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeNovaEvent: no message from the bus makes the consumer's
// decoder panic, and what it accepts is judgeable: an event about a
// server names it and carries its observation. (goccy/go-json was tried
// as a faster decoder and dropped: this fuzz found it panicking on
// malformed input, testdata/fuzz.)
func FuzzDecodeNovaEvent(f *testing.F) {
	files, err := filepath.Glob("testdata/realstack_*.json")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed messages: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"oslo.version":"2.0","oslo.message":"{\"event_type\":\"instance.update\",\"priority\":\"INFO\",\"timestamp\":\"2026-01-02 03:04:05.123456\",\"payload\":{\"nova_object.data\":{\"uuid\":\"u\",\"state\":\"active\",\"progress\":\"x\"}}}"}`))
	f.Add([]byte(`{"oslo.message":"{\"event_type\":\"compute.exception\",\"priority\":\"ERROR\",\"_context_request_id\":\"req-1\"}"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := decodeNovaEvent(body)
		if err != nil || ev == nil {
			return
		}
		if ev.id != "" && ev.obs == nil {
			t.Fatalf("%q: an event about server %s without an observation", body, ev.id)
		}
		if ev.id == "" && ev.reqID == "" {
			t.Fatalf("%q: an event about nothing: %+v", body, ev)
		}
	})
}
