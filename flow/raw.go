package flow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
)

// Values read back from a durable store (results, store values, the
// results a decider or a revert sees after a resume) are raw JSON: a
// json.RawMessage. The store cannot know the Go type a consumer wants; the
// consumer can. [Get], [GetOr], [As], the engine's Fetch and FuncTask's
// revert decode raw JSON into the type they are asked for, so a task that
// reads its inputs with Get[*servers.Server] gets a *servers.Server
// whether the value was produced in this process or before a crash.

// As returns v as a T: v itself when it is a T, or v decoded when it is raw
// JSON. A nil v is the zero T. The error matches [ErrWrongType].
func As[T any](v any) (T, error) {
	var zero T
	if t, ok := v.(T); ok {
		return t, nil
	}
	if v == nil {
		return zero, nil
	}
	raw, ok := v.(json.RawMessage)
	if !ok {
		return zero, &InputError{Want: typeName[T](), Got: v, err: ErrWrongType}
	}
	var t T
	if err := json.Unmarshal(raw, &t); err != nil {
		return zero, &InputError{Want: typeName[T](), Got: v, err: ErrWrongType, cause: err}
	}
	return t, nil
}

func typeName[T any]() string { return reflect.TypeFor[T]().String() }

// rawOutput splits raw JSON like Output splits a Go value: a JSON object by
// name, a JSON array by position.
func rawOutput(raw json.RawMessage, names []string, out int) (any, bool) {
	switch firstByte(raw) {
	case '{':
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return nil, false
		}
		v, ok := m[names[out]]
		return v, ok
	case '[':
		var a []json.RawMessage
		if json.Unmarshal(raw, &a) != nil || out >= len(a) {
			return nil, false
		}
		return a[out], true
	}
	return nil, false
}

// rawLen returns the length of a JSON array (-1: an object; -2: neither).
func rawLen(raw json.RawMessage) int {
	switch firstByte(raw) {
	case '{':
		return -1
	case '[':
		var a []json.RawMessage
		if json.Unmarshal(raw, &a) == nil {
			return len(a)
		}
	}
	return -2
}

func firstByte(raw json.RawMessage) byte {
	b := bytes.TrimLeft(raw, " \t\r\n")
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// rawValues reads a JSON array as a list of raw values.
func rawValues(raw json.RawMessage) ([]any, error) {
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("not a JSON array: %w", err)
	}
	out := make([]any, len(a))
	for i, v := range a {
		out[i] = v
	}
	return out, nil
}
