package ops

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// Defaults of NotificationConfig, as oslo.messaging's rabbit driver and
// Nova's [notifications] notification_format = versioned use them.
const (
	DefaultNotificationExchange = "nova"
	DefaultReconcileInterval    = 30 * time.Second
)

// DefaultNotificationTopics are the routing keys of Nova's versioned
// notifications.
var DefaultNotificationTopics = []string{"versioned_notifications.info", "versioned_notifications.error"}

// NotificationConfig turns on event-driven completion: the Cloud reads the
// cloud's notifications (Nova's versioned notifications on its message
// bus) and completes operations from them within milliseconds of the
// change. Polling stays, as reconciliation: while events flow, the server
// monitor's rounds stretch to ReconcileInterval; it polls at its normal
// pace while the bus is unreachable, while an operation waits for a state
// no event reports (a build that Nova turns to ERROR after its error
// event), and after a reconciliation round found a completion that no
// event had reported, until events complete operations again.
//
// Only events of the Cloud's own project (the payload's tenant_id) that
// carry an operation's own request id, or report the server deleted,
// complete an operation.
type NotificationConfig struct {
	// URL of the AMQP broker the cloud notifies on,
	// amqp://user:password@host:5672/vhost (amqps:// for TLS). The
	// password never appears in a log line or an error.
	URL string
	// Exchange is the topic exchange the notifications are published on;
	// "" means DefaultNotificationExchange. It is declared as oslo.messaging
	// declares it (topic, not durable) if it does not exist yet.
	Exchange string
	// Topics are the routing keys bound; nil means DefaultNotificationTopics.
	Topics []string
	// ReconcileInterval is the monitor's interval while events flow; 0
	// means DefaultReconcileInterval.
	ReconcileInterval time.Duration
	// Stream, instead of URL, is another source of notifications: cloudsim's
	// in-process bus (cloudsim.Sim.Notifications), say.
	Stream NotificationStream
}

// NotificationStream delivers a cloud's notification messages. Listen
// connects, calls up once it receives, then deliver for every message (the
// AMQP routing key and body: an oslo.messaging envelope), until ctx ends
// (it then returns nil or ctx's error) or the connection is lost (it
// returns why). It is called again after a failure, with backoff.
type NotificationStream interface {
	Listen(ctx context.Context, up func(), deliver func(routingKey string, body []byte)) error
}

// ErrNotifications is wrapped by every error of the notification source.
var ErrNotifications = errors.New("ostask: notifications")

// NotificationError is a failure of the notification source: the broker
// is unreachable, refused the login, or closed the connection. URL has
// its password masked, and so has Err's message.
type NotificationError struct {
	URL string
	Err error
}

func (e *NotificationError) Error() string {
	return fmt.Sprintf("ostask: notifications from %s: %v", e.URL, e.Err)
}

func (e *NotificationError) Unwrap() []error { return []error{ErrNotifications, e.Err} }

func (n *NotificationConfig) validate() error {
	if n == nil {
		return nil
	}
	if n.ReconcileInterval < 0 {
		return fmt.Errorf("%w: negative ReconcileInterval", ErrInvalidOption)
	}
	if (n.URL == "") == (n.Stream == nil) {
		return fmt.Errorf("%w: notifications need exactly one of URL and Stream", ErrInvalidOption)
	}
	if n.Stream != nil {
		return nil
	}
	u, err := url.Parse(n.URL)
	if err != nil {
		// url.Parse quotes the whole URL in its error: never return it.
		return fmt.Errorf("%w: notifications URL %s does not parse", ErrInvalidOption, redactURL(n.URL))
	}
	if u.Scheme != "amqp" && u.Scheme != "amqps" {
		return fmt.Errorf("%w: notifications URL %s: scheme must be amqp or amqps", ErrInvalidOption, redactURL(n.URL))
	}
	if u.Host == "" {
		return fmt.Errorf("%w: notifications URL %s has no host", ErrInvalidOption, redactURL(n.URL))
	}
	return nil
}

func (n NotificationConfig) withDefaults() NotificationConfig {
	if n.Exchange == "" {
		n.Exchange = DefaultNotificationExchange
	}
	if n.Topics == nil {
		n.Topics = DefaultNotificationTopics
	}
	if n.ReconcileInterval == 0 {
		n.ReconcileInterval = DefaultReconcileInterval
	}
	return n
}

