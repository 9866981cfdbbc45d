// Package servicetest is an in-memory service.Backend for tests of the
// service, its client and the CLI: it validates like the real queue
// (kinds, JSON Schema, idempotency keys per project, credentials per
// project), keeps events and a change log, and wakes waiters; tests
// drive tasks through their lives as a worker would (Start, Step,
// Finish). It runs nothing by itself (see Run).
package servicetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/ostask/ostask/jobs"
)

// NoopKind does nothing; its params are an empty object.
var NoopKind = jobs.Kind{Name: "noop", Help: "does nothing (for checking and measuring the service)",
	Schema: json.RawMessage(`{"type":"object","additionalProperties":false}`)}

// ServerKind stands for server.create: name, flavor and image required.
var ServerKind = jobs.Kind{Name: "server.create", Help: "create a server and wait until it is ACTIVE",
	Schema: json.RawMessage(`{"type":"object","additionalProperties":false,"required":["name","flavor","image"],
"properties":{"name":{"type":"string","minLength":1,"maxLength":255},"flavor":{"type":"string","minLength":1},
"image":{"type":"string","minLength":1},"networks":{"type":"string"}}}`),
	Provides: []string{"server_id"}}

// Backend is an in-memory service.Backend. The zero value is not usable;
// call New.
type Backend struct {
	mu      sync.Mutex
	kinds   []jobs.Kind
	schemas map[string]*jsonschema.Schema
	tasks   map[string]*entry
	order   []*entry          // creation order
	keys    map[string]*entry // project + "\x00" + idempotency key
	change  int64
	notify  chan struct{} // closed and replaced at every change
	creds   map[string]bool
	ready   error
	now     func() time.Time
	created int
}

type entry struct {
	t      jobs.Task
	events []jobs.Event
	graph  jobs.Graph
	change int64
	fp     string // the request's fingerprint, for idempotency keys
}

// New returns a backend with kinds (none: NoopKind and ServerKind), and
// credentials for every project.
func New(kinds ...jobs.Kind) *Backend {
	if len(kinds) == 0 {
		kinds = []jobs.Kind{NoopKind, ServerKind}
	}
	b := &Backend{kinds: kinds, schemas: map[string]*jsonschema.Schema{}, tasks: map[string]*entry{},
		keys: map[string]*entry{}, notify: make(chan struct{}), now: time.Now}
	for _, k := range kinds {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(k.Schema))
		if err != nil {
			panic(fmt.Sprintf("servicetest: kind %s: schema: %v", k.Name, err))
		}
		c := jsonschema.NewCompiler()
		url := "urn:ostask:kind:" + k.Name
		if err := c.AddResource(url, doc); err != nil {
			panic(err)
		}
		s, err := c.Compile(url)
		if err != nil {
			panic(fmt.Sprintf("servicetest: kind %s: schema: %v", k.Name, err))
		}
		b.schemas[k.Name] = s
	}
	return b
}

// SetCredentials limits the projects with credentials to projects (none:
// no project has any); a task of another project is jobs.ErrNoCredentials.
func (b *Backend) SetCredentials(projects ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.creds = map[string]bool{}
	for _, p := range projects {
		b.creds[p] = true
	}
}

// SetReady makes Ready return err.
func (b *Backend) SetReady(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ready = err
}

// Created counts the tasks stored (not replays).
func (b *Backend) Created() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.created
}

func (b *Backend) Kinds() []jobs.Kind { return slices.Clone(b.kinds) }

func (b *Backend) Ready(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ready
}

