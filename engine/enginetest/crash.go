package enginetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

// ErrCrashed is what a CrashStore answers once it has crashed.
var ErrCrashed = errors.New("enginetest: the process crashed")

// CrashStore wraps a Storage to interrupt a run at a chosen save and to
// count what the run recorded. After a crash (CrashAfter, Crash) the save
// that triggered it is kept and every later call fails with ErrCrashed, as
// if the process had died right after that save: the engine still runs in
// memory, but nothing it does reaches the inner Storage, so a new engine on
// the inner Storage sees exactly what a real crash leaves behind.
//
// It counts executions and reverts as the records show them: an execution
// when an atom moves from RUNNING to SUCCESS or FAILURE, a revert when it
// moves from REVERTING to REVERTED or REVERT_FAILURE. An Execute that the
// interruption cut short is not counted, since a resume runs it again by
// design; only the one whose outcome is recorded did what the flow keeps.
type CrashStore struct {
	inner engine.Storage

	mu        sync.Mutex
	limit     int  // crash after this many saves (0: never)
	atomsOnly bool // only atom saves count toward limit
	saves     int
	crashed   bool
	at        int
	hook      func()
	fired     bool
	execs     map[string]int
	reverts   map[string]int
	log       []string
}

// NewCrashStore wraps inner.
func NewCrashStore(inner engine.Storage) *CrashStore {
	return &CrashStore{inner: inner, execs: map[string]int{}, reverts: map[string]int{}}
}

// Inner returns the wrapped Storage, to resume from after a crash.
func (c *CrashStore) Inner() engine.Storage { return c.inner }

// CrashAfter makes the store crash right after its n-th save from now on
// (n <= 0: never). With atomsOnly, only atom saves count: a resume spends
// a save or two on the flow's state before it gets anywhere.
func (c *CrashStore) CrashAfter(n int, atomsOnly bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.limit, c.atomsOnly, c.saves = n, atomsOnly, 0
}

// Crash makes the store crash now.
func (c *CrashStore) Crash() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.crashed = true
}

// OnSave calls f once, right after the n-th save (counting all saves), from
// the goroutine that saved, e.g. to suspend the engine or cancel its
// context at that point.
func (c *CrashStore) OnSave(n int, f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at, c.hook, c.fired = n, f, false
}

// Crashed reports whether the store has crashed.
func (c *CrashStore) Crashed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.crashed
}

// Fired reports whether the OnSave function was called.
func (c *CrashStore) Fired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fired
}

// Executions returns, per atom, the executions recorded so far.
func (c *CrashStore) Executions() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.execs)
}

// Reverts returns, per atom, the reverts recorded so far.
func (c *CrashStore) Reverts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.reverts)
}

// Saves returns the saves that went through, in order: "values",
// ":FROM>TO" for the flow and "atom:FROM>TO" for an atom.
func (c *CrashStore) Saves() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// Load implements engine.Storage.
func (c *CrashStore) Load(ctx context.Context) (engine.Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return engine.Snapshot{}, ErrCrashed
	}
	return c.inner.Load(ctx)
}

// SaveFlow implements engine.Storage.
func (c *CrashStore) SaveFlow(ctx context.Context, from, to flow.State) error {
	return c.save(fmt.Sprintf(":%s>%s", from, to), false, func() error { return c.inner.SaveFlow(ctx, from, to) })
}

// SaveAtom implements engine.Storage.
func (c *CrashStore) SaveAtom(ctx context.Context, from flow.State, rec engine.AtomRecord) error {
	err := c.save(fmt.Sprintf("%s:%s>%s", rec.Name, from, rec.State), true, func() error {
		if err := c.inner.SaveAtom(ctx, from, rec); err != nil {
			return err
		}
		c.count(from, &rec)
		return nil
	})
	return err
}

// count notes an execution or a revert that was recorded.
func (c *CrashStore) count(from flow.State, rec *engine.AtomRecord) {
	switch {
	case from == flow.StateRunning && (rec.State == flow.StateSuccess || rec.State == flow.StateFailure):
		c.execs[rec.Name]++
	case from == flow.StateReverting && (rec.State == flow.StateReverted || rec.State == flow.StateRevertFailure):
		c.reverts[rec.Name]++
	}
}

// CrashBatcher is a CrashStore over an engine.Batcher: a batch is one save,
// written whole or, after a crash, not at all, as a transaction is.
type CrashBatcher struct {
	*CrashStore
	batcher engine.Batcher
}

// NewCrashBatcher wraps inner.
func NewCrashBatcher(inner engine.Batcher) *CrashBatcher {
	return &CrashBatcher{CrashStore: NewCrashStore(inner), batcher: inner}
}

// SaveBatch implements engine.Batcher.
func (c *CrashBatcher) SaveBatch(ctx context.Context, ts []engine.Transition) error {
	entries := make([]string, len(ts))
	atom := false
	for k, t := range ts {
		switch t.Kind {
		case engine.TransitionValues:
			entries[k] = "values"
		case engine.TransitionFlow:
			entries[k] = fmt.Sprintf(":%s>%s", t.From, t.To)
		case engine.TransitionAtom:
			entries[k] = fmt.Sprintf("%s:%s>%s", t.Atom.Name, t.From, t.Atom.State)
			atom = true
		}
	}
	return c.saveAll(entries, atom, func() error {
		if err := c.batcher.SaveBatch(ctx, ts); err != nil {
			return err
		}
		for k := range ts {
			if ts[k].Kind == engine.TransitionAtom {
				c.count(ts[k].From, &ts[k].Atom)
			}
		}
		return nil
	})
}

// wrap wraps a storage in a CrashBatcher when it batches, else in a
// CrashStore, and returns the storage to run on.
func wrap(inner engine.Storage) (*CrashStore, engine.Storage) {
	if b, ok := inner.(engine.Batcher); ok {
		cb := NewCrashBatcher(b)
		return cb.CrashStore, cb
	}
	cs := NewCrashStore(inner)
	return cs, cs
}

// SaveValues implements engine.Storage.
func (c *CrashStore) SaveValues(ctx context.Context, values map[string]any) error {
	return c.save("values", false, func() error { return c.inner.SaveValues(ctx, values) })
}

// save runs one save under the lock, unless crashed, then crashes or calls
// the OnSave function when it is time.
func (c *CrashStore) save(entry string, atom bool, do func() error) error {
	return c.saveAll([]string{entry}, atom, do)
}

// saveAll is save for a batch of entries written at once.
func (c *CrashStore) saveAll(entries []string, atom bool, do func() error) error {
	c.mu.Lock()
	if c.crashed {
		c.mu.Unlock()
		return ErrCrashed
	}
	if err := do(); err != nil {
		c.mu.Unlock()
		return err
	}
	before := len(c.log)
	c.log = append(c.log, entries...)
	if atom || !c.atomsOnly {
		c.saves++
	}
	if c.limit > 0 && c.saves == c.limit {
		c.crashed = true
	}
	var hook func()
	if c.hook != nil && !c.fired && before < c.at && len(c.log) >= c.at {
		c.fired, hook = true, c.hook
	}
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	return nil
}
