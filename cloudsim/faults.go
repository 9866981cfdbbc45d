package cloudsim

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Op names one background operation kind for the fault plan.
type Op string

// The operations a fault plan can target.
const (
	OpServerCreate          Op = "server.create"
	OpServerDelete          Op = "server.delete"
	OpServerReboot          Op = "server.reboot"
	OpServerStop            Op = "server.stop"
	OpServerStart           Op = "server.start"
	OpServerResize          Op = "server.resize"
	OpServerConfirm         Op = "server.confirm-resize"
	OpServerRevert          Op = "server.revert-resize"
	OpServerMigrate         Op = "server.migrate"
	OpServerLiveMigrate     Op = "server.live-migrate"
	OpServerSnapshot        Op = "server.snapshot"
	OpServerBackup          Op = "server.backup"
	OpVolumeCreate          Op = "volume.create"
	OpVolumeDelete          Op = "volume.delete"
	OpVolumeExtend          Op = "volume.extend"
	OpVolumeAttach          Op = "volume.attach"
	OpVolumeDetach          Op = "volume.detach"
	OpImageDelete           Op = "image.delete"
	opUnknown               Op = ""
	defaultRetryAfter          = time.Second
	defaultSlowDelay           = 2 * time.Second
	defaultNoValidHostFault    = "No valid host was found. There are not enough hosts available."
)

// AllOps lists every Op, for help text and validation.
var AllOps = []Op{
	OpServerCreate, OpServerDelete, OpServerReboot, OpServerStop, OpServerStart,
	OpServerResize, OpServerConfirm, OpServerRevert, OpServerMigrate, OpServerLiveMigrate,
	OpServerSnapshot, OpServerBackup, OpVolumeCreate, OpVolumeDelete, OpVolumeExtend,
	OpVolumeAttach, OpVolumeDetach, OpImageDelete,
}

// FaultKind is what a scripted fault does.
type FaultKind string

// Fault kinds.
const (
	// FaultError ends the operation in ERROR (or error_*) with a fault message.
	FaultError FaultKind = "error"
	// FaultHang leaves the resource in its transitional state forever.
	FaultHang FaultKind = "hang"
	// FaultAbort fails a server build on the compute host (Nova's
	// BuildAbortException), where FaultError fails it in the scheduler
	// (NoValidHost): the build walks to spawning, then the server goes to
	// ERROR with the fault "Build of instance <uuid> aborted: <reason>",
	// no host, its network and volumes cleaned up, and its create action
	// still shows one compute__do_build_and_run_instance event with result
	// Success. For server.create only.
	FaultAbort FaultKind = "abort"
	// FaultRollback undoes a resize, migrate, live-migrate or attach
	// silently: the resource returns to where it was, without a fault; only
	// os-instance-actions shows an Error.
	FaultRollback FaultKind = "rollback"
	// FaultLoseResponse makes the request take effect, then drops the
	// connection before the client reads the answer.
	FaultLoseResponse FaultKind = "lose-response"
	// Fault500, Fault503 and Fault429 answer the request with that status
	// without doing anything.
	Fault500 FaultKind = "500"
	Fault503 FaultKind = "503"
	Fault429 FaultKind = "429"
)

// OpFaults are per-operation probabilities, each in [0,1]. At most one
// fault is chosen per operation, in the order Error, Hang, Rollback, Abort.
type OpFaults struct {
	Error    float64 `yaml:"error" json:"error"`
	Hang     float64 `yaml:"hang" json:"hang"`
	Rollback float64 `yaml:"rollback" json:"rollback"`
	// Abort is FaultAbort's probability (server.create only).
	Abort float64 `yaml:"abort" json:"abort,omitempty"`
	// Message overrides the fault message of Error (the reason of Abort).
	Message string `yaml:"message" json:"message,omitempty"`
}