// Create validates nt and stores it, or returns the task its idempotency
// key names.
func (b *Backend) Create(ctx context.Context, nt jobs.NewTask) (jobs.Task, bool, error) {
	s, ok := b.schemas[nt.Kind]
	if !ok {
		return jobs.Task{}, false, fmt.Errorf("%w: %q", jobs.ErrUnknownKind, nt.Kind)
	}
	params := nt.Params
	if len(params) == 0 {
		params = json.RawMessage("{}")
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(params))
	if err != nil {
		return jobs.Task{}, false, &jobs.ValidationError{Fields: []jobs.FieldError{{Field: "params", Message: err.Error()}}}
	}
	if err := s.Validate(inst); err != nil {
		return jobs.Task{}, false, schemaError(err)
	}
	canon, _ := json.Marshal(inst) // a value UnmarshalJSON made always marshals
	opts, _ := json.Marshal(nt.Options)
	fp := nt.Kind + "\x00" + string(canon) + "\x00" + string(opts)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.creds != nil && !b.creds[nt.Project] {
		return jobs.Task{}, false, fmt.Errorf("%w: project %s", jobs.ErrNoCredentials, nt.Project)
	}
	key := nt.Project + "\x00" + nt.IdempotencyKey
	if nt.IdempotencyKey != "" {
		if e := b.keys[key]; e != nil {
			if e.fp != fp {
				return jobs.Task{}, false, jobs.ErrKeyReused
			}
			return e.t, true, nil
		}
	}
	now := b.now().UTC()
	id, err := uuid.NewV7()
	if err != nil {
		return jobs.Task{}, false, err
	}
	e := &entry{fp: fp, t: jobs.Task{ID: id.String(), Kind: nt.Kind, Project: nt.Project, Status: jobs.Queued,
		Params: json.RawMessage(canon), Options: nt.Options, CreatedAt: now, UpdatedAt: now}}
	b.tasks[e.t.ID] = e
	b.order = append(b.order, e)
	if nt.IdempotencyKey != "" {
		b.keys[key] = e
	}
	b.created++
	b.appendLocked(e, jobs.Event{To: string(jobs.Queued)})
	return e.t, false, nil
}

// schemaError lists a schema's complaints by field: params.<path>.
func schemaError(err error) error {
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return &jobs.ValidationError{Fields: []jobs.FieldError{{Field: "params", Message: err.Error()}}}
	}
	var fields []jobs.FieldError
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		path := append([]string{"params"}, e.InstanceLocation...)
		if r, ok := e.ErrorKind.(*kind.Required); ok {
			for _, m := range r.Missing {
				fields = append(fields, jobs.FieldError{Field: strings.Join(append(path, m), "."), Message: "is required"})
			}
			return
		}
		out := e.BasicOutput()
		msg := "invalid"
		if out.Error != nil {
			msg = out.Error.String()
		}
		fields = append(fields, jobs.FieldError{Field: strings.Join(path, "."), Message: msg})
	}
	walk(ve)
	return &jobs.ValidationError{Fields: fields}
}

func (b *Backend) Get(ctx context.Context, id string) (jobs.Task, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.tasks[id]
	if e == nil {
		return jobs.Task{}, jobs.ErrNotFound
	}
	return e.t, nil
}

func matches(t jobs.Task, f jobs.Filter) bool {
	if f.Project != "" && t.Project != f.Project || f.Kind != "" && t.Kind != f.Kind || f.Status != "" && t.Status != f.Status {
		return false
	}
	if f.Resource != "" {
		for _, r := range t.Resources {
			if r.ID == f.Resource || r.Type+"/"+r.ID == f.Resource {
				return true
			}
		}
		return false
	}
	return true
}

func (b *Backend) List(ctx context.Context, f jobs.Filter) (jobs.Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = jobs.DefaultLimit
	}
	limit = min(limit, jobs.MaxLimit)
	b.mu.Lock()
	defer b.mu.Unlock()
	start := len(b.order) - 1
	if f.Marker != "" {
		m := b.tasks[f.Marker]
		if m == nil {
			return jobs.Page{}, fmt.Errorf("%w: %q", jobs.ErrBadMarker, f.Marker)
		}
		start = slices.Index(b.order, m) - 1
	}
	p := jobs.Page{Tasks: []jobs.Task{}}
	for i := start; i >= 0; i-- {
		t := b.order[i].t
		if !matches(t, f) {
			continue
		}
		if len(p.Tasks) == limit {
			p.Next = p.Tasks[len(p.Tasks)-1].ID
			break
		}
		p.Tasks = append(p.Tasks, t)
	}
	return p, nil
}

