package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/ostask/ostask/ops"
)

// Results of one operation, as --json reports them.
const (
	resultSucceeded   = "succeeded"
	resultFailed      = "failed"
	resultAccepted    = "accepted" // --no-wait
	resultLeftRunning = "left running"
	resultDeleted     = "deleted on interrupt"
	resultNotStarted  = "not started" // interrupted before the cloud made anything
)

// outcome is one operation's result as the CLI reports it.
type outcome struct {
	Label  string `json:"name"`
	ID     string `json:"id,omitempty"`
	Result string `json:"result"`
	// Status is the resource's status once the operation finished.
	Status   string `json:"status,omitempty"`
	Attempts int    `json:"attempts"`
	// Adopted: a create found what an earlier run had made under its
	// idempotency key, and made nothing new.
	Adopted bool `json:"adopted"`
	// Recovered: the cloud's answer to this run's own call was lost, and
	// ops found what the call had done (by key, or by its evidence)
	// instead of doing it again.
	Recovered bool     `json:"recovered"`
	Key       string   `json:"idempotency_key,omitempty"`
	Kept      []string `json:"kept_failed,omitempty"` // --keep-failed: ids of failed attempts' resources
	RequestID string   `json:"request_id,omitempty"`
	Seconds   float64  `json:"seconds"`
	Error     string   `json:"error,omitempty"`
	err       error
	started   bool // the job ran (took a call slot)
	accepted  bool // the cloud answered its call
}

// opInfo is what the runner reads of a started operation, whatever its
// result type.
type opInfo interface {
	ID() string
	Initial() ops.Initial
	Attempts() int
	AttemptErrors() []error
}

// job is one operation of a command.
type job struct {
	label string
	// id is the resource acted on, when known before the call.
	id string
	// For creates: what is made, under which name and per-resource key,
	// so that an interrupt can find and delete it.
	kind ops.Kind
	name string
	key  string
	// run makes the call, reports the operation with r.accepted, and waits.
	run func(ctx context.Context, r *running) (status string, err error)
}

// running is a job in progress.
type running struct {
	noWait   bool
	release  func()
	it       *item
	mu       sync.Mutex
	op       opInfo
	attempts int // set by jobs that retry above ops (deletes)
}

func (r *running) setAttempts(n int) {
	r.mu.Lock()
	r.attempts = n
	r.mu.Unlock()
}

// accepted records the operation once the cloud took the call, and frees
// the call slot.
func (r *running) accepted(op opInfo) {
	r.mu.Lock()
	first := r.op == nil
	r.op = op
	r.mu.Unlock()
	r.release()
	if first {
		r.it.accepted(op.ID(), op.Initial().Adopted)
	}
}

func (r *running) operation() opInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.op
}

// await is the usual body of a job: report the operation, then wait for
// it unless --no-wait.
func await[T any](ctx context.Context, r *running, op *ops.Operation[T], err error, status func(T) string) (string, error) {
	if err != nil {
		return "", err
	}
	r.accepted(op)
	if r.noWait {
		return resultAccepted, nil
	}
	v, err := op.Result(ctx)
	if err != nil {
		return "", err
	}
	return status(v), nil
}

// maxCalls bounds the calls a command makes at once; waiting is free.
const maxCalls = 16

// runner runs a command's jobs and reports them.
type runner struct {
	phase  string // "create", "delete", ...
	what   string // "server", "volume", "image"
	out    io.Writer
	errOut io.Writer
	wf     *waitFlags
	cloud  *ops.Cloud
	// resume is the command that adopts what an interrupted create made.
	resume string
}