// Burst is a recurring window in which API requests fail with Status.
type Burst struct {
	Every    time.Duration `yaml:"every" json:"every"`
	Length   time.Duration `yaml:"length" json:"length"`
	Status   int           `yaml:"status" json:"status"` // 429 or 503 (or 500)
	Fraction float64       `yaml:"fraction" json:"fraction"`
}

// APIFaults are per-request probabilities of HTTP-level faults. They apply
// to OpenStack routes only (never to the /_sim endpoints), and to requests
// whose "METHOD /path" contains Match when Match is set.
type APIFaults struct {
	Match        string        `yaml:"match" json:"match,omitempty"`
	Error500     float64       `yaml:"error500" json:"error500"`
	Error503     float64       `yaml:"error503" json:"error503"`
	RateLimit    float64       `yaml:"ratelimit" json:"ratelimit"`
	RetryAfter   time.Duration `yaml:"retry_after" json:"retry_after"`
	Slow         float64       `yaml:"slow" json:"slow"`
	SlowDelay    time.Duration `yaml:"slow_delay" json:"slow_delay"`
	Drop         float64       `yaml:"drop" json:"drop"`
	LoseResponse float64       `yaml:"lose_response" json:"lose_response"`
	Bursts       []Burst       `yaml:"bursts" json:"bursts,omitempty"`
}

// Scripted is a deterministic fault for tests: "the Nth <op> of a resource
// named Name fails". Counts are kept per (op, resource name).
type Scripted struct {
	Op Op `yaml:"op" json:"op"`
	// Name is a resource name; "" matches every name (counts stay per name).
	Name string `yaml:"name" json:"name,omitempty"`
	// Nth (1-based) picks one occurrence; FirstN picks the first N. With
	// both zero, every occurrence matches.
	Nth    int       `yaml:"nth" json:"nth,omitempty"`
	FirstN int       `yaml:"first_n" json:"first_n,omitempty"`
	Kind   FaultKind `yaml:"kind" json:"kind"`
	// Message overrides the fault message of FaultError.
	Message string `yaml:"message" json:"message,omitempty"`
}

// FaultPlan decides which operations and requests fail and how. All random
// choices use the simulator's seeded source, so one seed and one request
// order give one outcome.
type FaultPlan struct {
	Ops      map[Op]OpFaults `yaml:"ops" json:"ops,omitempty"`
	API      APIFaults       `yaml:"api" json:"api"`
	Scripted []Scripted      `yaml:"scripted" json:"scripted,omitempty"`
	// Notify are the faults of the notifications (see notify.go).
	Notify NotifyFaults `yaml:"notify" json:"notify"`
}

// ErrBadFaultPlan is wrapped by every fault plan error.
var ErrBadFaultPlan = errors.New("bad fault plan")

func knownOp(op Op) bool {
	for _, o := range AllOps {
		if o == op {
			return true
		}
	}
	return false
}

func checkProb(name string, p float64) error {
	if p < 0 || p > 1 {
		return fmt.Errorf("%w: %s=%v is not a probability in [0,1]", ErrBadFaultPlan, name, p)
	}
	return nil
}

