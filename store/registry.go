package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

// A stored run names its flow and version; resuming it in another process
// needs the same flow again. A Registry maps names and versions to
// Builders, and Start and Resume go through it, so that a run is always
// rebuilt by the code that made it — or refused.

// Builder builds a registered flow from a run's parameters (its initial
// store values, as JSON) and returns the flow and the store values to run
// it with. It must build the same flow from the same parameters every
// time. Values the store does not keep (secrets) come from the Builder's
// own environment, never from the parameters.
type Builder func(params map[string]json.RawMessage) (*flow.Flow, map[string]any, error)

// ErrUnknownFlow is matched by *UnknownFlowError.
var ErrUnknownFlow = errors.New("store: flow not registered")

// ErrRegistered is returned by Register for a name and version taken.
var ErrRegistered = errors.New("store: flow already registered")

// UnknownFlowError is a run, or a request, naming a flow or version this
// process has not registered.
type UnknownFlowError struct {
	Run     string // empty for a new run
	Flow    string
	Version string
	Known   []string // the registered versions of Flow (none: the flow is unknown)
}

func (e *UnknownFlowError) Error() string {
	what := fmt.Sprintf("flow %q version %q", e.Flow, e.Version)
	if e.Run != "" {
		what = fmt.Sprintf("run %q: %s", e.Run, what)
	}
	if len(e.Known) == 0 {
		return fmt.Sprintf("store: %s: no flow of that name is registered", what)
	}
	return fmt.Sprintf("store: %s: not registered (registered versions: %v)", what, e.Known)
}

// Is matches ErrUnknownFlow.
func (e *UnknownFlowError) Is(target error) bool { return target == ErrUnknownFlow }

// Registry holds flows by name and version. It is safe for concurrent use;
// its zero value is empty and ready.
type Registry struct {
	mu sync.RWMutex
	m  map[string]map[string]Builder
}

// Register adds a flow; ErrRegistered when the name and version are taken.
func (r *Registry) Register(name, version string, b Builder) error {
	if name == "" || b == nil {
		return fmt.Errorf("store: register: %w: a flow needs a name and a builder", ErrBadRun)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]map[string]Builder{}
	}
	if r.m[name] == nil {
		r.m[name] = map[string]Builder{}
	}
	if _, ok := r.m[name][version]; ok {
		return fmt.Errorf("%w: %q version %q", ErrRegistered, name, version)
	}
	r.m[name][version] = b
	return nil
}

// Lookup returns the builder of a flow; an *UnknownFlowError when there is
// none.
func (r *Registry) Lookup(name, version string) (Builder, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if b, ok := r.m[name][version]; ok {
		return b, nil
	}
	return nil, &UnknownFlowError{Flow: name, Version: version, Known: slices.Sorted(maps.Keys(r.m[name]))}
}

// build looks the flow up and builds it from raw parameters.
func (r *Registry) build(run, name, version string, params map[string]json.RawMessage) (*flow.Compiled, map[string]any, error) {
	b, err := r.Lookup(name, version)
	if err != nil {
		err.(*UnknownFlowError).Run = run
		return nil, nil, err
	}
	f, values, err := b(params)
	if err != nil {
		return nil, nil, fmt.Errorf("store: run %q: build flow %q version %q: %w", run, name, version, err)
	}
	c, err := flow.Compile(f, flow.WithInputs(slices.Collect(maps.Keys(values))...))
	if err != nil {
		return nil, nil, fmt.Errorf("store: run %q: flow %q version %q: %w", run, name, version, err)
	}
	return c, values, nil
}

// Start creates a run of a registered flow and returns an engine for it
// (call Run) and the run's handle. The flow is built from the parameters
// as they read back from the store, exactly as Resume will build it.
func (db *DB) Start(ctx context.Context, reg *Registry, nr NewRun, opts ...engine.Option) (*engine.Engine, *Run, error) {
	if _, err := reg.Lookup(nr.Flow, nr.Version); err != nil {
		err.(*UnknownFlowError).Run = nr.ID
		return nil, nil, err
	}
	b, err := db.encodeParams(nr)
	if err != nil {
		return nil, nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, nil, &EncodeError{Run: nr.ID, Field: "params", Err: fmt.Errorf("not a JSON object: %w", err)}
	}
	c, values, err := reg.build(nr.ID, nr.Flow, nr.Version, raw)
	if err != nil {
		return nil, nil, err
	}
	run, err := db.create(ctx, nr, b)
	if err != nil {
		return nil, nil, err
	}
	return engineFor(c, values, run, opts)
}

// engineFor returns an engine for compiled flow c recording in run: the
// builder's store values first, so that opts may replace them.
func engineFor(c *flow.Compiled, values map[string]any, run *Run, opts []engine.Option) (*engine.Engine, *Run, error) {
	e, err := engine.NewCompiled(c, append([]engine.Option{engine.WithStore(values)}, append(opts, engine.WithStorage(run))...)...)
	if err != nil {
		return nil, nil, err
	}
	return e, run, nil
}

// Resume takes a stored run over for owner (empty: the DB's owner),
// rebuilds its flow from the registry and returns an engine that continues
// it (call Run) and the run's handle. A run whose flow or version is not
// registered is refused with an *UnknownFlowError, and one that records an
// atom the flow does not have with a *CorruptError, before anything is
// written: the run stays as it was, with its owner.
func (db *DB) Resume(ctx context.Context, reg *Registry, id, owner string, opts ...engine.Option) (*engine.Engine, *Run, error) {
	info, atoms, err := db.Show(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	c, values, err := reg.build(id, info.Flow, info.Version, info.Params)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range atoms {
		if i, ok := c.Index(a.Name); !ok || c.Nodes()[i].Kind == flow.NodeJoin {
			return nil, nil, corrupt(id, a.Name, "name", []byte(a.Name),
				fmt.Errorf("flow %q version %q has no atom of that name", info.Flow, info.Version))
		}
	}
	run, err := db.Acquire(ctx, id, owner)
	if err != nil {
		return nil, nil, err
	}
	return engineFor(c, values, run, opts)
}