// run starts every job, shows progress, waits, and reports. On an
// interrupt (ctx cancelled) it lists what is still in flight — left
// running, or deleted with --cleanup-on-interrupt — and fails with
// context.Canceled (exit 130).
func (rn *runner) run(ctx context.Context, jobs []job) error {
	progressOut := rn.out
	if rn.wf.json {
		progressOut = rn.errOut
	}
	d := newDisplay(ctx, progressOut, rn.wf.json)
	stopWarnings := func() {}
	if rn.cloud != nil {
		stopWarnings = warnMonitors(rn.cloud.Stats, d.println)
	}
	ph := d.phase(rn.phase, len(jobs))
	results := make([]outcome, len(jobs))
	runs := make([]*running, len(jobs))
	sem := make(chan struct{}, maxCalls)
	var wg sync.WaitGroup
	for i, j := range jobs {
		it := ph.item(j.label)
		r := &running{noWait: rn.wf.noWait, it: it}
		runs[i] = r
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			results[i] = outcome{Label: j.label, ID: j.id, Key: j.key, err: ctx.Err()}
			continue
		}
		var once sync.Once
		r.release = func() { once.Do(func() { <-sem }) }
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.release()
			t0 := time.Now()
			status, err := j.run(ctx, r)
			o := outcome{Label: j.label, ID: j.id, Key: j.key, Status: status, Seconds: math.Round(time.Since(t0).Seconds()*1000) / 1000,
				err: err, started: true}
			if op := r.operation(); op != nil {
				o.accepted = true
				in := op.Initial()
				o.ID, o.Attempts, o.Adopted, o.Recovered, o.RequestID = op.ID(), op.Attempts(), in.Adopted, in.Recovered, in.RequestID
				if rn.wf.keepFailed && err != nil {
					o.Kept = wreckIDs(op)
				}
			}
			r.mu.Lock()
			if r.attempts > 0 {
				o.Attempts = r.attempts
			}
			r.mu.Unlock()
			switch {
			case err == nil && status == resultAccepted:
				o.Result, o.Status = resultAccepted, ""
			case err == nil:
				o.Result = resultSucceeded
			case ctx.Err() != nil && errors.Is(err, context.Canceled):
				// Not a failure: the user stopped waiting. Sorted out below.
			default:
				o.Result, o.Error = resultFailed, describe(err)
			}
			results[i] = o
			if o.Result != "" {
				it.finish(o)
			}
		}()
	}
	wg.Wait()
	interrupted := ctx.Err() != nil
	var inFlight []int
	for i := range results {
		if results[i].Result == "" {
			inFlight = append(inFlight, i)
		}
	}
	if interrupted && len(inFlight) > 0 {
		rn.settleInterrupted(ctx, jobs, results, inFlight)
		for _, i := range inFlight {
			runs[i].it.finish(results[i])
		}
	}
	stopWarnings() // before the display ends: a warning prints through it
	d.wait()
	return rn.report(results, interrupted, inFlight)
}

// settleInterrupted finds the id of every create still in flight whose
// call had not been answered (by its idempotency key), then leaves each
// running or, with --cleanup-on-interrupt, deletes it.
func (rn *runner) settleInterrupted(ctx context.Context, jobs []job, results []outcome, inFlight []int) {
	// The user's context is over; these calls get their own, bounded.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), min(rn.wf.timeout, interruptCleanupTimeout))
	defer cancel()
	for _, i := range inFlight {
		o := &results[i]
		if !o.started {
			o.Result = resultNotStarted
			continue
		}
		o.Result = resultLeftRunning
		switch {
		case o.accepted:
		case jobs[i].key == "":
			o.Error = "the call was cut short: it may or may not have taken effect"
		default:
			id, err := findByKey(cctx, rn.cloud, jobs[i].kind, jobs[i].name, jobs[i].key)
			switch {
			case err != nil:
				o.Error = "could not look for it by its idempotency key: " + describe(err)
			case id == "":
				o.Result = resultNotStarted
			}
			o.ID = id
		}
	}
	if !rn.wf.cleanupOnInterrupt {
		return
	}
	var wg sync.WaitGroup
	for _, i := range inFlight {
		o := &results[i]
		if o.Result != resultLeftRunning || o.ID == "" || jobs[i].kind == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := deleteResource(cctx, rn.cloud, jobs[i].kind, o.ID); err != nil {
				o.Error = "delete on interrupt failed: " + describe(err)
				return
			}
			o.Result, o.Error = resultDeleted, ""
		}()
	}
	wg.Wait()
}

// interruptCleanupTimeout bounds the deletes and lookups after an
// interrupt; a second signal ends the process at once (see Exec).
const interruptCleanupTimeout = 5 * time.Minute

