package cloudsim

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// Sim is one running simulated cloud. Start it with Start; stop it with
// Close. All of its methods are safe for concurrent use.
type Sim struct {
	cfg    Config
	clock  Clock
	timing Timing
	faults *FaultPlan

	mu       sync.Mutex // guards everything below
	rng      *rand.Rand
	opCounts map[string]int
	events   eventHeap
	eventSeq uint64
	seq      uint64

	projects   map[string]*project
	users      map[string]*user
	tokens     map[string]*token
	tokenOrder fifo[*token] // issue order, for eviction

	flavors []*flavor
	servers map[string]*server // deleted servers stay until purged
	// What server lists read: live servers in creation order, of all
	// projects and per project, and the deleted ones retained for
	// changes-since, oldest deletion first (see server_index.go).
	liveAll       serverIndex
	liveByProject map[string]*serverIndex
	retained      fifo[*server] // deleted servers, oldest deletion first
	changeLog     []change
	instances     map[string]int       // live (not deleted) servers per project, for the quota
	buildReqs     map[string][]*server // servers in their build-request phase, per project, oldest first
	volumes       map[string]*volume
	volumeOrder   []*volume
	images        map[string]*image
	imageOrder    []*image

	counters counters
	notes    notePipe // notifications (notify.go)

	ln      net.Listener
	srv     *http.Server
	baseURL string
	wake    chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
	closed  sync.Once
}

// New builds a simulator without serving it; most callers want Start.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &Sim{
		cfg:           cfg,
		clock:         cfg.Clock,
		timing:        *cfg.Timing,
		faults:        cfg.Faults,
		rng:           rand.New(rand.NewPCG(uint64(cfg.Seed), 0x05ca5c)),
		opCounts:      map[string]int{},
		servers:       map[string]*server{},
		instances:     map[string]int{},
		buildReqs:     map[string][]*server{},
		liveByProject: map[string]*serverIndex{},
		volumes:       map[string]*volume{},
		images:        map[string]*image{},
		tokens:        map[string]*token{},
		wake:          make(chan struct{}, 1),
		stop:          make(chan struct{}),
	}
	s.counters.init()
	s.notes.init(cfg)
	s.seedIdentity()
	s.seedCompute()
	s.seedImages()
	return s, nil
}

// Start builds a simulator, listens on cfg.Listen and serves it until Close
// or until ctx is cancelled.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	s, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("cloudsim: listen on %s: %w", s.cfg.Listen, err)
	}
	s.ln = ln
	s.baseURL = "http://" + ln.Addr().String()
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: s.cfg.ReadTimeout, ReadTimeout: s.cfg.ReadTimeout,
		// Longer than Go clients keep idle connections (90 s), so that a
		// client never reuses one the server has just closed; without it
		// the idle timeout would be ReadTimeout.
		IdleTimeout: idleTimeout,
		ErrorLog:    slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelError)}
	s.startNotifications()
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.cfg.Logger.Error("cloudsim: serve", "err", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.run()
	}()
	if ctx.Done() != nil {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			select {
			case <-ctx.Done():
				s.shutdown() // not Close: it would wait for this goroutine
			case <-s.stop:
			}
		}()
	}
	return s, nil
}

// idleTimeout is how long the server keeps an idle keep-alive connection.
const idleTimeout = 2 * time.Minute

// Close stops serving and stops the background walks, and waits until
// every goroutine of the simulator has ended. It is idempotent.
func (s *Sim) Close() error {
	err := s.shutdown()
	s.wg.Wait()
	return err
}

// shutdown stops the simulator without waiting for its goroutines.
func (s *Sim) shutdown() error {
	var err error
	s.closed.Do(func() {
		close(s.stop)
		if s.srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if e := s.srv.Shutdown(ctx); e != nil {
				err = s.srv.Close()
			}
		}
	})
	return err
}

// URL is the simulator's base URL, e.g. http://127.0.0.1:40123.
func (s *Sim) URL() string { return s.baseURL }

// AuthURL is the Keystone v3 endpoint to authenticate against.
func (s *Sim) AuthURL() string { return s.baseURL + "/identity/v3" }

// Clock returns the simulator's clock.
func (s *Sim) Clock() Clock { return s.clock }

// run is the background driver: it applies every scheduled step when its
// time comes. Requests also apply due steps before they read state, so
// what a client sees never lags the clock.
func (s *Sim) run() {
	for {
		s.mu.Lock()
		s.advanceLocked()
		var wait time.Duration = -1
		if len(s.events) > 0 {
			wait = s.events[0].at.Sub(s.clock.Now())
			if wait < 0 {
				wait = 0
			}
		}
		s.mu.Unlock()
		var timerC <-chan time.Time
		var t Timer
		if wait >= 0 {
			t = s.clock.NewTimer(wait)
			timerC = t.C()
		}
		select {
		case <-s.stop:
			if t != nil {
				t.Stop()
			}
			return
		case <-s.wake:
		case <-timerC:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// event is one scheduled background step.
type event struct {
	at  time.Time
	seq uint64
	fn  func(now time.Time)
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// lockNow takes s.mu and brings the state up to the clock (every step
// that is due is applied), so a handler reads what the cloud looks like
// now. It returns the unlock: defer s.lockNow()().
func (s *Sim) lockNow() func() {
	s.mu.Lock()
	s.advanceLocked()
	return s.mu.Unlock
}

// advanceLocked applies every step that is due. Steps run with the
// current time (not their due time), so every change is stamped no
// earlier than any read that could have missed it. Callers hold s.mu.
func (s *Sim) advanceLocked() {
	now := s.clock.Now()
	for len(s.events) > 0 && !s.events[0].at.After(now) {
		e := heap.Pop(&s.events).(*event)
		e.fn(now)
	}
	s.purgeDeletedLocked(now)
}

// after schedules fn to run d (spread by the timing jitter) from now.
// Callers hold s.mu.
func (s *Sim) after(d time.Duration, fn func(now time.Time)) {
	if j := s.timing.Jitter; j > 0 && d > 0 {
		d = time.Duration(float64(d) * (1 + j*(2*s.rng.Float64()-1)))
	}
	s.eventSeq++
	e := &event{at: s.clock.Now().Add(d), seq: s.eventSeq, fn: fn}
	first := len(s.events) == 0 || e.at.Before(s.events[0].at)
	heap.Push(&s.events, e)
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// step is one stage of a walk: wait D, then apply Fn.
type step struct {
	D  time.Duration
	Fn func(now time.Time)
}

// walk runs steps one after another on r, each D after the previous one
// ran. It stops as soon as another operation bumps r.gen, so a delete
// cancels a build in flight. It returns the gen the walk runs under.
// Callers hold s.mu.
func (s *Sim) walk(r *resBase, steps ...step) uint64 {
	r.gen++
	gen := r.gen
	var next func(i int)
	next = func(i int) {
		if i >= len(steps) {
			return
		}
		s.after(steps[i].D, func(now time.Time) {
			if r.gen != gen {
				return
			}
			steps[i].Fn(now)
			next(i + 1)
		})
	}
	next(0)
	return gen
}

// nextSeq returns a new creation sequence number. Callers hold s.mu.
func (s *Sim) nextSeq() uint64 {
	s.seq++
	return s.seq
}

// sleep waits d on the simulator's clock, or until ctx or the simulator ends.
func (s *Sim) sleep(ctx context.Context, d time.Duration) {
	t := s.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
	case <-ctx.Done():
	case <-s.stop:
	}
}
