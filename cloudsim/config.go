package cloudsim

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Microversion ranges the simulator accepts.
const (
	ComputeMinMicroversion = "2.1"
	ComputeMaxMicroversion = "2.100"
	VolumeMinMicroversion  = "3.0"
	VolumeMaxMicroversion  = "3.71"
)

// Defaults for Config fields left zero.
const (
	DefaultTokenTTL = 24 * time.Hour
	// DefaultMaxTokens caps the valid tokens kept; past it the oldest is
	// forgotten (its holder gets a 401 and logs in again).
	DefaultMaxTokens        = 50000
	DefaultMaxLimit         = 1000
	DefaultReadTimeout      = 30 * time.Second
	DefaultDeletedRetention = 24 * time.Hour
	// DefaultMaxDeletedServers caps the deleted servers kept for
	// changes-since, so create/delete churn cannot grow memory without
	// bound.
	DefaultMaxDeletedServers = 10000
	DefaultRegion            = "RegionOne"
	DefaultPassword          = "secret"
	// DefaultServerQuota is the instances quota of each project: the
	// simulator's scale target with room to spare.
	DefaultServerQuota = 20000
)

// Timing is the timing model: how long each background step of each
// operation takes. A step's real duration is the value here, spread by
// Jitter (a fraction, 0.2 means ±20%) with the simulator's seeded random
// source. Zero durations are allowed: the step then happens on the
// simulator's next tick.
type Timing struct {
	// Server build: scheduling → networking → block_device_mapping → spawning → ACTIVE.
	BuildSchedule, BuildNetworking, BuildBlockDevice, BuildSpawn time.Duration
	ServerDelete                                                 time.Duration
	Reboot, Stop, Start                                          time.Duration
	// Each of the four resize/migrate task states lasts ResizeStep.
	ResizeStep, ConfirmResize, RevertResize, LiveMigrate time.Duration
	// Each of the snapshot task states lasts SnapshotStep; the Glance image
	// goes queued → saving → active along with them.
	SnapshotStep                             time.Duration
	VolumeCreate, VolumeDelete, VolumeExtend time.Duration
	// Attach: reserved → attaching → in-use, each step AttachStep; detach
	// likewise with DetachStep.
	AttachStep, DetachStep time.Duration
	ImageDelete            time.Duration
	Jitter                 float64

	// BuildRequests models Nova's build requests (see
	// nova_build_requests.go): a new server first exists only in the API
	// database for BuildRequestPhase (jittered), then moves to its cell
	// and walks on through BuildSchedule and the rest of the build. While
	// two or more of a project's servers are build requests, listing them
	// sorted by updated_at answers 500, and marker paging repeats or skips
	// servers that move between two page requests, as on a real Nova.
	// Sim.ScheduleBuildRequest ends the phase of one server at once.
	BuildRequests     bool
	BuildRequestPhase time.Duration
}

// FastTiming is for tests: every step takes a few milliseconds.
func FastTiming() Timing {
	d := 5 * time.Millisecond
	return Timing{
		BuildSchedule: d, BuildNetworking: d, BuildBlockDevice: d, BuildSpawn: d,
		ServerDelete: d, Reboot: d, Stop: d, Start: d,
		ResizeStep: d, ConfirmResize: d, RevertResize: d, LiveMigrate: d,
		SnapshotStep: d, VolumeCreate: d, VolumeDelete: d, VolumeExtend: d,
		AttachStep: d, DetachStep: d, ImageDelete: d,
		Jitter: 0.2,
	}
}

// RealisticTiming resembles a small real cloud (a few seconds per build),
// with Nova's build-request phase modelled.
func RealisticTiming() Timing {
	return Timing{
		BuildRequests: true, BuildRequestPhase: 1200 * time.Millisecond,
		BuildSchedule: 300 * time.Millisecond, BuildNetworking: 400 * time.Millisecond,
		BuildBlockDevice: 500 * time.Millisecond, BuildSpawn: 1500 * time.Millisecond,
		ServerDelete: 1200 * time.Millisecond,
		Reboot:       time.Second, Stop: 800 * time.Millisecond, Start: 800 * time.Millisecond,
		ResizeStep: time.Second, ConfirmResize: 800 * time.Millisecond, RevertResize: time.Second,
		LiveMigrate: 2 * time.Second, SnapshotStep: 700 * time.Millisecond,
		VolumeCreate: 1500 * time.Millisecond, VolumeDelete: time.Second, VolumeExtend: time.Second,
		AttachStep: 500 * time.Millisecond, DetachStep: 500 * time.Millisecond,
		ImageDelete: 300 * time.Millisecond,
		Jitter:      0.4,
	}
}