func (b *Backend) Events(ctx context.Context, id string, after int64, limit int) ([]jobs.Event, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.tasks[id]
	if e == nil {
		return nil, jobs.ErrNotFound
	}
	after = max(0, min(after, int64(len(e.events))))
	out := slices.Clone(e.events[after:])
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// wait blocks until ready (called under b.mu) holds or ctx ends.
func (b *Backend) wait(ctx context.Context, ready func() (bool, error)) error {
	for {
		b.mu.Lock()
		ok, err := ready()
		ch := b.notify
		b.mu.Unlock()
		if ok || err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *Backend) WaitEvents(ctx context.Context, id string, after int64) error {
	return b.wait(ctx, func() (bool, error) {
		e := b.tasks[id]
		if e == nil {
			return false, jobs.ErrNotFound
		}
		return int64(len(e.events)) > after || e.t.Status.Final(), nil
	})
}

func (b *Backend) Changes(ctx context.Context, f jobs.Filter, after int64) ([]jobs.Task, int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if after < 0 {
		return nil, b.change, nil
	}
	var changed []*entry
	for _, e := range b.order {
		if e.change > after && matches(e.t, f) {
			changed = append(changed, e)
		}
	}
	slices.SortFunc(changed, func(x, y *entry) int { return int(x.change - y.change) })
	cursor := b.change
	if f.Limit > 0 && len(changed) > f.Limit {
		changed = changed[:f.Limit]
		cursor = changed[len(changed)-1].change
	}
	out := make([]jobs.Task, len(changed))
	for i, e := range changed {
		out[i] = e.t
	}
	return out, cursor, nil
}

func (b *Backend) WaitChanges(ctx context.Context, after int64) error {
	return b.wait(ctx, func() (bool, error) { return b.change > after, nil })
}

// Cancel: a queued task is cancelled at once; a running one is asked to
// stop and shown reverting (Finish ends it); a reverting one only gets
// the request recorded.
func (b *Backend) Cancel(ctx context.Context, id string) (jobs.Task, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.tasks[id]
	if e == nil {
		return jobs.Task{}, jobs.ErrNotFound
	}
	switch e.t.Status {
	case jobs.Queued:
		e.t.CancelRequested = true
		b.finishLocked(e, jobs.Cancelled)
	case jobs.Running:
		e.t.CancelRequested = true
		b.transitionLocked(e, jobs.Reverting)
	case jobs.Reverting:
		e.t.CancelRequested = true
		b.touchLocked(e)
	default:
		return jobs.Task{}, fmt.Errorf("%w: %s", jobs.ErrFinished, e.t.Status)
	}
	return e.t, nil
}

func (b *Backend) Graph(ctx context.Context, id string) (jobs.Graph, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.tasks[id]
	if e == nil {
		return jobs.Graph{}, jobs.ErrNotFound
	}
	return jobs.Graph{Nodes: slices.Clone(e.graph.Nodes), Edges: slices.Clone(e.graph.Edges)}, nil
}

func (b *Backend) ResourceFault(ctx context.Context, project, resource string) (jobs.Task, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.order) - 1; i >= 0; i-- {
		t := b.order[i].t
		if (t.Status == jobs.Failed || t.Status == jobs.Reverted) && matches(t, jobs.Filter{Project: project, Resource: resource}) {
			return t, nil
		}
	}
	return jobs.Task{}, jobs.ErrNotFound
}

// --- driving tasks, as a worker would ---

// SetGraph sets a task's flow: its atoms (all PENDING) and edges.
func (b *Backend) SetGraph(id string, nodes []string, edges []jobs.Edge) error {
	return b.update(id, func(e *entry) error {
		e.graph = jobs.Graph{Edges: edges}
		for _, n := range nodes {
			e.graph.Nodes = append(e.graph.Nodes, jobs.Node{Name: n, Kind: "task", State: "PENDING"})
		}
		e.t.Progress.Total = len(nodes)
		return nil
	})
}

// Start moves a queued task to running under worker.
func (b *Backend) Start(id, worker string) error {
	return b.update(id, func(e *entry) error {
		if e.t.Status != jobs.Queued {
			return fmt.Errorf("servicetest: start %s: it is %s", id, e.t.Status)
		}
		now := b.now().UTC()
		e.t.Worker, e.t.StartedAt = worker, &now
		e.t.Attempts++
		b.transitionLocked(e, jobs.Running)
		return nil
	})
}

// Step records a step's transition (engine states: RUNNING, SUCCESS,
// FAILURE, REVERTED, ...), in the log, the graph and the progress.
func (b *Backend) Step(id, step, to string, result json.RawMessage, stepErr *jobs.Error) error {
	return b.update(id, func(e *entry) error {
		from := "PENDING"
		for i := range e.graph.Nodes {
			if n := &e.graph.Nodes[i]; n.Name == step {
				from, n.State = n.State, to
			}
		}
		switch to {
		case "RUNNING":
			e.t.Progress.Current = step
		case "SUCCESS":
			e.t.Progress.Done++
			if e.t.Progress.Current == step {
				e.t.Progress.Current = ""
			}
		}
		b.appendLocked(e, jobs.Event{Step: step, From: from, To: to, Result: result, Error: stepErr, Worker: e.t.Worker})
		return nil
	})
}

// AddResource records a resource the task made or acts on.
func (b *Backend) AddResource(id string, r jobs.Resource) error {
	return b.update(id, func(e *entry) error {
		e.t.Resources = append(e.t.Resources, r)
		b.touchLocked(e)
		return nil
	})
}

// Finish ends a task with status (final, or Reverting on the way),
// result and error.
func (b *Backend) Finish(id string, status jobs.Status, result map[string]json.RawMessage, taskErr *jobs.Error) error {
	return b.update(id, func(e *entry) error {
		if e.t.Status.Final() {
			return fmt.Errorf("servicetest: finish %s: already %s", id, e.t.Status)
		}
		e.t.Result, e.t.Error = result, taskErr
		if !status.Final() {
			b.transitionLocked(e, status)
			return nil
		}
		b.finishLocked(e, status)
		return nil
	})
}

func (b *Backend) update(id string, f func(*entry) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.tasks[id]
	if e == nil {
		return jobs.ErrNotFound
	}
	return f(e)
}

func (b *Backend) transitionLocked(e *entry, to jobs.Status) {
	from := e.t.Status
	e.t.Status = to
	b.appendLocked(e, jobs.Event{From: string(from), To: string(to), Worker: e.t.Worker, Error: e.t.Error})
}

func (b *Backend) finishLocked(e *entry, to jobs.Status) {
	now := b.now().UTC()
	e.t.FinishedAt = &now
	e.t.Progress.Current = ""
	b.transitionLocked(e, to)
}

// appendLocked adds an event (Seq, TaskID, Time filled in) and counts a
// change of the task.
func (b *Backend) appendLocked(e *entry, ev jobs.Event) {
	ev.Seq, ev.TaskID, ev.Time = int64(len(e.events))+1, e.t.ID, b.now().UTC()
	if ev.Attempt == 0 {
		ev.Attempt = e.t.Attempts
	}
	e.events = append(e.events, ev)
	b.touchLocked(e)
}

func (b *Backend) touchLocked(e *entry) {
	b.change++
	e.change = b.change
	e.t.UpdatedAt = b.now().UTC()
	close(b.notify)
	b.notify = make(chan struct{})
}
