package ops

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
)

// NotificationHub shares one notification source among the Clouds of a
// process: one broker connection and one queue, however many projects
// the process acts for, where a Cloud of its own would bind a queue each
// and the broker would send every message once per Cloud. Every message
// is handed to every Cloud listening, which skips another project's
// before decoding it (NotificationStats.Foreign).
//
// The source is listened to while at least one Cloud listens, and no
// longer once the last one closed. Each Cloud handles its messages in its
// own goroutine, as with a source of its own, through a queue of
// hubQueue messages: a Cloud slow to handle one (a slow OnDone callback)
// delays the others only once its queue is full; from then on the
// connection waits for it, so that the other Clouds' events, and the news
// of a lost connection, wait too (their completions are late, never
// lost: the reconciliation rounds still run). A lost connection is
// reported to every Cloud, each of which polls meanwhile and listens
// again after its own backoff: the first to come back connects again, and
// the others join that connection.
//
// A Cloud uses the hub through Config. Close the hub after its Clouds.
type NotificationHub struct {
	cfg    NotificationConfig // validated, with defaults; cfg.Stream is the source
	source string             // the source as logs show it (the URL's password masked)
	log    *slog.Logger

	mu     sync.Mutex
	cur    *hubConn              // the connection Clouds join, nil when none
	live   map[*hubConn]struct{} // connections whose goroutine runs
	closed bool
	// state is the last connection attempt's outcome: the hub logs a
	// change of it, not every attempt (while the broker is down, every
	// Cloud tries again on its own backoff).
	state hubState
	wg    sync.WaitGroup // the connections' goroutines

	connections atomic.Int64
}

// hubConn is one listening of the hub's source, shared by the Clouds that
// joined it.
type hubConn struct {
	cancel context.CancelFunc
	up     chan struct{} // closed once the source receives
	done   chan struct{} // closed once the source's Listen returned; err is set
	err    error

	// subs are the Clouds listening through it, replaced (never changed)
	// under the hub's mu, read without a lock for each message.
	subs atomic.Pointer[[]*hubSub]
}

type hubState int

const (
	hubNew  hubState = iota // no attempt ended or received yet
	hubUp                   // receiving
	hubDown                 // the last attempt failed or was lost
)

// hubQueue is how many messages a Cloud of a hub may have waiting.
const hubQueue = 1024

// hubSub is one Cloud's Listen: the connection queues its messages, and
// Listen, in the Cloud's goroutine, hands them to the Cloud; gone is
// closed when it stops taking them.
type hubSub struct {
	queue chan hubMsg
	gone  chan struct{}
}

type hubMsg struct {
	key  string
	body []byte
}

// ErrHubClosed is returned by a NotificationHub's Listen after Close.
var ErrHubClosed = errors.New("ostask: the notification hub is closed")

// NewNotificationHub makes a hub on cfg's source (its URL, or its Stream).
// cfg's Exchange, Topics and ReconcileInterval hold for every Cloud of the
// hub. The hub logs on log (nil: nowhere) when its connection is made or
// lost, once for all its Clouds, which log it only at debug level.
func NewNotificationHub(cfg NotificationConfig, log *slog.Logger) (*NotificationHub, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	if cfg.URL != "" {
		cfg.Stream = newAMQPStream(cfg)
	}
	return &NotificationHub{cfg: cfg, source: sourceName(cfg), log: log}, nil
}

// Config is the notification configuration of a Cloud that reads from
// the hub (ops.Config.Notifications).
func (h *NotificationHub) Config() NotificationConfig {
	return NotificationConfig{Exchange: h.cfg.Exchange, Topics: h.cfg.Topics, ReconcileInterval: h.cfg.ReconcileInterval, Stream: h}
}

// String is the hub's source as logs show it: the URL with its password
// masked.
func (h *NotificationHub) String() string { return h.source }

// Connections counts the times the hub started listening to its source
// (connection attempts, failed ones included): 1 for any number of Clouds
// while the first connection lasts.
func (h *NotificationHub) Connections() int64 { return h.connections.Load() }

