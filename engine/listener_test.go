package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/ostask/ostask/engine"
	"github.com/ostask/ostask/flow"
)

// events collects events as "atom:FROM>TO" strings, safely.
type events struct {
	mu  sync.Mutex
	log []string
}

func (ev *events) OnEvent(e engine.Event) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	ev.log = append(ev.log, fmt.Sprintf("%s:%s>%s", e.Atom, e.From, e.To))
}

func (ev *events) get() []string {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	return append([]string(nil), ev.log...)
}

// Listeners can be added and removed after New, even while the engine
// runs: a listener added by another one's callback gets the events after
// it, a removed one none.
func TestAddRemoveListener(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			j := &journal{}
			e, err := engine.New(flow.Linear("l", rec(j, "a", false), rec(j, "b", false), rec(j, "c", false)), m.opt)
			if err != nil {
				t.Fatal(err)
			}
			all, late, gone := &events{}, &events{}, &events{}
			removeAll := e.AddListener(all)
			removeGone := e.AddListener(gone)
			removeGone()
			removeGone() // twice is fine
			var removeLate func()
			e.AddListener(engine.ListenerFunc(func(ev engine.Event) {
				switch {
				case ev.Atom == "a" && ev.To == flow.StateSuccess:
					removeLate = ev.Engine.AddListener(late)
				case ev.Atom == "b" && ev.To == flow.StateSuccess:
					removeLate()
				}
			}))
			if err := e.Run(context.Background()); err != nil {
				t.Fatal(err)
			}
			removeAll()
			equal(t, all.get(), []string{":PENDING>RUNNING", "a:PENDING>RUNNING", "a:RUNNING>SUCCESS",
				"b:PENDING>RUNNING", "b:RUNNING>SUCCESS", "c:PENDING>RUNNING", "c:RUNNING>SUCCESS", ":RUNNING>SUCCESS"})
			equal(t, late.get(), []string{"b:PENDING>RUNNING", "b:RUNNING>SUCCESS"})
			equal(t, gone.get(), nil)
		})
	}
}

// A listener given to engine.Run, which returns the engine only at the
// end, can still suspend it: the event carries its engine.
func TestListenerSuspendsItsEngine(t *testing.T) {
	j := &journal{}
	pause := engine.ListenerFunc(func(ev engine.Event) {
		if ev.Atom == "a" && ev.To == flow.StateSuccess {
			ev.Engine.Suspend()
		}
	})
	e, err := engine.Run(context.Background(), flow.Linear("l", rec(j, "a", false), rec(j, "b", false)), engine.WithListener(pause))
	if !errors.Is(err, engine.ErrSuspended) || e.State() != flow.StateSuspended {
		t.Fatal(err)
	}
	equal(t, j.get(), []string{"x:a"})
}

// Adding and removing listeners from other goroutines while the engine
// runs is safe (run with -race).
func TestListenersConcurrently(t *testing.T) {
	f := flow.Unordered("u")
	for i := range 50 {
		f.Add(trivial(fmt.Sprint("t", i)))
	}
	e, err := engine.New(f, engine.Parallel(4))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				e.AddListener(&events{})()
			}
		}
	}()
	err = e.Run(context.Background())
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
}
