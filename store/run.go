package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
	"github.com/ostask/ostask/retry"
)

// Transition is one recorded change; SaveBatch applies several in one
// transaction.
type Transition = engine.Transition

// FlowMove is a flow transition.
func FlowMove(from, to flow.State) Transition {
	return Transition{Kind: engine.TransitionFlow, From: from, To: to}
}

// AtomMove is an atom transition.
func AtomMove(from flow.State, rec engine.AtomRecord) Transition {
	return Transition{Kind: engine.TransitionAtom, From: from, Atom: rec}
}

// SetValues records the initial store values.
func SetValues(values map[string]any) Transition {
	return Transition{Kind: engine.TransitionValues, Values: values}
}

// Run is the fenced handle on one run: it implements engine.Storage. Every
// write names the epoch it holds and the run's write sequence it expects,
// and each atom's or the flow's expected state; a write that finds another
// owner fails with a *FencedError, and so does every write after it.
//
// Values come back from Load as json.RawMessage (results, store values,
// retry attempts' results), for the consumer to decode into its own type.
type Run struct {
	db    *DB
	id    string
	mu    sync.Mutex
	epoch int64
	seq   int64
	dead  error // set by a fence or a write of unknown outcome
	// created is the row Create wrote, while this handle has neither
	// loaded nor written: the first Load answers from it, as the database
	// would (a run just created is PENDING with no atoms), without a
	// statement. Nil for handles of Acquire and after the first Load or
	// write.
	created *RunRow
}

var _ engine.Batcher = (*Run)(nil)

// ID returns the run's id.
func (r *Run) ID() string { return r.id }

// Epoch returns the epoch this handle holds.
func (r *Run) Epoch() int64 { return r.epoch }

// Load implements engine.Storage: the flow state, every atom record and
// the store values, values as json.RawMessage.
//
// The first Load of a handle from Create, before any write of it, reads
// nothing: it decodes the row Create wrote, as a read-back would (the
// drivers return the params' JSON text byte for byte), and the run has no
// atoms yet. Another owner may have acquired the run meanwhile; this
// handle's first write then fails with a *FencedError, as it would after
// a read-back.
func (r *Run) Load(ctx context.Context) (engine.Snapshot, error) {
	r.mu.Lock()
	created := r.created
	r.created = nil
	r.mu.Unlock()
	if created != nil && ctx.Err() == nil && !r.db.closed.Load() {
		info, err := decodeRun(created)
		if err != nil {
			return engine.Snapshot{}, err
		}
		return snapshot(info, nil), nil
	}
	info, err := r.db.Get(ctx, r.id)
	if err != nil {
		return engine.Snapshot{}, err
	}
	atoms, err := r.db.atoms(ctx, r.id)
	if err != nil {
		return engine.Snapshot{}, err
	}
	return snapshot(info, atoms), nil
}

// snapshot is the engine's view of a run read back.
func snapshot(info RunInfo, atoms []AtomInfo) engine.Snapshot {
	snap := engine.Snapshot{Flow: info.State, Atoms: make(map[string]engine.AtomRecord, len(atoms))}
	if info.Params != nil {
		snap.Values = make(map[string]any, len(info.Params))
		for k, v := range info.Params {
			snap.Values[k] = v
		}
	}
	for _, a := range atoms {
		rec := engine.AtomRecord{Name: a.Name, Version: a.Version, State: a.State,
			Failure: a.Failure, RevertFailure: a.RevertFailure, History: a.History, Decision: a.Decision}
		if a.Result != nil {
			rec.Result = a.Result
		}
		snap.Atoms[a.Name] = rec
	}
	return snap
}

// SaveFlow implements engine.Storage.
func (r *Run) SaveFlow(ctx context.Context, from, to flow.State) error {
	return r.SaveBatch(ctx, []Transition{FlowMove(from, to)})
}

// SaveAtom implements engine.Storage.
func (r *Run) SaveAtom(ctx context.Context, from flow.State, rec engine.AtomRecord) error {
	return r.SaveBatch(ctx, []Transition{AtomMove(from, rec)})
}

// SaveValues implements engine.Storage.
func (r *Run) SaveValues(ctx context.Context, values map[string]any) error {
	return r.SaveBatch(ctx, []Transition{SetValues(values)})
}

// SaveBatch applies ts in one transaction (which writes of other runs of
// the DB may share), in order, all or nothing: it is durable when
// SaveBatch returns nil. Successive transitions of one atom
// (or of the flow) must chain: each starts from the state the previous
// one reached.
func (r *Run) SaveBatch(ctx context.Context, ts []Transition) (err error) {
	if len(ts) == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.created = nil // a write, even one that fails, may change what Load finds
	if r.dead != nil {
		return r.dead
	}
	b, err := r.batch(ts)
	if err != nil {
		return err
	}
	if hook := r.db.cfg.hook; hook != nil {
		hook(BeforeWrite)
		b.BeforeCommit = func() { hook(InsideWrite) }
		defer func() {
			if err == nil {
				hook(AfterWrite)
			}
		}()
	}
	if err = r.apply(ctx, b); err != nil {
		var fe *FencedError
		var ue *UnavailableError
		if errors.As(err, &fe) || errors.As(err, &ue) {
			r.dead = err
		}
		return err
	}
	r.seq++
	return nil
}

