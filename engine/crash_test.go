package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

// errCrashed is what a crashStore answers once it has "crashed".
var errCrashed = errors.New("test: the process crashed")

// crashStore wraps a Storage. It counts the saves that went through and
// the executions and reverts they record, and can crash after save
// number limit: that save is kept, every later call fails, as if the
// process had died right after it. The engine still runs in memory after
// the crash, but nothing it does reaches the storage, so a fresh engine
// on the inner storage sees exactly what a real crash leaves behind.
// after, when set, is called once after save number at (outside the
// lock), to suspend or cancel the engine at that point instead.
type crashStore struct {
	inner engine.Storage

	mu      sync.Mutex
	limit   int  // crash after this many saves (0: never)
	atoms   bool // count only atom saves toward limit
	saves   int
	crashed bool
	at      int
	after   func()
	fired   bool
	execs   map[string]int // RUNNING -> SUCCESS/FAILURE recorded
	reverts map[string]int // REVERTING -> REVERTED/REVERT_FAILURE recorded
	log     []string       // "atom:FROM>TO" and ":FROM>TO" for the flow
}

func newCrashStore(inner engine.Storage) *crashStore {
	return &crashStore{inner: inner, execs: map[string]int{}, reverts: map[string]int{}}
}

func (c *crashStore) Load(ctx context.Context) (engine.Snapshot, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return engine.Snapshot{}, errCrashed
	}
	return c.inner.Load(ctx)
}

// saved is called with c.mu held after a save went through.
func (c *crashStore) saved(entry string, atom bool) (hook func()) {
	if atom || !c.atoms {
		c.saves++
	}
	c.log = append(c.log, entry)
	if c.limit > 0 && c.saves == c.limit {
		c.crashed = true
	}
	if c.after != nil && !c.fired && c.saves == c.at {
		c.fired = true
		return c.after
	}
	return nil
}

func (c *crashStore) do(entry string, save func() error, count func()) error {
	atom := count != nil
	c.mu.Lock()
	if c.crashed {
		c.mu.Unlock()
		return errCrashed
	}
	if err := save(); err != nil {
		c.mu.Unlock()
		return err
	}
	if count != nil {
		count()
	}
	hook := c.saved(entry, atom)
	c.mu.Unlock()
	if hook != nil {
		hook()
	}
	return nil
}

func (c *crashStore) SaveFlow(ctx context.Context, from, to flow.State) error {
	return c.do(fmt.Sprintf(":%s>%s", from, to), func() error { return c.inner.SaveFlow(ctx, from, to) }, nil)
}

func (c *crashStore) SaveAtom(ctx context.Context, from flow.State, rec engine.AtomRecord) error {
	count := func() {
		switch {
		case from == flow.StateRunning && (rec.State == flow.StateSuccess || rec.State == flow.StateFailure):
			c.execs[rec.Name]++
		case from == flow.StateReverting && (rec.State == flow.StateReverted || rec.State == flow.StateRevertFailure):
			c.reverts[rec.Name]++
		}
	}
	return c.do(fmt.Sprintf("%s:%s>%s", rec.Name, from, rec.State), func() error { return c.inner.SaveAtom(ctx, from, rec) }, count)
}

func (c *crashStore) SaveValues(ctx context.Context, values map[string]any) error {
	return c.do("values", func() error { return c.inner.SaveValues(ctx, values) }, nil)
}

func (c *crashStore) isCrashed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.crashed
}

func (c *crashStore) hasFired() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fired
}

func (c *crashStore) counts() (execs, reverts map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.execs), maps.Clone(c.reverts)
}

func (c *crashStore) entries() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// jsonMemory is a Storage that keeps every record as JSON, as a durable
// store would: what survives a resume is only what encodes.
type jsonMemory struct {
	mu     sync.Mutex
	flow   flow.State
	atoms  map[string][]byte
	values []byte
}

func (m *jsonMemory) Load(context.Context) (engine.Snapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	snap := engine.Snapshot{Flow: m.flow, Atoms: map[string]engine.AtomRecord{}}
	for name, b := range m.atoms {
		var rec engine.AtomRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return snap, err
		}
		snap.Atoms[name] = rec
	}
	if m.values != nil {
		if err := json.Unmarshal(m.values, &snap.Values); err != nil {
			return snap, err
		}
	}
	return snap, nil
}

