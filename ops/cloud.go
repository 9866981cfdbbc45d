package ops

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"golang.org/x/time/rate"
)

// Defaults for Config fields left zero.
const (
	DefaultMinInterval         = time.Second
	DefaultMaxInterval         = 10 * time.Second
	DefaultOverlap             = time.Second
	DefaultRateLimit           = 20 // requests per second, all monitors and calls of one Cloud
	DefaultBurst               = 10
	DefaultTimeout             = 30 * time.Minute
	DefaultComputeMicroversion = "2.60"
	DefaultVolumeMicroversion  = "3.60"
	DefaultJitter              = 0.1
	DefaultResponseTimeout     = time.Minute
	DefaultRetryBudget         = time.Minute
	// IdempotencyMetadataKey is the server/volume metadata key that
	// records an operation's idempotency key.
	IdempotencyMetadataKey = "ostask-idempotency-key"
)

// Config tunes a Cloud. The zero value is usable.
type Config struct {
	// MinInterval is the monitor's interval right after a call; it grows
	// towards MaxInterval while the youngest pending operation ages.
	MinInterval, MaxInterval time.Duration
	// Overlap widens each changes-since window, since the cloud's
	// timestamps have one-second resolution.
	Overlap time.Duration
	// RateLimit (requests/s) and Burst bound every request of this Cloud,
	// calls and monitor rounds together.
	RateLimit float64
	Burst     int
	// DefaultTimeout applies to operations without WithTimeout.
	DefaultTimeout time.Duration
	// Jitter shortens each monitor interval by up to this fraction, so that
	// monitors of many processes do not poll in step.
	Jitter float64
	// ComputeMicroversion and VolumeMicroversion are sent on every call.
	// Attach needs compute <= 2.100 (gophercloud expects its 200 answer);
	// the volume monitor uses the updated_at filter from 3.60.
	ComputeMicroversion, VolumeMicroversion string
	Logger                                  *slog.Logger
	// ResponseTimeout bounds how long one request waits for the first byte
	// of its answer (the response headers), so that a cloud that accepts
	// connections and never answers fails with an *UnresponsiveError
	// instead of hanging. It applies to a Cloud made by Dial.
	ResponseTimeout time.Duration
	// RetryBudget bounds one synchronous call — Dial's login, an
	// operation's request, a lookup — with all its retries and the waits
	// between them: a call makes at most 5 requests and gives up when the
	// budget is spent (a request still waiting is cut then). A check after
	// a lost answer spends from the budget of the call it checks. With the
	// defaults, a cloud that never answers fails every call within 60 s,
	// and a Keystone that always answers 429 costs Dial at most 5 logins.
	// gophercloud's own retries are off, so budgets never multiply.
	RetryBudget time.Duration
	// Clock is the time source of the retries' waits and budgets (nil: the
	// system clock).
	Clock Clock
	// Notifications, when set, completes server operations from the
	// cloud's notifications; polling then only reconciles.
	Notifications *NotificationConfig
}

// Validate reports nonsense settings.
func (c Config) Validate() error {
	switch {
	case c.MinInterval < 0 || c.MaxInterval < 0 || c.Overlap < 0 || c.DefaultTimeout < 0 || c.ResponseTimeout < 0 || c.RetryBudget < 0:
		return fmt.Errorf("%w: negative duration in Config", ErrInvalidOption)
	case c.MaxInterval != 0 && c.MinInterval > c.MaxInterval:
		return fmt.Errorf("%w: MinInterval %s > MaxInterval %s", ErrInvalidOption, c.MinInterval, c.MaxInterval)
	case c.RateLimit < 0 || c.Burst < 0:
		return fmt.Errorf("%w: negative rate limit", ErrInvalidOption)
	case c.Jitter < 0 || c.Jitter >= 1:
		return fmt.Errorf("%w: jitter %v outside [0,1)", ErrInvalidOption, c.Jitter)
	}
	return c.Notifications.validate()
}