// Config configures a Sim. The zero value is usable: real clock, fast
// timing, no faults, listening on 127.0.0.1 on a free port.
type Config struct {
	// Listen is the TCP address to serve on; "" means 127.0.0.1:0.
	Listen string
	// Timing is the background timing model; the zero value means FastTiming().
	Timing *Timing
	// Faults is the fault plan; nil means none.
	Faults *FaultPlan
	// Clock defaults to RealClock.
	Clock Clock
	// Seed drives every random choice (fault rolls, jitter, ids are random
	// UUIDs regardless). 0 means 1.
	Seed int64
	// Logger receives the simulator's errors: handler panics (answered
	// 500 with the service's fault) and the HTTP server's own errors. nil
	// means slog.Default(); a discarding logger must be asked for.
	Logger *slog.Logger
	// TokenTTL is the lifetime of Keystone tokens.
	TokenTTL time.Duration
	// MaxTokens caps the tokens kept: expired and revoked ones are
	// forgotten, then the oldest valid ones past the cap. 0 means
	// DefaultMaxTokens.
	MaxTokens int
	// ReadTimeout bounds reading one request, headers and body, so that
	// half-sent requests cannot hold connections (and handlers) forever.
	// 0 means DefaultReadTimeout.
	ReadTimeout time.Duration
	// MaxLimit caps page sizes like Nova's [api] max_limit and Cinder's osapi_max_limit.
	MaxLimit int
	// DeletedRetention is how long deleted servers stay visible to changes-since.
	DeletedRetention time.Duration
	// MaxDeletedServers caps how many deleted servers are kept for
	// changes-since; the oldest deletions are forgotten first. 0 means
	// DefaultMaxDeletedServers.
	MaxDeletedServers int
	// Region is the catalog region.
	Region string
	// Password is the password of every simulated user.
	Password string
	// ServerQuota is each project's instances quota (Nova's 403 "Quota
	// exceeded" past it); 0 means DefaultServerQuota.
	ServerQuota int
	// Publisher receives the simulator's notifications besides its
	// in-process Bus (Sim.Notifications): an AMQPPublisher, say.
	Publisher Publisher
}

// ErrInvalidConfig is wrapped by every Config.Validate error.
var ErrInvalidConfig = errors.New("cloudsim: invalid config")

// Validate reports the first nonsensical setting.
func (c *Config) Validate() error {
	if c.ServerQuota < 0 {
		return fmt.Errorf("%w: ServerQuota %d is negative", ErrInvalidConfig, c.ServerQuota)
	}
	if c.MaxTokens < 0 {
		return fmt.Errorf("%w: MaxTokens %d is negative", ErrInvalidConfig, c.MaxTokens)
	}
	if c.ReadTimeout < 0 {
		return fmt.Errorf("%w: ReadTimeout %v is negative", ErrInvalidConfig, c.ReadTimeout)
	}
	if c.MaxDeletedServers < 0 {
		return fmt.Errorf("%w: MaxDeletedServers %d is negative", ErrInvalidConfig, c.MaxDeletedServers)
	}
	if c.MaxLimit < 0 {
		return fmt.Errorf("%w: MaxLimit %d is negative", ErrInvalidConfig, c.MaxLimit)
	}
	if c.TokenTTL < 0 || c.DeletedRetention < 0 {
		return fmt.Errorf("%w: negative duration", ErrInvalidConfig)
	}
	if c.Timing != nil {
		if c.Timing.Jitter < 0 || c.Timing.Jitter >= 1 {
			return fmt.Errorf("%w: timing jitter %v is outside [0,1)", ErrInvalidConfig, c.Timing.Jitter)
		}
		if c.Timing.BuildRequestPhase < 0 {
			return fmt.Errorf("%w: BuildRequestPhase %v is negative", ErrInvalidConfig, c.Timing.BuildRequestPhase)
		}
	}
	if c.Faults != nil {
		if err := c.Faults.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if c.Timing == nil {
		t := FastTiming()
		c.Timing = &t
	}
	if c.Faults == nil {
		c.Faults = &FaultPlan{}
	}
	if c.Clock == nil {
		c.Clock = RealClock{}
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.MaxTokens == 0 {
		c.MaxTokens = DefaultMaxTokens
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.MaxLimit == 0 {
		c.MaxLimit = DefaultMaxLimit
	}
	if c.DeletedRetention == 0 {
		c.DeletedRetention = DefaultDeletedRetention
	}
	if c.MaxDeletedServers == 0 {
		c.MaxDeletedServers = DefaultMaxDeletedServers
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.ServerQuota == 0 {
		c.ServerQuota = DefaultServerQuota
	}
	if c.Password == "" {
		c.Password = DefaultPassword
	}
	return c
}
