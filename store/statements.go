package store

import (
	"fmt"
	"io/fs"
)

// Statements are a driver's SQL statements, one file each (NAME.sql) in
// the directory a driver embeds. Every driver has the same guarded
// writes: either the statements marked (a), one per row, or BatchWrite,
// one for a whole batch (the driver that uses it checks it is there);
// optional ones may be absent.
type Statements struct {
	SchemaTable   string // create the schema version table if missing
	SchemaLock    string // optional: serialise concurrent migrations
	SchemaExists  string // does the version table exist
	SchemaVersion string // newest applied version
	SchemaInsert  string // record a version
	RunInsert     string
	RunGet        string
	RunList       string
	RunClaim      string // epoch+1, new owner, RETURNING the row
	RunWrite      string // the fenced write: epoch, sequence, expected flow state (a)
	RunFence      string // the run row's epoch, sequence, state and owner
	RunDelete     string
	AtomDelete    string // optional: a run's atoms, where no foreign key cascades
	AtomInsert    string // leave PENDING (a missing row is PENDING) (a)
	AtomUpdate    string // any other guarded move (a)
	AtomState     string // (a)
	AtomList      string
	// BatchWrite, optional, writes a whole Batch (the fence and every
	// atom) in one statement. A driver that has it needs none of the
	// statements marked (a), which write a batch one row at a time.
	BatchWrite string
}

// LoadStatements reads the statements of fsys. A missing required file is
// a build mistake: it panics.
func LoadStatements(fsys fs.FS) Statements {
	read := func(name string, optional bool) string {
		b, err := fs.ReadFile(fsys, name+".sql")
		if err != nil && !optional {
			panic(fmt.Sprintf("store: statement %s.sql: %v", name, err))
		}
		return string(b)
	}
	batch := read("batch_write", true)
	oneStatement := batch != "" // then the statements (a) are not needed
	return Statements{
		SchemaTable:   read("schema_table", false),
		SchemaLock:    read("schema_lock", true),
		SchemaExists:  read("schema_exists", false),
		SchemaVersion: read("schema_version", false),
		SchemaInsert:  read("schema_insert", false),
		RunInsert:     read("run_insert", false),
		RunGet:        read("run_get", false),
		RunList:       read("run_list", false),
		RunClaim:      read("run_claim", false),
		RunWrite:      read("run_write", oneStatement),
		RunFence:      read("run_fence", false),
		RunDelete:     read("run_delete", false),
		AtomDelete:    read("atom_delete", true),
		AtomInsert:    read("atom_insert", oneStatement),
		AtomUpdate:    read("atom_update", oneStatement),
		AtomState:     read("atom_state", oneStatement),
		AtomList:      read("atom_list", false),
		BatchWrite:    batch,
	}
}
