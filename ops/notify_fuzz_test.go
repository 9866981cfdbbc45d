package ops

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	gojson "github.com/goccy/go-json"
)

// FuzzDecodeNovaEvent: the consumer's decoder (goccy/go-json) never
// panics, and on any message encoding/json decodes it decodes the same
// event: decodeNovaEvent judges notifications exactly as it did with
// encoding/json.
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
		want, wantErr := decodeNovaEventWith(body, json.Unmarshal)
		got, gotErr := decodeNovaEventWith(body, gojson.Unmarshal) // a panic fails the fuzz
		if wantErr != nil {
			return // malformed for encoding/json: only no panic is asked
		}
		if gotErr != nil {
			t.Fatalf("encoding/json decodes %q, goccy/go-json fails: %v", body, gotErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q decodes to\n%#v\nnot, as with encoding/json,\n%#v", body, got, want)
		}
	})
}