func (m *jsonMemory) SaveFlow(_ context.Context, from, to flow.State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.flow != from {
		return fmt.Errorf("%w: flow is %s, not %s", engine.ErrConflict, m.flow, from)
	}
	m.flow = to
	return nil
}

func (m *jsonMemory) SaveAtom(_ context.Context, from flow.State, rec engine.AtomRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := flow.StatePending
	if b, ok := m.atoms[rec.Name]; ok {
		var old engine.AtomRecord
		if err := json.Unmarshal(b, &old); err != nil {
			return err
		}
		cur = old.State
	}
	if cur != from {
		return fmt.Errorf("%w: atom %q is %s, not %s", engine.ErrConflict, rec.Name, cur, from)
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if m.atoms == nil {
		m.atoms = map[string][]byte{}
	}
	m.atoms[rec.Name] = b
	return nil
}

func (m *jsonMemory) SaveValues(_ context.Context, values map[string]any) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := json.Marshal(values)
	m.values = b
	return err
}

// outcome is what a finished run looks like from outside, in a form that
// survives a trip through JSON (failures by atom and message).
type outcome struct {
	State   flow.State
	Err     string // FlowError state, failures and revert failures
	Atoms   map[string]flow.State
	History map[string]string
}

func (o outcome) String() string {
	b, _ := json.MarshalIndent(o, "", "  ")
	return string(b)
}

func outcomeOf(t *testing.T, e *engine.Engine, err error) outcome {
	t.Helper()
	o := outcome{State: e.State(), Atoms: map[string]flow.State{}, History: map[string]string{}}
	if err != nil {
		var fe *engine.FlowError
		if !errors.As(err, &fe) {
			t.Fatalf("run: %v", err)
		}
		if fe.Err != nil {
			t.Fatalf("engine failure: %v", err)
		}
		fs := func(fl []*flow.Failure) string {
			var s []string
			for _, f := range fl {
				s = append(s, f.Error())
			}
			sort.Strings(s)
			return strings.Join(s, ", ")
		}
		o.Err = fmt.Sprintf("%s [%s] [%s]", fe.State, fs(fe.Failures), fs(fe.RevertFailures))
	}
	for _, n := range e.Compiled().Nodes() {
		if n.Kind == flow.NodeJoin {
			continue
		}
		s, _ := e.AtomState(n.Name)
		o.Atoms[n.Name] = s
		if n.Kind == flow.NodeRetry {
			h, _ := e.History(n.Name)
			var parts []string
			for _, a := range h.Attempts {
				var fs []string
				for _, f := range a.Failures {
					fs = append(fs, f.Atom)
				}
				sort.Strings(fs)
				parts = append(parts, fmt.Sprintf("%v%v", a.Result, fs))
			}
			o.History[n.Name] = strings.Join(parts, " ")
		}
	}
	return o
}

// crashCase is a flow to interrupt at every save.
type crashCase struct {
	name  string
	build func() *flow.Flow
	opts  []engine.Option
}

// step is a task whose result is its name and which fails when fails says
// so given its inputs (never from a call count, so that a crashed run and
// its resume see the same behaviour).
func step(name string, fails func(flow.Inputs) bool, opts ...flow.Option) flow.Task {
	return flow.TaskFunc(name, func(_ context.Context, in flow.Inputs) (string, error) {
		if fails != nil && fails(in) {
			return "", fmt.Errorf("%s: %w", name, errBoom)
		}
		return name, nil
	}, opts...)
}

func always(flow.Inputs) bool { return true }

// below fails while the number input name is below n. A number read back
// from JSON is a float64.
func below(name string, n int) func(flow.Inputs) bool {
	return func(in flow.Inputs) bool { return num(in, name) < float64(n) }
}