// Listen implements NotificationStream for a Cloud of the hub: it joins
// the hub's connection (making one if there is none), calls up once the
// source receives and deliver for every message from then on, until ctx
// ends (nil) or the connection is lost (its error, the same for every
// Cloud of the connection).
func (h *NotificationHub) Listen(ctx context.Context, up func(), deliver func(string, []byte)) error {
	s := &hubSub{queue: make(chan hubMsg, hubQueue), gone: make(chan struct{})}
	c, err := h.join(s)
	if err != nil {
		return err
	}
	defer h.leave(c, s)
	select {
	case <-c.up:
		up()
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return nil
	}
	for {
		select {
		case m := <-s.queue:
			deliver(m.key, m.body)
		case <-c.done:
			// What came before the loss first, as a stream of its own
			// would have delivered it.
			for {
				select {
				case m := <-s.queue:
					deliver(m.key, m.body)
				default:
					return c.err
				}
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// join adds s to the current connection, or to a new one.
func (h *NotificationHub) join(s *hubSub) (*hubConn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrHubClosed
	}
	c := h.cur
	if c == nil {
		ctx, cancel := context.WithCancel(context.Background())
		c = &hubConn{cancel: cancel, up: make(chan struct{}), done: make(chan struct{})}
		c.subs.Store(&[]*hubSub{s})
		h.cur = c
		if h.live == nil {
			h.live = map[*hubConn]struct{}{}
		}
		h.live[c] = struct{}{}
		h.connections.Add(1)
		h.wg.Add(1)
		go h.listen(ctx, c)
		return c, nil
	}
	subs := append(slices.Clone(*c.subs.Load()), s)
	c.subs.Store(&subs)
	return c, nil
}

// leave takes s off c; the last Cloud to leave ends the connection.
func (h *NotificationHub) leave(c *hubConn, s *hubSub) {
	h.mu.Lock()
	subs := slices.DeleteFunc(slices.Clone(*c.subs.Load()), func(o *hubSub) bool { return o == s })
	c.subs.Store(&subs)
	if len(subs) == 0 {
		// Nobody listens: stop, and let the next Cloud start afresh
		// rather than join a connection on its way down.
		c.cancel()
		if h.cur == c {
			h.cur = nil
		}
	}
	h.mu.Unlock()
	close(s.gone) // a delivery waiting for room in its queue gives up
}

// listen is c's goroutine: it listens to the source until c is cancelled
// or the source fails, then ends c for its Clouds.
func (h *NotificationHub) listen(ctx context.Context, c *hubConn) {
	defer h.wg.Done()
	var once sync.Once
	err := h.cfg.Stream.Listen(ctx, func() {
		once.Do(func() {
			h.mu.Lock()
			news := h.state != hubUp
			h.state = hubUp
			h.mu.Unlock()
			h.logf(news, slog.LevelInfo, "ostask: notifications connected, shared by the clouds of this process; their server monitors reconcile every "+
				h.cfg.ReconcileInterval.String(), "source", h.source)
			close(c.up) // after the log line: the Clouds' own lines follow it
		})
	}, func(key string, body []byte) {
		m := hubMsg{key, body}
		for _, s := range *c.subs.Load() {
			select {
			case s.queue <- m:
			case <-s.gone:
			case <-ctx.Done(): // Close, or nobody listens: stop waiting for room
				return
			}
		}
	})
	h.mu.Lock()
	if h.cur == c {
		h.cur = nil // the next Cloud to listen connects again
	}
	delete(h.live, c)
	closed := h.closed
	news := false
	if !closed && ctx.Err() == nil {
		news = h.state != hubDown
		h.state = hubDown
	}
	h.mu.Unlock()
	switch {
	case closed:
		err = ErrHubClosed // whatever the source made of its cancellation
	case err == nil:
		err = errors.New("the stream ended")
	default:
		err = &scrubbedError{err: err, secrets: secretsOf(h.cfg.URL)}
	}
	if !closed && ctx.Err() == nil {
		// Lost, or refused: logged once until a connection is made.
		h.logf(news, slog.LevelWarn, "ostask: notifications unavailable; the server monitors poll at their normal pace until they reconnect",
			"source", h.source, "err", err)
	}
	c.err = err
	close(c.done)
}

// logf logs msg at level when news is true, else at debug level.
func (h *NotificationHub) logf(news bool, level slog.Level, msg string, args ...any) {
	if !news {
		level = slog.LevelDebug
	}
	h.log.Log(context.Background(), level, msg, args...)
}

// Close ends the hub's connection and waits for its goroutine; Clouds
// still listening see their stream end (close them first).
func (h *NotificationHub) Close() error {
	h.mu.Lock()
	h.closed = true
	for c := range h.live {
		c.cancel()
	}
	h.mu.Unlock()
	h.wg.Wait()
	return nil
}