// report prints the results (JSON, or a summary line) and returns the
// command's error: which operations failed and why, each once; what an
// interrupt left running.
func (rn *runner) report(results []outcome, interrupted bool, inFlight []int) error {
	count := map[string]int{}
	for _, o := range results {
		count[o.Result]++
	}
	if rn.wf.json {
		enc := json.NewEncoder(rn.out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(results); err != nil {
			return err
		}
	} else {
		parts := []string{fmt.Sprintf("%d of %d succeeded", count[resultSucceeded], len(results))}
		for _, r := range []string{resultAccepted, resultFailed, resultLeftRunning, resultDeleted, resultNotStarted} {
			if count[r] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", count[r], r))
			}
		}
		fmt.Fprintf(rn.out, "%s: %s\n", rn.phase, strings.Join(parts, ", "))
	}
	var msg []string
	if n := count[resultFailed]; n > 0 {
		var lines []string
		var kept []string
		for _, o := range results {
			if o.Result != resultFailed {
				continue
			}
			line := fmt.Sprintf("%s %s: %s", rn.phase, o.Label, o.Error)
			if len(o.Kept) > 0 {
				line += fmt.Sprintf(" (kept for inspection: %s %s)", rn.what, strings.Join(o.Kept, ", "))
				kept = append(kept, o.Kept...)
			}
			lines = append(lines, line)
		}
		if len(results) == 1 {
			msg = append(msg, lines[0])
		} else {
			msg = append(msg, fmt.Sprintf("%d of %d failed:\n  %s", n, len(results), strings.Join(lines, "\n  ")))
		}
		if len(kept) > 0 {
			msg = append(msg, fmt.Sprintf("--keep-failed kept %d failed %s(s); delete them with: ostask %s delete %s",
				len(kept), rn.what, rn.what, strings.Join(kept, " ")))
		}
	}
	if interrupted {
		var left, deleted []string
		var leftIDs []string
		for _, i := range inFlight {
			o := results[i]
			desc := fmt.Sprintf("%s %s", o.Label, orUnknown(o.ID))
			if o.Error != "" && o.Result != resultFailed {
				desc += " (" + o.Error + ")"
			}
			switch o.Result {
			case resultLeftRunning:
				left = append(left, desc)
				if o.ID != "" {
					leftIDs = append(leftIDs, o.ID)
				}
			case resultDeleted:
				deleted = append(deleted, desc)
			}
		}
		s := "interrupted"
		if len(deleted) > 0 {
			s += fmt.Sprintf("; deleted %d %s(s) that were in flight:\n  %s", len(deleted), rn.what, strings.Join(deleted, "\n  "))
		}
		if len(left) > 0 {
			s += fmt.Sprintf("; %d operation(s) left running in the cloud (not failed: the cloud goes on with them):\n  %s",
				len(left), strings.Join(left, "\n  "))
			if rn.resume != "" {
				s += "\nto adopt them instead of making more, run: " + rn.resume
				s += fmt.Sprintf("\nto delete them instead, run: ostask %s delete %s", rn.what, strings.Join(leftIDs, " "))
			}
		}
		msg = append(msg, s)
		return &interruptError{msg: strings.Join(msg, "\n")}
	}
	if len(msg) > 0 {
		return &ExitError{Code: 1, Err: errors.New(strings.Join(msg, "\n"))}
	}
	return nil
}

// interruptError is the error of a command stopped by SIGINT or SIGTERM
// (exit 130); its message says what the command left behind.
type interruptError struct{ msg string }

func (e *interruptError) Error() string { return e.msg }
func (e *interruptError) Unwrap() error { return context.Canceled }

func orUnknown(id string) string {
	if id == "" {
		return "(id unknown)"
	}
	return id
}

// wreckIDs are the resources of an operation's failed attempts that a
// failure left in place (kept with --keep-failed).
func wreckIDs(op opInfo) []string {
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, e := range op.AttemptErrors() {
		var fe *ops.FaultError
		var te *ops.TimeoutError
		var rb *ops.RolledBackError
		switch {
		case errors.As(e, &fe):
			add(fe.ID)
		case errors.As(e, &te):
			add(te.ID)
		case errors.As(e, &rb):
			add(rb.ID)
		}
	}
	return ids
}
