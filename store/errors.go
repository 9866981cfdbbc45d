package store

import (
	"errors"
	"fmt"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

// Sentinels matched (errors.Is) by the typed errors below.
var (
	// ErrNotFound: no run with that id.
	ErrNotFound = errors.New("store: run not found")
	// ErrExists: a run with that id exists already.
	ErrExists = errors.New("store: run exists")
	// ErrFenced: another owner took the run; the writer must stop.
	ErrFenced = errors.New("store: fenced out")
	// ErrUnavailable: the database kept failing after bounded retries.
	ErrUnavailable = errors.New("store: database unavailable")
	// ErrCorrupt: a stored row cannot be read back.
	ErrCorrupt = errors.New("store: corrupt row")
	// ErrEncode: a value cannot be written as JSON.
	ErrEncode = errors.New("store: value cannot be encoded")
	// ErrSchemaTooNew: the database was migrated by a newer binary.
	ErrSchemaTooNew = errors.New("store: database schema newer than this binary")
	// ErrClosed: the DB was closed.
	ErrClosed = errors.New("store: closed")
)

// FencedError is returned by every write of a Run handle after another
// owner took the run with a higher epoch. It also matches
// engine.ErrConflict, so an engine stops without trying to record anything
// else.
type FencedError struct {
	Run     string
	Held    int64  // the epoch the writer holds
	Current int64  // the epoch in the database
	Owner   string // the current owner
}

func (e *FencedError) Error() string {
	return fmt.Sprintf("store: run %q: fenced out: this writer holds epoch %d, %q owns epoch %d", e.Run, e.Held, e.Owner, e.Current)
}

// Is matches ErrFenced and engine.ErrConflict.
func (e *FencedError) Is(target error) bool {
	return target == ErrFenced || target == engine.ErrConflict
}

// ConflictError is a compare-and-set that found another state than the one
// expected. It matches engine.ErrConflict.
type ConflictError struct {
	Run      string
	Atom     string // empty for the flow's own state
	Expected flow.State
	Actual   flow.State
	Missing  bool   // the run or atom row does not exist
	Detail   string // replaces the states in the message when set
}

func (e *ConflictError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("store: run %q: %s", e.Run, e.Detail)
	}
	what := "flow"
	if e.Atom != "" {
		what = fmt.Sprintf("atom %q", e.Atom)
	}
	actual := e.Actual.String()
	if e.Missing {
		actual = "missing"
	}
	return fmt.Sprintf("store: run %q: %s is %s, not %s", e.Run, what, actual, e.Expected)
}

// Unwrap returns engine.ErrConflict.
func (e *ConflictError) Unwrap() error { return engine.ErrConflict }

// UnavailableError is a database operation that still failed after the
// retry policy's attempts (or that hit an error no retry can fix in a
// write whose outcome is unknown).
type UnavailableError struct {
	Op       string // e.g. "save", "load", "acquire"
	Run      string
	Attempts int
	Err      error // the last error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("store: %s run %q: database unavailable after %d attempts: %v", e.Op, e.Run, e.Attempts, e.Err)
}

// Is matches ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Unwrap returns the last error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// CorruptError names a stored row (or column) that cannot be read back:
// an unknown state, invalid JSON, a value of the wrong shape.
type CorruptError struct {
	Run    string
	Atom   string // empty for the run row
	Column string
	Value  string // the offending text, cut short
	Err    error
}

func (e *CorruptError) Error() string {
	where := fmt.Sprintf("run %q", e.Run)
	if e.Atom != "" {
		where += fmt.Sprintf(" atom %q", e.Atom)
	}
	return fmt.Sprintf("store: %s: corrupt %s %q: %v", where, e.Column, e.Value, e.Err)
}

// Is matches ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// Unwrap returns the cause.
func (e *CorruptError) Unwrap() error { return e.Err }

// EncodeError is a result, store value or history that cannot be written
// as JSON. Nothing of the write is applied.
type EncodeError struct {
	Run   string
	Atom  string // empty for store values
	Field string // "result", "history", "failure", "values", "params"
	Err   error
}

func (e *EncodeError) Error() string {
	if e.Atom == "" {
		return fmt.Sprintf("store: run %q: %s cannot be encoded as JSON: %v", e.Run, e.Field, e.Err)
	}
	return fmt.Sprintf("store: run %q: atom %q: %s cannot be encoded as JSON: %v", e.Run, e.Atom, e.Field, e.Err)
}

// Is matches ErrEncode.
func (e *EncodeError) Is(target error) bool { return target == ErrEncode }

// Unwrap returns the encoder's error.
func (e *EncodeError) Unwrap() error { return e.Err }

// SchemaError is returned by Open when the database's schema version is
// newer than the newest migration this binary knows: an older binary must
// not write a schema it does not understand.
type SchemaError struct {
	Database int // the version found
	Known    int // the newest version this binary has
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("store: database schema version %d is newer than this binary knows (%d): upgrade ostask", e.Database, e.Known)
}

// Is matches ErrSchemaTooNew.
func (e *SchemaError) Is(target error) bool { return target == ErrSchemaTooNew }