// Validate reports the first invalid entry.
func (p *FaultPlan) Validate() error {
	if p == nil {
		return nil
	}
	for op, f := range p.Ops {
		if !knownOp(op) {
			return fmt.Errorf("%w: unknown operation %q (known: %s)", ErrBadFaultPlan, op, opList())
		}
		for name, v := range map[string]float64{"error": f.Error, "hang": f.Hang, "rollback": f.Rollback, "abort": f.Abort} {
			if err := checkProb(string(op)+"."+name, v); err != nil {
				return err
			}
		}
		if f.Abort > 0 && op != OpServerCreate {
			return fmt.Errorf("%w: %s: abort applies to %s only", ErrBadFaultPlan, op, OpServerCreate)
		}
		if f.Error+f.Hang+f.Rollback+f.Abort > 1 {
			return fmt.Errorf("%w: %s: error+hang+rollback+abort exceeds 1", ErrBadFaultPlan, op)
		}
	}
	a := p.API
	for name, v := range map[string]float64{"api.500": a.Error500, "api.503": a.Error503, "api.429": a.RateLimit,
		"api.slow": a.Slow, "api.drop": a.Drop, "api.lose-response": a.LoseResponse} {
		if err := checkProb(name, v); err != nil {
			return err
		}
	}
	if a.RetryAfter < 0 || a.SlowDelay < 0 {
		return fmt.Errorf("%w: negative api duration", ErrBadFaultPlan)
	}
	for i, b := range a.Bursts {
		if b.Every <= 0 || b.Length <= 0 || b.Length > b.Every {
			return fmt.Errorf("%w: burst %d: need 0 < length <= every", ErrBadFaultPlan, i)
		}
		if b.Status != 429 && b.Status != 503 && b.Status != 500 {
			return fmt.Errorf("%w: burst %d: status %d is not 429, 500 or 503", ErrBadFaultPlan, i, b.Status)
		}
		if err := checkProb(fmt.Sprintf("burst %d fraction", i), b.Fraction); err != nil {
			return err
		}
	}
	if err := p.Notify.validate(); err != nil {
		return err
	}
	for i, s := range p.Scripted {
		if !knownOp(s.Op) {
			return fmt.Errorf("%w: scripted %d: unknown operation %q (known: %s)", ErrBadFaultPlan, i, s.Op, opList())
		}
		switch s.Kind {
		case FaultError, FaultHang, FaultRollback, FaultLoseResponse, Fault500, Fault503, Fault429:
		case FaultAbort:
			if s.Op != OpServerCreate {
				return fmt.Errorf("%w: scripted %d: abort applies to %s only", ErrBadFaultPlan, i, OpServerCreate)
			}
		default:
			return fmt.Errorf("%w: scripted %d: unknown kind %q", ErrBadFaultPlan, i, s.Kind)
		}
		if s.Nth < 0 || s.FirstN < 0 {
			return fmt.Errorf("%w: scripted %d: negative count", ErrBadFaultPlan, i)
		}
	}
	return nil
}

func opList() string {
	s := make([]string, len(AllOps))
	for i, o := range AllOps {
		s[i] = string(o)
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// DemoFaultPlan is the visible fault plan of `ostask demo`: 20% of builds
// fail (half in the scheduler, half on the compute host), 5% hang, and the
// API has short bursts of 503 and 429.
func DemoFaultPlan() *FaultPlan {
	return &FaultPlan{
		Ops: map[Op]OpFaults{
			OpServerCreate: {Error: 0.10, Abort: 0.10, Hang: 0.05},
			OpVolumeCreate: {Error: 0.05},
			OpVolumeAttach: {Error: 0.03},
		},
		API: APIFaults{
			RetryAfter: time.Second,
			Bursts: []Burst{
				{Every: 20 * time.Second, Length: 2 * time.Second, Status: 503, Fraction: 0.5},
				{Every: 15 * time.Second, Length: time.Second, Status: 429, Fraction: 0.7},
			},
		},
	}
}

// ParseFaultPlan reads a fault plan from a command-line value. The value is
// either "none", "demo", the path of a YAML or JSON file (also as "@path"),
// or a comma-separated list of settings:
//
//	server.create.error=0.2,server.create.hang=0.05,server.resize.rollback=1,
//	api.500=0.01,api.503=0.01,api.429=0.02,api.retry-after=2s,api.slow=0.1,
//	api.slow-delay=3s,api.drop=0.01,api.lose-response=0.05,api.match=POST,
//	notify.drop=0.1,notify.duplicate=0.1,notify.delay=0.1,notify.delay-by=500ms,notify.reorder=0.1
func ParseFaultPlan(v string) (*FaultPlan, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "" || v == "none":
		return &FaultPlan{}, nil
	case v == "demo":
		return DemoFaultPlan(), nil
	case strings.HasPrefix(v, "@") || strings.HasSuffix(v, ".yaml") || strings.HasSuffix(v, ".yml") || strings.HasSuffix(v, ".json"):
		path := strings.TrimPrefix(v, "@")
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadFaultPlan, err)
		}
		p := &FaultPlan{}
		dec := yaml.NewDecoder(strings.NewReader(string(data)))
		dec.KnownFields(true)
		if err := dec.Decode(p); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrBadFaultPlan, path, err)
		}
		return p, p.Validate()
	}
	p := &FaultPlan{Ops: map[Op]OpFaults{}}
	for _, kv := range strings.Split(v, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		key, val, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%w: %q is not key=value", ErrBadFaultPlan, kv)
		}
		if err := p.set(key, val); err != nil {
			return nil, err
		}
	}
	return p, p.Validate()
}

