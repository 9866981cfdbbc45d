package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ostask/ostask/flow"
)

// ErrSuspended is returned by Run when the run stopped before the end,
// through Suspend or the cancellation of its context; Run may be called
// again to resume it.
var ErrSuspended = errors.New("engine: flow suspended")

// ErrRunning is returned by Run while another Run of the engine is active.
var ErrRunning = errors.New("engine: already running")

// FlowError is the error of a flow that failed: the failures that made it
// revert (in the order they happened) and, when reverting failed too, the
// revert failures. The original failures always come first: errors.Is and
// errors.As see all of them.
type FlowError struct {
	Flow           string
	State          flow.State // REVERTED, REVERT_FAILURE or FAILURE
	Failures       []*flow.Failure
	RevertFailures []*flow.Failure
	Err            error // an engine or storage error (state FAILURE)
}

func (e *FlowError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "flow %q %s", e.Flow, e.State)
	for i, f := range e.Failures {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	for i, f := range e.RevertFailures {
		if i == 0 {
			b.WriteString("; revert failed: ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the failures, then the revert failures, then Err.
func (e *FlowError) Unwrap() []error {
	out := make([]error, 0, len(e.Failures)+len(e.RevertFailures)+1)
	for _, f := range e.Failures {
		out = append(out, f)
	}
	for _, f := range e.RevertFailures {
		out = append(out, f)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// Clock is the engine's time source: timings and retry delays use it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// DefaultWorkers is the number of atoms a parallel engine runs at once when
// Parallel is given 0.
const DefaultWorkers = 32

type config struct {
	workers         int
	values          map[string]any
	storage         Storage
	listeners       []Listener
	logger          *slog.Logger
	clock           Clock
	cancelOnFailure bool
}

// listener is one subscription; its address identifies it for removal.
type listener struct{ l Listener }

// Option configures an Engine.
type Option func(*config)

// Serial runs one atom at a time in the goroutine that calls Run (the default).
func Serial() Option { return func(c *config) { c.workers = 1 } }

// Parallel runs up to n independent atoms at once (n <= 0: DefaultWorkers).
func Parallel(n int) Option {
	return func(c *config) {
		if n <= 0 {
			n = DefaultWorkers
		}
		c.workers = n
	}
}

// WithStore gives the initial store values the flow's atoms may require.
func WithStore(values map[string]any) Option {
	return func(c *config) { c.values = maps.Clone(values) }
}

// WithStorage records the run in s (default: a new Memory). Pass a Storage
// holding an interrupted run to resume it.
func WithStorage(s Storage) Option { return func(c *config) { c.storage = s } }

// WithListener subscribes listeners to flow and atom events (see also
// Engine.AddListener).
func WithListener(ls ...Listener) Option {
	return func(c *config) { c.listeners = append(c.listeners, ls...) }
}

// WithLogger sets the logger for the engine's own problems (a panicking
// listener); default: discard.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithClock sets the clock (default: the system clock).
func WithClock(cl Clock) Option { return func(c *config) { c.clock = cl } }

// CancelOnFailure cancels the context of running atoms as soon as the flow
// must revert, instead of letting them finish.
func CancelOnFailure() Option { return func(c *config) { c.cancelOnFailure = true } }

// Engine runs one compiled flow. Its methods are safe for concurrent use;
// Run may be called again after ErrSuspended to resume.
type Engine struct {
	c   *flow.Compiled
	cfg config

	active  atomic.Bool
	suspend atomic.Bool
	wake    chan struct{}

	lmu sync.Mutex                  // serializes changes to ls
	ls  atomic.Pointer[[]*listener] // copied on write: Run reads it per event

	mu    sync.Mutex // guards the fields below between runs
	state flow.State
	st    []nstate
}

// New compiles f (with the store names of WithStore as inputs) and returns
// an engine for it.
func New(f *flow.Flow, opts ...Option) (*Engine, error) {
	cfg := newConfig(opts)
	c, err := flow.Compile(f, flow.WithInputs(slices.Collect(maps.Keys(cfg.values))...))
	if err != nil {
		return nil, err
	}
	return newEngine(c, cfg), nil
}

// NewCompiled returns an engine for a compiled flow; the store values must
// hold every name in c.Inputs().
func NewCompiled(c *flow.Compiled, opts ...Option) (*Engine, error) {
	cfg := newConfig(opts)
	var miss []flow.Missing
	for _, in := range c.Inputs() {
		if _, ok := cfg.values[in]; !ok {
			miss = append(miss, flow.Missing{Atom: c.Name(), Name: in})
		}
	}
	if len(miss) > 0 {
		return nil, &flow.MissingError{Flow: c.Name(), Missing: miss}
	}
	return newEngine(c, cfg), nil
}

// Run compiles f and runs it to the end with opts.
func Run(ctx context.Context, f *flow.Flow, opts ...Option) (*Engine, error) {
	e, err := New(f, opts...)
	if err != nil {
		return nil, err
	}
	return e, e.Run(ctx)
}

func newConfig(opts []Option) config {
	cfg := config{workers: 1}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.storage == nil {
		cfg.storage = NewMemory()
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if cfg.clock == nil {
		cfg.clock = realClock{}
	}
	return cfg
}

func newEngine(c *flow.Compiled, cfg config) *Engine {
	e := &Engine{c: c, cfg: cfg, wake: make(chan struct{}, 1)}
	ls := make([]*listener, len(cfg.listeners))
	for i, l := range cfg.listeners {
		ls[i] = &listener{l}
	}
	e.ls.Store(&ls)
	return e
}

// AddListener subscribes l to the engine's events, from the next event on,
// even during a Run, and returns the function that unsubscribes it (safe to
// call more than once). A listener that must act on its engine finds it in
// Event.Engine.
func (e *Engine) AddListener(l Listener) (remove func()) {
	entry := &listener{l}
	e.lmu.Lock()
	ls := append(slices.Clone(*e.ls.Load()), entry)
	e.ls.Store(&ls)
	e.lmu.Unlock()
	return func() {
		e.lmu.Lock()
		defer e.lmu.Unlock()
		ls := slices.DeleteFunc(slices.Clone(*e.ls.Load()), func(x *listener) bool { return x == entry })
		e.ls.Store(&ls)
	}
}

func (e *Engine) listeners() []*listener { return *e.ls.Load() }

func (e *Engine) listening() bool { return len(*e.ls.Load()) > 0 }

// Compiled returns the flow the engine runs.
func (e *Engine) Compiled() *flow.Compiled { return e.c }

// Suspend asks a running engine to stop: no new atom starts, running ones
// finish, and Run returns ErrSuspended with the flow SUSPENDED. A Suspend
// while no Run is active is forgotten.
func (e *Engine) Suspend() {
	if !e.active.Load() {
		return
	}
	e.suspend.Store(true)
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// State returns the flow's state after the last Run (PENDING before).
func (e *Engine) State() flow.State {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state
}

// AtomState returns an atom's state after the last Run.
func (e *Engine) AtomState(name string) (flow.State, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i, ok := e.c.Index(name)
	if !ok {
		return 0, fmt.Errorf("%w: no atom %q", flow.ErrNotFound, name)
	}
	if e.st == nil {
		return flow.StatePending, nil
	}
	return e.st[i].state, nil
}

// History returns a retry controller's history after the last Run.
func (e *Engine) History(name string) (flow.History, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i, ok := e.c.Index(name)
	if !ok || e.c.Nodes()[i].Kind != flow.NodeRetry {
		return flow.History{}, fmt.Errorf("%w: no retry controller %q", flow.ErrNotFound, name)
	}
	if e.st == nil {
		return flow.History{}, nil
	}
	return e.st[i].hist, nil
}

// Fetch returns the value name as seen after the whole flow (an atom's
// output, else a store value). A name that several atoms provide with none
// nearer than the others (siblings of an unordered flow) is a
// *flow.AmbiguousError: FetchMany returns all its values.
func (e *Engine) Fetch(name string) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.fetch(name)
}

func (e *Engine) fetch(name string) (any, error) {
	a, err := e.c.Lookup(name)
	if err != nil {
		return nil, err
	}
	if a.Source == flow.FromNode && e.st != nil && e.st[a.Node].state == flow.StateSuccess {
		n := &e.c.Nodes()[a.Node]
		if v, ok := flow.Output(e.st[a.Node].result, n.Provides, int(a.Out)); ok {
			return v, nil
		}
	}
	if a.Source == flow.FromStore {
		if v, ok := e.cfg.values[name]; ok {
			return v, nil
		}
	}
	return nil, fmt.Errorf("%w: %q", flow.ErrNotFound, name)
}

// FetchAll returns every value visible after the whole flow, by name: the
// store's values and the outputs of the atoms that succeeded, as Fetch
// gives them (a name provided ambiguously is left out; see FetchMany).
func (e *Engine) FetchAll() map[string]any {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]any, len(e.cfg.values))
	for _, name := range append(slices.Collect(maps.Keys(e.cfg.values)), e.c.Visible()...) {
		if v, err := e.fetch(name); err == nil {
			out[name] = v
		}
	}
	return out
}

// FetchMany returns every value of name, in provider order: the store's
// value first, then the outputs of the atoms that provide it anywhere in
// the flow and succeeded, in the compiled (topological) order. TaskFlow's
// fetch_all gives such a list for a name provided several times.
func (e *Engine) FetchMany(name string) ([]any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []any
	if v, ok := e.cfg.values[name]; ok {
		out = append(out, v)
	}
	nodes, outs := e.c.Providers(name)
	for k, i := range nodes {
		if e.st == nil || e.st[i].state != flow.StateSuccess {
			continue
		}
		if v, ok := flow.Output(e.st[i].result, e.c.Nodes()[i].Provides, int(outs[k])); ok {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: %q", flow.ErrNotFound, name)
	}
	return out, nil
}

// Result returns the whole result of the named atom (a task or a retry
// controller), which must be in state SUCCESS (TaskFlow's storage.get).
func (e *Engine) Result(atom string) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	i, ok := e.c.Index(atom)
	if !ok {
		return nil, fmt.Errorf("%w: no atom %q", flow.ErrNotFound, atom)
	}
	state := flow.StatePending
	if e.st != nil {
		state = e.st[i].state
	}
	if state != flow.StateSuccess {
		return nil, fmt.Errorf("%w: atom %q has no result (%s)", flow.ErrNotFound, atom, state)
	}
	return e.st[i].result, nil
}

// Fetch returns e.Fetch(name) as a T, decoding it when it is raw JSON
// read back from a durable Storage (see flow.As): a *servers.Server a task
// returned before a crash is a *servers.Server again.
func Fetch[T any](e *Engine, name string) (T, error) {
	var zero T
	v, err := e.Fetch(name)
	if err != nil {
		return zero, err
	}
	t, err := flow.As[T](v)
	if err != nil {
		return zero, fmt.Errorf("engine: fetch %q: %w", name, err)
	}
	return t, nil
}