// batch coalesces transitions into one Batch: one guarded write per atom.
func (r *Run) batch(ts []Transition) (*Batch, error) {
	b := &Batch{Run: r.id, Epoch: r.epoch, Seq: r.seq, Now: r.db.now()}
	var flowAt flow.State
	hasFlow := false
	type pending struct {
		from, at flow.State
		start    bool
		rec      *engine.AtomRecord
	}
	var order []string
	atoms := map[string]*pending{}
	for i := range ts {
		t := &ts[i]
		switch t.Kind {
		case engine.TransitionFlow:
			if hasFlow && t.From != flowAt {
				return nil, &ConflictError{Run: r.id, Expected: t.From, Actual: flowAt}
			}
			if !hasFlow {
				b.FlowFrom = t.From.String()
				hasFlow = true
			}
			flowAt = t.To
			b.FlowTo = t.To.String()
		case engine.TransitionAtom:
			p := atoms[t.Atom.Name]
			if p == nil {
				p = &pending{from: t.From}
				atoms[t.Atom.Name] = p
				order = append(order, t.Atom.Name)
			} else if p.at != t.From {
				return nil, &ConflictError{Run: r.id, Atom: t.Atom.Name, Expected: t.From, Actual: p.at}
			}
			p.at, p.rec = t.Atom.State, &t.Atom
			if t.Atom.State == flow.StateRunning {
				p.start = true
			}
		case engine.TransitionValues:
			v := t.Values
			if v == nil {
				v = map[string]any{}
			}
			params, err := r.db.encode(r.id, "", "values", maps.Clone(v))
			if err != nil {
				return nil, err
			}
			b.Params = params
		default:
			return nil, fmt.Errorf("store: run %q: unknown transition kind %d", r.id, t.Kind)
		}
	}
	b.Atoms = make([]AtomWrite, 0, len(order))
	for _, name := range order {
		p := atoms[name]
		row, err := r.db.encodeAtom(r.id, p.rec)
		if err != nil {
			return nil, err
		}
		b.Atoms = append(b.Atoms, AtomWrite{From: p.from.String(), Row: row, Start: p.start, Finish: finished(p.at)})
	}
	return b, nil
}

func finished(s flow.State) bool {
	switch s {
	case flow.StateSuccess, flow.StateFailure, flow.StateReverted, flow.StateRevertFailure, flow.StateIgnore:
		return true
	}
	return false
}

// apply writes b under the retry policy. A retryable error may hide a
// commit that happened (the connection dropped during COMMIT); the next
// attempt then finds the run's sequence one ahead under this epoch, which
// only this handle can have written, and takes it as done.
func (r *Run) apply(ctx context.Context, b *Batch) error {
	db := r.db
	if db.closed.Load() {
		return ErrClosed
	}
	attempts := 0
	unknown := false
	opts := []retry.Option{}
	if db.cfg.sleep != nil {
		opts = append(opts, retry.WithSleep(db.cfg.sleep))
	}
	err := retry.Do(ctx, db.cfg.policy, func(ctx context.Context, attempt int) error {
		attempts = attempt
		err := db.write(ctx, b)
		if err == nil {
			return nil
		}
		var rm *RunMismatch
		if errors.As(err, &rm) {
			if unknown && rm.Found && rm.Epoch == b.Epoch && rm.Seq == b.Seq+1 {
				return nil
			}
			return retry.Permanent(r.runConflict(rm, b))
		}
		var am *AtomMismatch
		if errors.As(err, &am) {
			c := &ConflictError{Run: r.id, Atom: am.Atom, Missing: !am.Found}
			for _, w := range b.Atoms {
				if w.Row.Name == am.Atom {
					c.Expected, _ = flow.ParseState(w.From)
				}
			}
			if am.Found {
				st, perr := flow.ParseState(am.State)
				if perr != nil {
					return retry.Permanent(corrupt(r.id, am.Atom, "state", []byte(am.State), perr))
				}
				c.Actual = st
			}
			return retry.Permanent(c)
		}
		if db.d.Retryable(err) {
			unknown = true
			return err
		}
		return retry.Permanent(err)
	}, opts...)
	if err := db.retryError("save", r.id, attempts, err); err != nil {
		var ue *UnavailableError
		var ce *ConflictError
		var fe *FencedError
		var co *CorruptError
		if errors.As(err, &ue) || errors.As(err, &ce) || errors.As(err, &fe) || errors.As(err, &co) {
			return err // they name the run already
		}
		return fmt.Errorf("store: save run %q: %w", r.id, err)
	}
	return nil
}

// runConflict explains why the run row's guard found nothing.
func (r *Run) runConflict(rm *RunMismatch, b *Batch) error {
	if !rm.Found {
		return &ConflictError{Run: r.id, Missing: true}
	}
	if rm.Epoch != b.Epoch {
		return &FencedError{Run: r.id, Held: b.Epoch, Current: rm.Epoch, Owner: rm.Owner}
	}
	st, err := flow.ParseState(rm.State)
	if err != nil {
		return corrupt(r.id, "", "state", []byte(rm.State), err)
	}
	if rm.Seq != b.Seq {
		// Another handle with this epoch wrote: only a write of unknown
		// outcome (already reported) leads here.
		return &ConflictError{Run: r.id, Actual: st, Detail: fmt.Sprintf("written elsewhere under epoch %d (sequence %d, expected %d)", b.Epoch, rm.Seq, b.Seq)}
	}
	from, _ := flow.ParseState(b.FlowFrom)
	return &ConflictError{Run: r.id, Expected: from, Actual: st}
}
