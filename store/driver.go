package store

import (
	"context"
	"fmt"
	"io/fs"
	"time"
)

// Driver is what a database package (store/sqlite, store/postgres)
// implements. DB builds the catalogue, fencing, encoding and retries on it;
// a driver only moves rows. Every method is one transaction (or one
// statement) and returns the database's own errors, which Retryable
// classifies.
type Driver interface {
	// Name is the database's name, e.g. "sqlite".
	Name() string
	// Migrations holds the schema migrations, files named
	// NNNN_description.sql at the root.
	Migrations() fs.FS
	// SchemaVersion returns the newest applied migration (0: none).
	SchemaVersion(ctx context.Context) (int, error)
	// ApplyMigration applies m and records it in one transaction, unless a
	// concurrent opener applied it first (then it does nothing).
	ApplyMigration(ctx context.Context, m Migration) error

	// GetRun returns a run; ErrNotFound when there is none.
	GetRun(ctx context.Context, id string) (RunRow, error)
	// ListRuns returns runs newest first.
	ListRuns(ctx context.Context, f RunFilter) ([]RunRow, error)
	// ClaimRun gives the run to owner with epoch+1 and returns the row
	// after the change; ErrNotFound when there is none.
	ClaimRun(ctx context.Context, id, owner string, now time.Time) (RunRow, error)
	// LoadAtoms returns a run's atom rows, by name.
	LoadAtoms(ctx context.Context, id string) ([]AtomRow, error)
	// Apply writes a batch in one transaction, all or nothing: first the
	// run row, guarded by epoch and sequence (and by the flow state when
	// the batch moves the flow), then each atom, guarded by its state.
	// When a guard finds zero rows the transaction is rolled back and
	// Apply returns a *RunMismatch or an *AtomMismatch.
	//
	// A batch with Create set inserts that run row instead (no other
	// field but BeforeCommit is used), and fails with
	// ErrExists when the id is taken: runs are created through Apply (and
	// ApplyGroup), so that creations share commits with other writes.
	Apply(ctx context.Context, b *Batch) error
	// DeleteRun removes a run and its atoms; ErrNotFound when there is none.
	DeleteRun(ctx context.Context, id string) error

	// Retryable reports whether err is worth another attempt: the
	// connection dropped, the database is locked or restarting, the disk
	// is full.
	Retryable(err error) bool
	// Close releases the connections.
	Close() error
}

// GroupDriver is a Driver that also writes the batches of several runs in
// one transaction, so that they share one commit. DB does so when writes
// of different runs are ready at the same moment (group commit).
type GroupDriver interface {
	Driver
	// ApplyGroup writes bs in one transaction, in order, all or nothing,
	// each batch guarded as Apply guards it (creations among them). When
	// batch i cannot be written (a guard found nothing, its run exists
	// already, or its statements failed), nothing
	// is written and the error is a *BatchError naming i, its Err what
	// Apply would have returned for that batch alone. Any other error
	// (the commit, the connection) concerns every batch, and, as with
	// Apply, a retryable one may hide a commit that happened.
	ApplyGroup(ctx context.Context, bs []*Batch) error
	// GroupWriters is how many transactions the database usefully writes
	// at once: 1 for a single writing connection.
	GroupWriters() int
}

// BatchError is ApplyGroup's answer when one batch of the group could not
// be written; nothing of the group was.
type BatchError struct {
	Index int
	Err   error
}

func (e *BatchError) Error() string {
	return fmt.Sprintf("store: batch %d of the group: %v", e.Index, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string // the file name
	SQL     string
}

// RunRow is a run as stored.
type RunRow struct {
	ID      string
	Flow    string
	Version string
	Params  []byte // a JSON object: the initial store values
	State   string
	Owner   string
	Epoch   int64 // bumped by every claim
	Seq     int64 // bumped by every write
	Created time.Time
	Updated time.Time
}

// AtomRow is an atom as stored. Nil JSON columns are NULL.
type AtomRow struct {
	Name          string
	Version       string
	State         string
	Attempts      int // times it entered RUNNING
	Result        []byte
	Failure       []byte
	RevertFailure []byte
	History       []byte
	Decision      string    // a retry controller's pending decision, "" for none
	Started       time.Time // zero: NULL
	Finished      time.Time // zero: NULL
	Updated       time.Time
}

// RunFilter selects runs in ListRuns; zero fields select everything.
type RunFilter struct {
	Flow  string
	State string
	Limit int // 0: no limit
}

// Batch is one transaction of writes for one run, or its creation.
type Batch struct {
	Run string
	// Create, when set, makes the batch the creation of run Run: this row
	// is inserted (ErrExists when the id is taken) and no other field but
	// BeforeCommit is used.
	Create *RunRow

	Epoch int64 // the epoch the writer holds
	Seq   int64 // the run's sequence the writer expects; the write makes it Seq+1
	// FlowFrom and FlowTo move the flow when FlowTo is not empty.
	FlowFrom, FlowTo string
	// Params replaces the store values when not nil.
	Params []byte
	Atoms  []AtomWrite
	Now    time.Time
	// BeforeCommit, when set, is called after the statements and before
	// the commit (or, where the driver sends the whole write at once,
	// before sending it). For crash tests.
	BeforeCommit func()
}

// AtomWrite is one atom's compare-and-set: the row must be in state From
// (a missing row counts as PENDING) and becomes Row.
type AtomWrite struct {
	From string
	Row  AtomRow // Started, Finished, Attempts and Updated are ignored
	// Start marks an entry into RUNNING: attempts+1, started_at = Now,
	// finished_at = NULL.
	Start bool
	// Finish sets finished_at = Now.
	Finish bool
}

// RunMismatch is Apply's answer when the run row's guard found nothing:
// the row as it is now (Found false: the run is gone).
type RunMismatch struct {
	Found bool
	Epoch int64
	Seq   int64
	State string
	Owner string
}

func (m *RunMismatch) Error() string {
	if !m.Found {
		return "store: run row missing"
	}
	return fmt.Sprintf("store: run row is epoch %d seq %d state %s", m.Epoch, m.Seq, m.State)
}

// AtomMismatch is Apply's answer when an atom's guard found nothing.
type AtomMismatch struct {
	Atom  string
	Found bool
	State string // the stored state, when Found
}

func (m *AtomMismatch) Error() string {
	if !m.Found {
		return fmt.Sprintf("store: atom %q missing", m.Atom)
	}
	return fmt.Sprintf("store: atom %q is %s", m.Atom, m.State)
}
