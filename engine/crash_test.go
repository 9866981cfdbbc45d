package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/engine/enginetest"
	"github.com/ostask/ostask/flow"
)

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

type storeKind struct {
	name string
	new  func() engine.Storage
}

var storeKinds = []storeKind{
	{"memory", func() engine.Storage { return engine.NewMemory() }},
	{"json", func() engine.Storage { return &jsonMemory{} }},
}

// A run killed right after any of its saves resumes, with a new engine on
// what was recorded, to the end an uninterrupted run reaches, executing
// and reverting no atom more often.
func TestCrashAtEverySave(t *testing.T) {
	for _, sk := range storeKinds {
		for _, c := range enginetest.Cases() {
			t.Run(sk.name+"/"+c.Name, func(t *testing.T) {
				enginetest.CrashAtEverySave(t, c, sk.new)
			})
		}
	}
}

// Resumes that crash in turn still get there.
func TestCrashRepeatedly(t *testing.T) {
	for _, c := range enginetest.Cases() {
		for k := 1; k <= 3; k++ {
			t.Run(fmt.Sprintf("%s/every %d", c.Name, k), func(t *testing.T) {
				enginetest.CrashEvery(t, c, k, storeKinds[0].new)
			})
		}
	}
}

// Suspending, or cancelling the context, right after any save, then
// running again (the same engine or a new one) ends as a crash does.
func TestInterruptAtEverySave(t *testing.T) {
	for _, how := range []enginetest.Interruption{enginetest.Suspend, enginetest.Cancel} {
		for _, fresh := range []bool{false, true} {
			for _, c := range enginetest.Cases() {
				t.Run(fmt.Sprintf("%s/fresh=%v/%s", how, fresh, c.Name), func(t *testing.T) {
					enginetest.InterruptAtEverySave(t, c, how, fresh, storeKinds[0].new)
				})
			}
		}
	}
}