func (c Config) withDefaults() Config {
	if c.MinInterval == 0 {
		c.MinInterval = DefaultMinInterval
	}
	if c.MaxInterval == 0 {
		c.MaxInterval = max(DefaultMaxInterval, c.MinInterval)
	}
	if c.Overlap == 0 {
		c.Overlap = DefaultOverlap
	}
	if c.RateLimit == 0 {
		c.RateLimit = DefaultRateLimit
	}
	if c.Burst == 0 {
		c.Burst = DefaultBurst
	}
	if c.DefaultTimeout == 0 {
		c.DefaultTimeout = DefaultTimeout
	}
	if c.Jitter == 0 {
		c.Jitter = DefaultJitter
	}
	if c.ComputeMicroversion == "" {
		c.ComputeMicroversion = DefaultComputeMicroversion
	}
	if c.VolumeMicroversion == "" {
		c.VolumeMicroversion = DefaultVolumeMicroversion
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.ResponseTimeout == 0 {
		c.ResponseTimeout = DefaultResponseTimeout
	}
	if c.RetryBudget == 0 {
		c.RetryBudget = DefaultRetryBudget
	}
	if c.Clock == nil {
		c.Clock = systemClock{}
	}
	return c
}

// Cloud is one connection to one OpenStack cloud: its service clients, a
// shared rate limit, and one monitor per resource kind. Close it when done.
type Cloud struct {
	Compute, Volume, Image *gophercloud.ServiceClient
	cfg                    Config
	log                    *slog.Logger
	transport              *transport
	clock                  Clock
	call                   caller // makes every synchronous call

	servers, volumes, images *monitor
	serverList               *serverLister
	notify                   *notifier // nil without Config.Notifications

	ctx     context.Context // cancelled by Close; owns every background goroutine
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	goMu    sync.Mutex // guards closing and wg.Add
	closing bool
	closed  atomic.Bool
}

// Dial authenticates and returns a Cloud. The login is one call like any
// other: retried on throttling, Keystone errors and lost answers within
// cfg.RetryBudget, each request bounded by cfg.ResponseTimeout.
func Dial(ctx context.Context, auth Auth, cfg Config) (*Cloud, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	pc, err := openstack.NewClient(auth.Options.IdentityEndpoint)
	if err != nil {
		return nil, fmt.Errorf("auth url %q: %w", auth.Options.IdentityEndpoint, err)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 32
	base.ResponseHeaderTimeout = cfg.ResponseTimeout
	if auth.TLS != nil {
		base.TLSClientConfig = auth.TLS
	}
	tr := newTransport(base, cfg)
	pc.HTTPClient = http.Client{Transport: tr, Timeout: 2 * time.Minute}
	// No RetryBackoffFunc: gophercloud answers a 429 with an error, and
	// ostask's one retry loop (caller.run, the monitor's rounds) waits out
	// its Retry-After. Two loops would multiply their attempts.
	auth.Options.AllowReauth = true
	if err := newCaller(cfg).run(ctx, func(ctx context.Context) error {
		return openstack.Authenticate(ctx, pc, auth.Options)
	}, nil); err != nil {
		return nil, fmt.Errorf("authenticate at %s: %w", auth.Options.IdentityEndpoint, err)
	}
	c, err := newCloud(pc, auth.Endpoint, cfg)
	if err != nil {
		return nil, err
	}
	c.transport = tr
	return c, nil
}

// New returns a Cloud over a provider client the caller authenticated.
// Its requests are rate limited and counted only if pc uses a transport
// made by Dial; prefer Dial.
func New(pc *gophercloud.ProviderClient, eo gophercloud.EndpointOpts, cfg Config) (*Cloud, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newCloud(pc, eo, cfg.withDefaults())
}

func newCloud(pc *gophercloud.ProviderClient, eo gophercloud.EndpointOpts, cfg Config) (*Cloud, error) {
	compute, err := openstack.NewComputeV2(pc, eo)
	if err != nil {
		return nil, fmt.Errorf("compute endpoint: %w", err)
	}
	compute.Microversion = cfg.ComputeMicroversion
	c := &Cloud{Compute: compute, cfg: cfg, log: cfg.Logger, clock: cfg.Clock, call: newCaller(cfg)}
	// Block storage and image are optional: a cloud without Cinder still
	// runs server operations. Only a missing catalog entry means "none";
	// any other error (the image service's version discovery meeting a
	// 503, say) is retried, then reported.
	ctx := context.Background()
	var err2 error
	err = c.call.run(ctx, func(context.Context) error {
		c.Volume, err2 = optionalService(openstack.NewBlockStorageV3(pc, eo))
		return err2
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("block-storage endpoint: %w", err)
	}
	if c.Volume != nil {
		c.Volume.Microversion = cfg.VolumeMicroversion
	}
	err = c.call.run(ctx, func(context.Context) error {
		c.Image, err2 = optionalService(openstack.NewImageV2(pc, eo))
		return err2
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("image endpoint: %w", err)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.serverList = newServerLister(c, serverListForms)
	c.servers = newMonitor(c, KindServer, c.serverList.poll)
	c.servers.staleAfter = serverStaleRounds
	c.volumes = newMonitor(c, KindVolume, c.pollVolumes)
	c.images = newMonitor(c, KindImage, c.pollImages)
	if cfg.Notifications != nil {
		c.startNotifications(pc)
	}
	return c, nil
}

// optionalService turns "not in the catalog" into no client and no error.
func optionalService(sc *gophercloud.ServiceClient, err error) (*gophercloud.ServiceClient, error) {
	var nf *gophercloud.ErrEndpointNotFound
	if errors.As(err, &nf) {
		return nil, nil
	}
	return sc, err
}

// Close stops the monitors; pending operations fail with ErrMonitorClosed.
// It waits for every background goroutine of the Cloud to end.
func (c *Cloud) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.goMu.Lock()
	c.closing = true
	c.goMu.Unlock()
	c.cancel()
	c.wg.Wait()
	for _, m := range []*monitor{c.servers, c.volumes, c.images} {
		m.failAll(ErrMonitorClosed)
	}
	if c.transport != nil {
		c.transport.closeIdle()
	}
	return nil
}

// Stats are the requests this Cloud made and how its monitors fare.
type Stats struct {
	Requests  int64            // every HTTP request, including auth
	ByMethod  map[string]int64 // GET, POST, ...
	ByRoute   map[string]int64 // "GET /servers/{id}", ids and project ids replaced
	ByStatus  map[int]int64    // answers by HTTP status code; NoAnswer counts requests without one
	Throttled int64            // 429 and 503 answers
	Rounds    map[Kind]int64   // monitor rounds per resource kind
	Monitors  map[Kind]MonitorStats
	// Notifications is nil without Config.Notifications.
	Notifications *NotificationStats
}

// NoAnswer is the Stats.ByStatus key of requests that got no answer: the
// connection dropped (a lost answer), or none came within ResponseTimeout.
const NoAnswer = 0

// MonitorStats tells how one monitor's rounds have gone. A failed round
// never fails an operation (it is tried again, with backoff), but rounds
// that keep failing delay every completion: Err says so.
type MonitorStats struct {
	Rounds       int64
	FailedRounds int64
	// UnstableRounds are rounds whose lists may have skipped a change
	// (Nova's paging while servers are being scheduled); the next round
	// lists their window again.
	UnstableRounds int64
	// FailingRounds is the number of rounds in a row that failed, up to
	// now; 0 once a round succeeds.
	FailingRounds int
	// Err is the latest round's error while rounds keep failing (a
	// *MonitorError), nil once one succeeds.
	Err error
	// ListForm is the server list form in use ("" for other kinds), and
	// FormSwitches how often the monitor gave one up for this cloud.
	ListForm     string
	FormSwitches int
}

// MonitorFailingAfter is the number of failed rounds in a row after which
// a caller should tell its user that completions are being delayed.
const MonitorFailingAfter = 3

// MonitorError is a monitor's trouble: its rounds keep failing.
type MonitorError struct {
	Kind   Kind
	Rounds int       // failed rounds in a row
	Since  time.Time // when the last of them failed
	Err    error     // the last round's error
}

func (e *MonitorError) Error() string {
	return fmt.Sprintf("ostask: the %s monitor's last %d rounds failed (completions are delayed): %v", e.Kind, e.Rounds, e.Err)
}

func (e *MonitorError) Unwrap() error { return e.Err }

// Stats returns request counts (only for a Cloud made by Dial) and the
// monitors' health.
func (c *Cloud) Stats() Stats {
	st := Stats{ByMethod: map[string]int64{}, ByRoute: map[string]int64{}, ByStatus: map[int]int64{}}
	if c.transport != nil {
		st = c.transport.stats()
	}
	st.Rounds = map[Kind]int64{}
	st.Monitors = map[Kind]MonitorStats{}
	for _, m := range []*monitor{c.servers, c.volumes, c.images} {
		ms := m.stats()
		if m == c.servers {
			c.serverList.mu.Lock()
			ms.ListForm = c.serverList.forms[c.serverList.cur].name
			ms.FormSwitches = c.serverList.switches
			c.serverList.mu.Unlock()
		}
		st.Rounds[m.kind] = ms.Rounds
		st.Monitors[m.kind] = ms
	}
	if c.notify != nil {
		ns := c.notify.stats()
		ns.Completions, ns.Missed = c.servers.eventStats()
		st.Notifications = &ns
	}
	return st
}

// goOwned starts fn on a goroutine owned by the Cloud and reports true;
// once Close has begun it starts nothing and reports false, so that no
// goroutine outlives Close (and the WaitGroup is never added to while
// Close waits on it).
func (c *Cloud) goOwned(fn func(ctx context.Context)) bool {
	c.goMu.Lock()
	defer c.goMu.Unlock()
	if c.closing {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn(c.ctx)
	}()
	return true
}

// serverNow estimates the cloud's clock from the Date headers it sends,
// erring early (safe for changes-since windows).
func (c *Cloud) serverNow() time.Time {
	now := time.Now()
	if c.transport == nil {
		return now
	}
	return now.Add(time.Duration(c.transport.skew.Load()))
}

// transport rate-limits and counts every request of a Cloud and tracks
// the cloud's clock skew from Date headers.
type transport struct {
	base      http.RoundTripper
	limiter   *rate.Limiter
	requests  atomic.Int64
	throttled atomic.Int64
	skew      atomic.Int64 // server time - local time, ns (min seen recently)
	skewSet   atomic.Bool
	mu        sync.Mutex
	byMethod  map[string]int64
	byRoute   map[string]int64
	byStatus  map[int]int64
}

func newTransport(base http.RoundTripper, cfg Config) *transport {
	return &transport{base: base, limiter: rate.NewLimiter(rate.Limit(cfg.RateLimit), cfg.Burst),
		byMethod: map[string]int64{}, byRoute: map[string]int64{}, byStatus: map[int]int64{}}
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := t.limiter.Wait(r.Context()); err != nil {
		return nil, err
	}
	t.requests.Add(1)
	t.mu.Lock()
	t.byMethod[r.Method]++
	t.byRoute[r.Method+" "+routeOf(r.URL.Path)]++
	t.mu.Unlock()
	sent := time.Now()
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		if r.Context().Err() == nil || noAnswer(r, err) {
			t.mu.Lock()
			t.byStatus[NoAnswer]++
			t.mu.Unlock()
		}
		if noAnswer(r, err) {
			return nil, &UnresponsiveError{Method: r.Method, URL: r.URL.Redacted(), Waited: time.Since(sent)}
		}
		return nil, err
	}
	t.mu.Lock()
	t.byStatus[resp.StatusCode]++
	t.mu.Unlock()
	if resp.StatusCode == 429 || resp.StatusCode == 503 {
		t.throttled.Add(1)
	}
	if d, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
		// Date is truncated to the second and sent before we read it, so
		// this underestimates the skew by up to a second: windows start
		// early, never late.
		skew := d.Sub(time.Now()) - time.Second
		if !t.skewSet.Swap(true) {
			t.skew.Store(int64(skew))
		} else {
			// Smooth towards the new estimate, preferring the earlier one.
			old := time.Duration(t.skew.Load())
			t.skew.Store(int64(min(skew, (old*7+skew)/8)))
		}
	}
	return resp, nil
}

// closeIdle closes the connections no request uses, so that the server
// is not left holding them (one dialled but never used looks busy to it).
func (t *transport) closeIdle() {
	if ci, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

func (t *transport) stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return Stats{Requests: t.requests.Load(), Throttled: t.throttled.Load(),
		ByMethod: maps.Clone(t.byMethod), ByRoute: maps.Clone(t.byRoute), ByStatus: maps.Clone(t.byStatus)}
}

// noAnswer reports a request that failed waiting for its answer: past
// the transport's ResponseHeaderTimeout, or cut by the end of its call's
// retry budget.
func noAnswer(r *http.Request, err error) bool {
	if errors.Is(context.Cause(r.Context()), errBudgetSpent) {
		return true
	}
	var ne net.Error
	return r.Context().Err() == nil && errors.As(err, &ne) && ne.Timeout()
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

var idSegment = regexp.MustCompile(`^(req-)?[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// routeOf replaces the ids in a request path by {id}, so that requests
// count per route: "/compute/v2.1/servers/{id}".
func routeOf(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if idSegment.MatchString(p) {
			parts[i] = "{id}"
		}
	}
	return strings.Join(parts, "/")
}
