package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Status is a task's place in its life. A task is created Queued; a worker
// moves it to Running; it ends Succeeded, Failed (nothing to revert, or the
// revert itself failed), Reverted (it failed and undid what it did) or
// Cancelled (a cancel request stopped it and what it did was reverted).
// Reverting is shown while a failed or cancelled task undoes its steps.
type Status string

const (
	Queued    Status = "queued"
	Running   Status = "running"
	Reverting Status = "reverting"
	Succeeded Status = "succeeded"
	Failed    Status = "failed"
	Reverted  Status = "reverted"
	Cancelled Status = "cancelled"
)

// Statuses lists every status, in the order of a task's life.
var Statuses = []Status{Queued, Running, Reverting, Succeeded, Failed, Reverted, Cancelled}

// Final reports whether a task in s will not change any more.
func (s Status) Final() bool {
	switch s {
	case Succeeded, Failed, Reverted, Cancelled:
		return true
	}
	return false
}

// ParseStatus returns the status named s, or ErrBadStatus.
func ParseStatus(s string) (Status, error) {
	for _, st := range Statuses {
		if string(st) == s {
			return st, nil
		}
	}
	return "", fmt.Errorf("%w: %q (one of %s)", ErrBadStatus, s, statusNames())
}

func statusNames() string {
	names := make([]string, len(Statuses))
	for i, s := range Statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// Task is a task as its owner sees it: a background change in a cloud, with
// its progress, result and error.
type Task struct {
	ID      string          `json:"id"`
	Kind    string          `json:"kind"`
	Project string          `json:"project"`
	Status  Status          `json:"status"`
	Params  json.RawMessage `json:"params"`
	Options Options         `json:"options"`
	// Progress counts the flow's steps.
	Progress Progress `json:"progress"`
	// Result holds the values the flow provides (resource ids by name),
	// once it succeeded.
	Result map[string]json.RawMessage `json:"result,omitempty"`
	// Resources are the cloud resources the task made or acted on, for
	// the per-resource views.
	Resources []Resource `json:"resources,omitempty"`
	Error     *Error     `json:"error,omitempty"`
	// Attempts counts the times a worker took the task (1 for a task run
	// once; more after a takeover or a retry).
	Attempts int `json:"attempts"`
	// Worker is the worker holding the task while it runs.
	Worker     string     `json:"worker,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	// CancelRequested is set once a cancel was asked for.
	CancelRequested bool `json:"cancel_requested,omitempty"`
}

// Options are the caller's choices for one task.
type Options struct {
	// Timeout bounds the task's run (its revert is not cut short); 0: the
	// service's default.
	Timeout Duration `json:"timeout,omitempty"`
	// Retries is the number of attempts of each OpenStack operation of the
	// flow (at least 1); 0: the service's default.
	Retries int `json:"retries,omitempty"`
}

// Duration is a time.Duration written in JSON as Go's duration text
// ("90s", "10m").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"90s\" or \"10m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if v < 0 {
		return fmt.Errorf("duration %q is negative", s)
	}
	*d = Duration(v)
	return nil
}

// Progress counts a task's steps: the atoms of its flow.
type Progress struct {
	Done    int    `json:"done"`
	Total   int    `json:"total"`
	Current string `json:"current,omitempty"` // a step running now
}

// Resource names a cloud resource: Type is "server", "volume" or "image".
type Resource struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// Error is why a task failed: the message, and what the cloud said.
type Error struct {
	Message   string `json:"message"`
	Step      string `json:"step,omitempty"`       // the atom that failed
	Fault     string `json:"fault,omitempty"`      // the cloud's fault message
	Code      int    `json:"code,omitempty"`       // the cloud's fault or HTTP code
	RequestID string `json:"request_id,omitempty"` // the cloud's request id
	// Details are shown to admins only (the service removes them for
	// others): the raw API error and the stack of a panic.
	Details *ErrorDetails `json:"details,omitempty"`
}

// ErrorDetails are an error's admin-only parts.
type ErrorDetails struct {
	Raw        string   `json:"raw,omitempty"`
	Stack      string   `json:"stack,omitempty"`
	RequestIDs []string `json:"request_ids,omitempty"`
}

// Event is one entry of a task's log: a step's or the task's transition.
type Event struct {
	// Seq numbers a task's events from 1, without gaps; it is the SSE
	// event id.
	Seq    int64     `json:"seq"`
	TaskID string    `json:"task_id"`
	Time   time.Time `json:"time"`
	// Step is the atom, or "" for the task's own transition.
	Step string `json:"step,omitempty"`
	// From and To are the engine's states for a step (PENDING, RUNNING,
	// SUCCESS, FAILURE, REVERTING, REVERTED, RETRYING, ...), the task's
	// statuses for the task.
	From string `json:"from,omitempty"`
	To   string `json:"to"`
	// Elapsed is how long the step spent in From.
	Elapsed Duration        `json:"elapsed,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
	Attempt int             `json:"attempt,omitempty"`
	Worker  string          `json:"worker,omitempty"`
}

// Graph is a task's flow as drawn: its atoms with their states, and the
// edges of the compiled flow (From runs before To).
type Graph struct {
	Nodes []Node `json:"nodes"`
	Edges []Edge `json:"edges"`
}

// Node is one atom of a task's flow.
type Node struct {
	Name       string     `json:"name"`
	Kind       string     `json:"kind"` // "task" or "retry"
	State      string     `json:"state"`
	Attempts   int        `json:"attempts,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Edge orders two atoms.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// Kind is a kind of task: a registered flow and the JSON Schema of its
// parameters.
type Kind struct {
	Name   string          `json:"name"`
	Help   string          `json:"help"`
	Schema json.RawMessage `json:"schema"`
	// Provides names the result's values.
	Provides []string `json:"provides,omitempty"`
}

// NewTask is a request for a task.
type NewTask struct {
	Kind    string
	Project string
	Params  json.RawMessage
	Options Options
	// IdempotencyKey makes a repeated request return the first task (per
	// project); the same key with other kind, params or options is
	// ErrKeyReused.
	IdempotencyKey string
}

// Filter selects tasks. Project "" selects every project's (for admins).
type Filter struct {
	Project string
	Kind    string
	Status  Status
	// Resource selects the tasks that made or acted on a resource: an id,
	// or "type/id".
	Resource string
	// Limit bounds a page (0: DefaultLimit; at most MaxLimit).
	Limit int
	// Marker is the last task id of the previous page (newest first).
	Marker string
}

// Page is one page of tasks, newest first; Next is the marker of the next
// page, "" on the last.
type Page struct {
	Tasks []Task `json:"tasks"`
	Next  string `json:"next,omitempty"`
}

const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

var (
	// ErrNotFound: no such task (or not the caller's project's).
	ErrNotFound = errors.New("jobs: task not found")
	// ErrUnknownKind: the kind is not registered.
	ErrUnknownKind = errors.New("jobs: unknown task kind")
	// ErrKeyReused: an idempotency key sent again with another request.
	ErrKeyReused = errors.New("jobs: idempotency key reused with another request")
	// ErrFinished: a cancel of a task that already ended.
	ErrFinished = errors.New("jobs: task already finished")
	// ErrBadStatus: a status name that does not exist.
	ErrBadStatus = errors.New("jobs: unknown status")
	// ErrBadMarker: a page marker that names no task.
	ErrBadMarker = errors.New("jobs: bad page marker")
	// ErrNoCredentials: no credentials are configured for the task's
	// project, so no worker could act for it.
	ErrNoCredentials = errors.New("jobs: no cloud credentials for the project")
	// ErrCloudUnavailable: the project's cloud cannot be reached now (its
	// Keystone is down, slow or answers 5xx); a later request may work.
	ErrCloudUnavailable = errors.New("jobs: the project's cloud cannot be reached")
)

// CloudUnavailableError is a transient failure to reach a project's
// cloud, as Config.Clouds reports it; it matches ErrCloudUnavailable.
type CloudUnavailableError struct {
	Project string
	// RetryAfter is when trying again makes sense (0: unknown).
	RetryAfter time.Duration
	Err        error
}

func (e *CloudUnavailableError) Error() string {
	return fmt.Sprintf("jobs: the cloud of project %s cannot be reached: %v", e.Project, e.Err)
}

func (e *CloudUnavailableError) Unwrap() error { return e.Err }

// Is matches ErrCloudUnavailable.
func (e *CloudUnavailableError) Is(target error) bool { return target == ErrCloudUnavailable }

// ValidationError lists what is wrong with a request, field by field.
type ValidationError struct {
	Fields []FieldError `json:"fields"`
}

// FieldError is one field's problem; Field is a JSON pointer-like path
// such as "params.flavor" or "options.timeout".
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Field + ": " + f.Message
	}
	return "jobs: invalid task: " + strings.Join(parts, "; ")
}