func num(in flow.Inputs, name string) float64 {
	v, _ := in.Lookup(name)
	switch v := v.(type) {
	case int:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

// badRevert is a task whose revert fails.
func badRevert(name string) flow.Task {
	return flow.TaskFunc(name, func(context.Context, flow.Inputs) (string, error) { return name, nil }).
		OnRevert(func(context.Context, flow.Inputs, string, flow.Outcome) error {
			return errors.New("cannot undo " + name)
		})
}

func crashCases() []crashCase {
	serial, parallel := []engine.Option{engine.Serial()}, []engine.Option{engine.Parallel(4)}
	linear := func() *flow.Flow {
		return flow.Linear("l", step("a", nil), step("b", nil), step("c", always), step("d", nil))
	}
	graph := func() *flow.Flow {
		return flow.Graph("g",
			step("a", nil, flow.Provides("x")),
			step("b", nil, flow.Requires("x"), flow.Provides("y")),
			step("c", always, flow.Requires("x"), flow.Provides("z")),
			step("d", nil, flow.Requires("y", "z")),
		)
	}
	unordered := func() *flow.Flow {
		return flow.Linear("l", step("first", nil),
			flow.Unordered("u", step("u1", nil), step("u2", nil), step("u3", always), step("u4", nil)),
			step("after", nil))
	}
	times := func(n int, fails func(flow.Inputs) bool) func() *flow.Flow {
		return func() *flow.Flow {
			return flow.Linear("l",
				step("before", nil),
				flow.Linear("sub", step("s1", nil), step("s2", fails, flow.Requires("attempt"))).
					WithRetry(flow.Times("r", n, flow.ProvidesAs("attempt"))),
				step("after", nil, flow.Requires("attempt")),
			)
		}
	}
	forEach := func() *flow.Flow {
		return flow.Linear("l", step("before", nil),
			flow.Linear("sub", step("try", func(in flow.Inputs) bool { return flow.GetOr(in, "host", "") != "c" }, flow.Requires("host"))).
				WithRetry(flow.ForEach("hosts", []string{"a", "b", "c", "d"}, flow.ProvidesAs("host"))))
	}
	paramForEach := func() *flow.Flow {
		return flow.Linear("l", step("before", nil),
			flow.Linear("sub", step("try", below("v", 3), flow.Requires("v"))).
				WithRetry(flow.ParameterizedForEach("p", flow.ValuesFrom("candidates"), flow.ProvidesAs("v"))))
	}
	nested := func(innerOpts ...flow.RetryOption) func() *flow.Flow {
		return func() *flow.Flow {
			fails := func(in flow.Inputs) bool {
				return num(in, "oa") < 2 || num(in, "ia") < 2
			}
			return flow.Linear("outer",
				step("o1", nil),
				flow.Linear("inner", step("i1", nil), step("i2", fails, flow.Requires("oa", "ia"))).
					WithRetry(flow.Times("ri", 2, append([]flow.RetryOption{flow.ProvidesAs("ia")}, innerOpts...)...)),
				step("o2", nil),
			).WithRetry(flow.Times("ro", 2, flow.ProvidesAs("oa")))
		}
	}
	unorderedRetry := func() *flow.Flow {
		return flow.Linear("l", step("first", nil),
			flow.Unordered("u", step("u1", nil), step("u2", nil), step("u3", below("attempt", 2), flow.Requires("attempt"))).
				WithRetry(flow.Times("r", 3, flow.ProvidesAs("attempt"))),
			step("after", nil))
	}
	revertFails := func() *flow.Flow {
		return flow.Linear("l", step("a", nil), badRevert("b"), step("c", nil), step("d", always))
	}
	deciders := func() *flow.Flow {
		return flow.Linear("l",
			flow.Graph("g", step("a", nil), step("b", nil), step("c", nil), flow.Linear("sub", step("x", nil), step("y", nil))).
				Link("a", "b", flow.WithDecider(no), flow.WithDepth(flow.DepthFlow)).Link("b", "c").Link("b", "sub"),
			step("z", always))
	}
	decidersRetry := func() *flow.Flow {
		second := func(r map[string]any) bool { return r["a"] == "a2" }
		attempt := flow.TaskFunc("a", func(_ context.Context, in flow.Inputs) (string, error) {
			return fmt.Sprint("a", num(in, "attempt")), nil
		}, flow.Requires("attempt"))
		return flow.Linear("sub",
			flow.Graph("g", attempt, step("b", nil), step("c", nil)).
				Link("a", "b", flow.WithDecider(second)).Link("b", "c"),
			step("d", below("attempt", 2), flow.Requires("attempt")),
		).WithRetry(flow.Times("r", 2, flow.ProvidesAs("attempt")))
	}
	store := engine.WithStore(map[string]any{"candidates": []any{1, 2, 3}})
	return []crashCase{
		{"linear revert/serial", linear, serial},
		{"linear revert/parallel", linear, parallel},
		{"graph revert/parallel", graph, parallel},
		{"unordered revert/parallel", unordered, parallel},
		{"unordered revert/serial", unordered, serial},
		{"revert failure/serial", revertFails, serial},
		{"times third attempt/serial", times(3, below("attempt", 3)), serial},
		{"times third attempt/parallel", times(3, below("attempt", 3)), parallel},
		{"times gives up/serial", times(2, always), serial},
		{"foreach/serial", forEach, serial},
		{"parameterized foreach/serial", paramForEach, append([]engine.Option{store}, serial...)},
		{"nested retries/serial", nested(), serial},
		{"nested revert all/serial", nested(flow.RevertAllOnGiveUp()), serial},
		{"unordered retry/parallel", unorderedRetry, parallel},
		{"deciders revert/serial", deciders, serial},
		{"deciders revert/parallel", deciders, parallel},
		{"deciders retry/serial", decidersRetry, serial},
	}
}

// run1 runs c once on s, with ctx, and returns the engine and its error.
func run1(t *testing.T, ctx context.Context, c crashCase, s engine.Storage, hook func(*engine.Engine)) (*engine.Engine, error) {
	t.Helper()
	e, err := engine.New(c.build(), append(slices.Clone(c.opts), engine.WithStorage(s))...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if hook != nil {
		hook(e)
	}
	return e, e.Run(ctx)
}

// checkCounts asserts that no atom executed or reverted more often than in
// the uninterrupted run. An execution counts when its outcome is recorded:
// an Execute the crash (or the cancellation) interrupted runs again by
// design, and only the run that gets recorded did anything the flow keeps.
func checkCounts(t *testing.T, what string, base, got map[string]int, log []string) {
	t.Helper()
	for atom, n := range got {
		if n > base[atom] {
			t.Fatalf("%s: %s %d times, uninterrupted %d\nsaves: %s", atom, what, n, base[atom], strings.Join(log, " "))
		}
	}
}

func addCounts(dst map[string]int, src map[string]int) {
	for k, v := range src {
		dst[k] += v
	}
}

type storeKind struct {
	name string
	new  func() engine.Storage
}

var storeKinds = []storeKind{
	{"memory", func() engine.Storage { return engine.NewMemory() }},
	{"json", func() engine.Storage { return &jsonMemory{} }},
}

// TestCrashAtEverySave kills a run right after each of its saves in turn
// and resumes it with a fresh engine on what was recorded: the resume must
// end as the uninterrupted run does, and no atom may execute or revert
// more often than there.
func TestCrashAtEverySave(t *testing.T) {
	ctx := context.Background()
	for _, sk := range storeKinds {
		for _, c := range crashCases() {
			t.Run(sk.name+"/"+c.name, func(t *testing.T) {
				bs := newCrashStore(sk.new())
				be, berr := run1(t, ctx, c, bs, nil)
				want := outcomeOf(t, be, berr)
				bExec, bRev := bs.counts()
				for n := 1; ; n++ {
					cs := newCrashStore(sk.new())
					inner := cs.inner
					cs.limit = n
					_, _ = run1(t, ctx, c, cs, nil)
					if !cs.isCrashed() {
						if n == 1 {
							t.Fatal("the run never saved")
						}
						break
					}
					rs := newCrashStore(inner)
					re, rerr := run1(t, ctx, c, rs, nil)
					log := append(cs.entries(), append([]string{"CRASH"}, rs.entries()...)...)
					if got := outcomeOf(t, re, rerr); got.String() != want.String() {
						t.Fatalf("crash after save %d: got %s\nwant %s\nsaves: %s", n, got, want, strings.Join(log, " "))
					}
					execs, reverts := cs.counts()
					e2, r2 := rs.counts()
					addCounts(execs, e2)
					addCounts(reverts, r2)
					checkCounts(t, fmt.Sprintf("crash after save %d: executed", n), bExec, execs, log)
					checkCounts(t, fmt.Sprintf("crash after save %d: reverted", n), bRev, reverts, log)
				}
			})
		}
	}
}

// TestCrashRepeatedly crashes every k atom saves (a resume records one or
// two flow states before it gets anywhere), resuming each time from what
// the previous runs recorded, until the flow finishes.
func TestCrashRepeatedly(t *testing.T) {
	ctx := context.Background()
	for _, c := range crashCases() {
		for k := 1; k <= 3; k++ {
			t.Run(fmt.Sprintf("%s/every %d", c.name, k), func(t *testing.T) {
				bs := newCrashStore(engine.NewMemory())
				be, berr := run1(t, ctx, c, bs, nil)
				want := outcomeOf(t, be, berr)
				bExec, bRev := bs.counts()
				mem := engine.NewMemory()
				execs, reverts := map[string]int{}, map[string]int{}
				var log []string
				for i := 0; ; i++ {
					if i > 1000 {
						t.Fatal("no progress")
					}
					cs := newCrashStore(mem)
					cs.limit, cs.atoms = k, true
					e, err := run1(t, ctx, c, cs, nil)
					ex, rv := cs.counts()
					addCounts(execs, ex)
					addCounts(reverts, rv)
					log = append(log, cs.entries()...)
					if cs.isCrashed() {
						log = append(log, "CRASH")
						continue
					}
					if got := outcomeOf(t, e, err); got.String() != want.String() {
						t.Fatalf("got %s\nwant %s\nsaves: %s", got, want, strings.Join(log, " "))
					}
					break
				}
				checkCounts(t, "executed", bExec, execs, log)
				checkCounts(t, "reverted", bRev, reverts, log)
			})
		}
	}
}

// TestInterruptAtEverySave suspends the engine, or cancels its context,
// right after each save in turn, then runs it again (the same engine, and
// a fresh one on the same storage): same checks as for a crash.
func TestInterruptAtEverySave(t *testing.T) {
	kinds := []struct {
		name  string
		fresh bool
	}{{"suspend", false}, {"suspend/fresh engine", true}, {"cancel", false}, {"cancel/fresh engine", true}}
	for _, k := range kinds {
		for _, c := range crashCases() {
			t.Run(k.name+"/"+c.name, func(t *testing.T) {
				bs := newCrashStore(engine.NewMemory())
				be, berr := run1(t, context.Background(), c, bs, nil)
				want := outcomeOf(t, be, berr)
				bExec, bRev := bs.counts()
				for n := 1; ; n++ {
					mem := engine.NewMemory()
					cs := newCrashStore(mem)
					cs.at = n
					ctx, cancel := context.WithCancel(context.Background())
					e, err := run1(t, ctx, c, cs, func(e *engine.Engine) {
						if strings.HasPrefix(k.name, "suspend") {
							cs.after = e.Suspend
						} else {
							cs.after = cancel
						}
					})
					cancel()
					if !cs.hasFired() {
						break
					}
					if errors.Is(err, engine.ErrSuspended) {
						if k.fresh {
							e, err = run1(t, context.Background(), c, cs, nil)
						} else {
							err = e.Run(context.Background())
						}
					}
					log := cs.entries()
					if got := outcomeOf(t, e, err); got.String() != want.String() {
						t.Fatalf("%s after save %d: got %s\nwant %s\nsaves: %s", k.name, n, got, want, strings.Join(log, " "))
					}
					execs, reverts := cs.counts()
					checkCounts(t, fmt.Sprintf("%s after save %d: executed", k.name, n), bExec, execs, log)
					checkCounts(t, fmt.Sprintf("%s after save %d: reverted", k.name, n), bRev, reverts, log)
				}
			})
		}
	}
}