var durationKeys = map[string]bool{"api.retry-after": true, "api.slow-delay": true}

func (p *FaultPlan) set(key, val string) error {
	if strings.HasPrefix(key, "notify.") {
		return p.Notify.set(key, val)
	}
	if durationKeys[key] {
		d, err := time.ParseDuration(val)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBadFaultPlan, key, err)
		}
		if key == "api.retry-after" {
			p.API.RetryAfter = d
		} else {
			p.API.SlowDelay = d
		}
		return nil
	}
	if key == "api.match" {
		p.API.Match = val
		return nil
	}
	f, err := strconv.ParseFloat(val, 64)
	if err != nil {
		return fmt.Errorf("%w: %s: %q is not a number", ErrBadFaultPlan, key, val)
	}
	api := map[string]*float64{"api.500": &p.API.Error500, "api.503": &p.API.Error503, "api.429": &p.API.RateLimit,
		"api.slow": &p.API.Slow, "api.drop": &p.API.Drop, "api.lose-response": &p.API.LoseResponse}
	if dst, ok := api[key]; ok {
		*dst = f
		return nil
	}
	i := strings.LastIndex(key, ".")
	if i < 0 {
		return fmt.Errorf("%w: unknown setting %q", ErrBadFaultPlan, key)
	}
	op, what := Op(key[:i]), key[i+1:]
	if !knownOp(op) {
		return fmt.Errorf("%w: unknown operation %q in %q (known: %s)", ErrBadFaultPlan, op, key, opList())
	}
	of := p.Ops[op]
	switch what {
	case "error":
		of.Error = f
	case "hang":
		of.Hang = f
	case "rollback":
		of.Rollback = f
	case "abort":
		of.Abort = f
	default:
		return fmt.Errorf("%w: unknown fault %q in %q (want error, hang, rollback or abort)", ErrBadFaultPlan, what, key)
	}
	p.Ops[op] = of
	return nil
}

// outcome is the fault chosen for one operation.
type outcome struct {
	kind    FaultKind // "" = success
	message string
}

// decide picks the fault for one occurrence of op on a resource named name.
// Scripted faults win over probabilities. Callers hold s.mu.
func (s *Sim) decide(op Op, name string) outcome {
	key := string(op) + "\x00" + name
	s.opCounts[key]++
	n := s.opCounts[key]
	for _, sc := range s.faults.Scripted {
		if sc.Op != op || (sc.Name != "" && sc.Name != name) {
			continue
		}
		if (sc.Nth != 0 && sc.Nth != n) || (sc.FirstN != 0 && n > sc.FirstN) {
			continue
		}
		return outcome{kind: sc.Kind, message: sc.Message}
	}
	f, ok := s.faults.Ops[op]
	if !ok {
		return outcome{}
	}
	r := s.rng.Float64()
	switch {
	case r < f.Error:
		return outcome{kind: FaultError, message: f.Message}
	case r < f.Error+f.Hang:
		return outcome{kind: FaultHang}
	case r < f.Error+f.Hang+f.Rollback:
		return outcome{kind: FaultRollback}
	case r < f.Error+f.Hang+f.Rollback+f.Abort:
		return outcome{kind: FaultAbort, message: f.Message}
	}
	return outcome{}
}