// redactURL masks the password of an AMQP URL; a URL that does not parse
// is shown as its scheme only, since it may hold a password anywhere.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.Index(raw, "://"); i > 0 {
			return raw[:i] + "://(unparsable URL)"
		}
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Secrets returns what must never be shown of the configuration: the
// URL's password, as it is and as the URL writes it, and its user info
// (nil without a password). A store that scrubs credentials takes them.
func (n NotificationConfig) Secrets() []string { return secretsOf(n.URL) }

// secretsOf returns what must never be shown of an AMQP URL: its password,
// and its user info as a whole.
func secretsOf(raw string) []string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return nil
	}
	var s []string
	if p, ok := u.User.Password(); ok && p != "" {
		s = append(s, p, url.QueryEscape(p), u.User.String())
	}
	return s
}

// scrubbedError masks secrets in another error's message, keeping it
// for errors.Is and errors.As.
type scrubbedError struct {
	err     error
	secrets []string
}

func (e *scrubbedError) Error() string {
	msg := e.err.Error()
	for _, s := range e.secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return msg
}

func (e *scrubbedError) Unwrap() error { return e.err }

// NotificationStats tells how the notification source fares.
type NotificationStats struct {
	// Connected: the Cloud is bound to the bus and receiving.
	Connected bool
	// Connects counts successful connections; Failures failed or lost ones.
	Connects, Failures int64
	// Received counts messages; Foreign those skipped undecoded because
	// they do not name the Cloud's project (every project's notifications
	// are on the bus); Events those about the Cloud's project that the
	// monitor looked at; Completions the operations events completed;
	// Malformed messages that did not decode.
	Received, Foreign, Events, Completions, Malformed int64
	// Missed counts completions a reconciliation round found before any
	// event reported them; each sends the monitor back to normal polling.
	Missed int64
	// Err is the latest connection failure while not connected (a
	// *NotificationError), nil while connected.
	Err error
}

// notifier owns the Cloud's notification consumer.
type notifier struct {
	c       *Cloud
	cfg     NotificationConfig
	stream  NotificationStream
	project string // the Cloud's project id: other projects' events are ignored

	// mark is the project id as it appears in a message about the
	// project (nil when it may be escaped there): one without it is
	// another project's, skipped before it is decoded.
	mark []byte

	connected                            atomic.Bool
	connects, failures                   atomic.Int64
	received, foreign, events, malformed atomic.Int64
	mu                                   sync.Mutex
	lastErr                              error
	amqp                                 *amqpStream      // when URL is set; tests cut its connection
	hub                                  *NotificationHub // when the stream is a hub
}

func newNotifier(c *Cloud, cfg NotificationConfig, project string) *notifier {
	cfg = cfg.withDefaults()
	n := &notifier{c: c, cfg: cfg, stream: cfg.Stream, project: project}
	if plainInJSON(project) {
		n.mark = []byte(project)
	}
	if n.stream == nil {
		n.amqp = newAMQPStream(cfg)
		n.stream = n.amqp
	}
	n.hub, _ = n.stream.(*NotificationHub)
	return n
}

// newAMQPStream is the stream of cfg's URL (cfg with its defaults).
func newAMQPStream(cfg NotificationConfig) *amqpStream {
	return &amqpStream{url: cfg.URL, exchange: cfg.Exchange, topics: cfg.Topics, secrets: secretsOf(cfg.URL)}
}

// sourceName is cfg's source as logs show it: its URL with the password
// masked, or "stream".
func sourceName(cfg NotificationConfig) string {
	if cfg.URL != "" {
		return redactURL(cfg.URL)
	}
	return "stream"
}

