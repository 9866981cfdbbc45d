package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

// Values come back from a DB as json.RawMessage: a result, a store value, a
// retry attempt's result. The consumer decodes them into the type it asks
// for; nothing here guesses Go types.

// encode marshals v for column field of atom (empty: the run) and scrubs
// it. A nil v is NULL.
func (db *DB) encode(run, atom, field string, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &EncodeError{Run: run, Atom: atom, Field: field, Err: err}
	}
	return db.redact.scrub(b), nil
}

func (db *DB) encodeFailure(run, atom, field string, f *flow.Failure) ([]byte, error) {
	if f == nil {
		return nil, nil
	}
	return db.encode(run, atom, field, f)
}

func (db *DB) encodeHistory(run, atom string, h flow.History) ([]byte, error) {
	if len(h.Attempts) == 0 {
		return nil, nil
	}
	return db.encode(run, atom, "history", h)
}

// encodeAtom turns a record into a row.
func (db *DB) encodeAtom(run string, rec *engine.AtomRecord) (AtomRow, error) {
	row := AtomRow{Name: rec.Name, Version: rec.Version, State: rec.State.String()}
	var err error
	if row.Result, err = db.encode(run, rec.Name, "result", rec.Result); err != nil {
		return row, err
	}
	if row.Failure, err = db.encodeFailure(run, rec.Name, "failure", rec.Failure); err != nil {
		return row, err
	}
	if row.RevertFailure, err = db.encodeFailure(run, rec.Name, "revert_failure", rec.RevertFailure); err != nil {
		return row, err
	}
	if row.History, err = db.encodeHistory(run, rec.Name, rec.History); err != nil {
		return row, err
	}
	d, err := rec.Decision.MarshalText()
	if err != nil {
		return row, &EncodeError{Run: run, Atom: rec.Name, Field: "decision", Err: err}
	}
	row.Decision = string(d)
	return row, nil
}

func corrupt(run, atom, column string, value []byte, err error) error {
	v := value
	if len(v) > 64 {
		v = v[:64]
		for len(v) > 0 && !utf8.Valid(v) {
			v = v[:len(v)-1]
		}
	}
	return &CorruptError{Run: run, Atom: atom, Column: column, Value: string(v), Err: err}
}

var errInvalidJSON = errors.New("invalid JSON")

func parseState(run, atom, column, s string) (flow.State, error) {
	st, err := flow.ParseState(s)
	if err != nil {
		return 0, corrupt(run, atom, column, []byte(s), err)
	}
	return st, nil
}

// raw returns b as a json.RawMessage after checking it, nil for NULL.
func raw(run, atom, column string, b []byte) (json.RawMessage, error) {
	if b == nil {
		return nil, nil
	}
	if !json.Valid(b) {
		return nil, corrupt(run, atom, column, b, errInvalidJSON)
	}
	return json.RawMessage(bytes.Clone(b)), nil
}

func decodeFailure(run, atom, column string, b []byte) (*flow.Failure, error) {
	if b == nil {
		return nil, nil
	}
	var f flow.Failure
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, corrupt(run, atom, column, b, err)
	}
	return &f, nil
}

// historyJSON reads a flow.History keeping attempt results raw.
type historyJSON struct {
	Attempts []struct {
		Result   json.RawMessage `json:"result"`
		Failures []*flow.Failure `json:"failures"`
	} `json:"attempts"`
}

func decodeHistory(run, atom string, b []byte) (flow.History, error) {
	if b == nil {
		return flow.History{}, nil
	}
	var h historyJSON
	if err := json.Unmarshal(b, &h); err != nil {
		return flow.History{}, corrupt(run, atom, "history", b, err)
	}
	out := flow.History{Attempts: make([]flow.Attempt, len(h.Attempts))}
	for i, a := range h.Attempts {
		out.Attempts[i].Failures = a.Failures
		if len(a.Result) > 0 {
			out.Attempts[i].Result = a.Result
		}
	}
	return out, nil
}

// decodeAtom turns a row into an AtomInfo.
func decodeAtom(run string, row *AtomRow) (AtomInfo, error) {
	a := AtomInfo{Name: row.Name, Version: row.Version, Attempts: row.Attempts,
		Started: row.Started, Finished: row.Finished, Updated: row.Updated}
	var err error
	if row.Name == "" {
		return a, corrupt(run, "", "atom name", nil, errors.New("empty atom name"))
	}
	if a.State, err = parseState(run, row.Name, "state", row.State); err != nil {
		return a, err
	}
	if a.Result, err = raw(run, row.Name, "result", row.Result); err != nil {
		return a, err
	}
	if a.Failure, err = decodeFailure(run, row.Name, "failure", row.Failure); err != nil {
		return a, err
	}
	if a.RevertFailure, err = decodeFailure(run, row.Name, "revert_failure", row.RevertFailure); err != nil {
		return a, err
	}
	if a.History, err = decodeHistory(run, row.Name, row.History); err != nil {
		return a, err
	}
	if row.Decision != "" {
		if err := a.Decision.UnmarshalText([]byte(row.Decision)); err != nil {
			return a, corrupt(run, row.Name, "decision", []byte(row.Decision), err)
		}
	}
	return a, nil
}

// decodeRun turns a run row into a RunInfo.
func decodeRun(row *RunRow) (RunInfo, error) {
	info := RunInfo{ID: row.ID, Flow: row.Flow, Version: row.Version, Owner: row.Owner,
		Epoch: row.Epoch, Created: row.Created, Updated: row.Updated}
	var err error
	if info.State, err = parseState(row.ID, "", "state", row.State); err != nil {
		return info, err
	}
	if len(row.Params) > 0 {
		if err := json.Unmarshal(row.Params, &info.Params); err != nil {
			return info, corrupt(row.ID, "", "params", row.Params, fmt.Errorf("not a JSON object: %w", err))
		}
	}
	return info, nil
}