// plainInJSON reports whether JSON, and a JSON string holding JSON (the
// oslo.message), write id as it is: Keystone's ids are hex uuids.
func plainInJSON(id string) bool {
	if id == "" {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// Bounds of the wait between two connection attempts.
const (
	notifyBackoffMin = 200 * time.Millisecond
	notifyBackoffMax = 30 * time.Second
)

// run is the consumer goroutine: it listens, and after every failure
// tells the server monitor (which polls normally meanwhile) and tries
// again with a bounded exponential backoff.
func (n *notifier) run(ctx context.Context) {
	failures := 0
	// A hub's Clouds connect and fail together, and the hub says so once:
	// each of them only at debug level.
	connected, unavailable := slog.LevelInfo, slog.LevelWarn
	if n.hub != nil {
		connected, unavailable = slog.LevelDebug, slog.LevelDebug
	}
	for {
		err := n.stream.Listen(ctx, func() {
			failures = 0
			n.mu.Lock()
			n.lastErr = nil
			n.mu.Unlock()
			n.connects.Add(1)
			n.connected.Store(true)
			if n.project != "" { // else no event can be used: keep polling
				n.c.servers.feedChanged(true)
			}
			n.c.log.Log(ctx, connected, "ostask: notifications connected; the server monitor reconciles every "+n.cfg.ReconcileInterval.String(),
				"source", n.source())
		}, n.deliver)
		if n.connected.Swap(false) {
			n.c.servers.feedChanged(false)
		}
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			err = errors.New("the stream ended")
		}
		failures++
		n.failures.Add(1)
		nerr := &NotificationError{URL: n.source(), Err: &scrubbedError{err: err, secrets: secretsOf(n.cfg.URL)}}
		n.mu.Lock()
		n.lastErr = nerr
		n.mu.Unlock()
		wait := notifyBackoff(failures, rand.Float64())
		n.c.log.Log(ctx, unavailable, "ostask: notifications unavailable; the server monitor polls at its normal pace", "err", nerr, "retry_in", wait)
		if sleepOn(ctx, n.c.clock, wait) != nil {
			return
		}
	}
}

// notifyBackoff is the wait before connection attempt failures+1: from
// notifyBackoffMin doubling to notifyBackoffMax, less up to 20% (u in [0,1)).
func notifyBackoff(failures int, u float64) time.Duration {
	d := notifyBackoffMin << min(failures-1, 16)
	d = min(d, notifyBackoffMax)
	return time.Duration(float64(d) * (1 - 0.2*u))
}

func (n *notifier) source() string {
	if n.hub != nil {
		return n.hub.source
	}
	return sourceName(n.cfg)
}

// deliver decodes one message and hands a server event to the monitor.
func (n *notifier) deliver(_ string, body []byte) {
	n.received.Add(1)
	if n.project == "" {
		return // no event can be told to be the Cloud's
	}
	if n.mark != nil && !bytes.Contains(body, n.mark) {
		// Another project's: on a cloud of many projects nearly every
		// message, and looking for the id costs about 1/70 of a decode
		// (BenchmarkDecodeNovaEvent/foreign).
		n.foreign.Add(1)
		return
	}
	ev, err := decodeNovaEvent(body)
	if err != nil {
		n.malformed.Add(1)
		n.c.log.Debug("ostask: undecodable notification", "err", err)
		return
	}
	if ev == nil || ev.project != n.project {
		return // not an instance event, or another project's
	}
	n.events.Add(1)
	n.c.servers.onEvent(ev)
}

func (n *notifier) stats() NotificationStats {
	st := NotificationStats{Connected: n.connected.Load(), Connects: n.connects.Load(), Failures: n.failures.Load(),
		Received: n.received.Load(), Foreign: n.foreign.Load(), Events: n.events.Load(), Malformed: n.malformed.Load()}
	n.mu.Lock()
	if !st.Connected {
		st.Err = n.lastErr
	}
	n.mu.Unlock()
	return st
}

// startNotifications starts the consumer goroutine of a new Cloud. The
// project the Cloud is scoped to comes from its token: without it, no
// event can be told to be the Cloud's, and none is used.
func (c *Cloud) startNotifications(pc *gophercloud.ProviderClient) {
	project := tokenProject(pc)
	if project == "" {
		c.log.Warn("ostask: notifications: the token names no project; events are ignored and the monitors poll")
	}
	c.notify = newNotifier(c, *c.cfg.Notifications, project)
	c.servers.ev = &eventState{reconcile: c.notify.cfg.ReconcileInterval}
	c.goOwned(c.notify.run)
}

// tokenProject is the project id of pc's Keystone v3 token, or "".
func tokenProject(pc *gophercloud.ProviderClient) string {
	r, ok := pc.GetAuthResult().(tokens.CreateResult)
	if !ok {
		return ""
	}
	p, err := r.ExtractProject()
	if err != nil || p == nil {
		return ""
	}
	return p.ID
}
