package service

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/ostask/ostask/jobs"
)

// createTask: POST /v1/tasks.
func (s *Server) createTask(w http.ResponseWriter, r *http.Request, c *caller) error {
	nt, err := decodeCreate(w, r, c.Project.ID)
	if err != nil {
		return err
	}
	t, replayed, err := s.cfg.Backend.Create(r.Context(), nt)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/tasks/"+url.PathEscape(t.ID))
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	writeJSON(w, http.StatusAccepted, c.view(t))
	return nil
}

// getTask: GET /v1/tasks/{id}.
func (s *Server) getTask(w http.ResponseWriter, r *http.Request, c *caller) error {
	t, err := s.task(r, c)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c.view(t))
	return nil
}

// task reads the task of the path's id, if the caller may see it: another
// project's task is not found, except for admins.
func (s *Server) task(r *http.Request, c *caller) (jobs.Task, error) {
	t, err := s.cfg.Backend.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return jobs.Task{}, err
	}
	if !c.sees(t) {
		return jobs.Task{}, jobs.ErrNotFound
	}
	return t, nil
}

// listTasks: GET /v1/tasks (or its live stream with follow=true).
func (s *Server) listTasks(w http.ResponseWriter, r *http.Request, c *caller) error {
	q, err := parseListQuery(r.URL.Query(), "kind", "status", "resource", "limit", "marker", "follow")
	if err != nil {
		return err
	}
	if q.filter.Kind != "" && !s.knownKind(q.filter.Kind) {
		return badRequest("kind", "unknown kind")
	}
	q.filter.Project = c.scope()
	if q.follow {
		return s.followTasks(w, r, c, q.filter)
	}
	return s.page(w, r, c, q.filter)
}

// resourceTasks: GET /v1/resources/{type}/{id}/tasks, the resource's
// history.
func (s *Server) resourceTasks(w http.ResponseWriter, r *http.Request, c *caller) error {
	res, err := resourcePath(r)
	if err != nil {
		return err
	}
	q, err := parseListQuery(r.URL.Query(), "limit", "marker")
	if err != nil {
		return err
	}
	q.filter.Resource, q.filter.Project = res, c.scope()
	return s.page(w, r, c, q.filter)
}

// resourceFault: GET /v1/resources/{type}/{id}/fault.
func (s *Server) resourceFault(w http.ResponseWriter, r *http.Request, c *caller) error {
	res, err := resourcePath(r)
	if err != nil {
		return err
	}
	if err := noQuery(r); err != nil {
		return err
	}
	t, err := s.cfg.Backend.ResourceFault(r.Context(), c.scope(), res)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c.view(t))
	return nil
}

func resourcePath(r *http.Request) (string, error) {
	typ, id := r.PathValue("type"), r.PathValue("id")
	if !slices.Contains(resourceTypes, typ) {
		return "", badRequest("type", "unknown resource type %q (one of server, volume, image)", typ)
	}
	if id == "" || len(id) > 255 || !printable(id) {
		return "", badRequest("id", "not a resource id")
	}
	return typ + "/" + id, nil
}

func noQuery(r *http.Request) error {
	_, err := parseListQuery(r.URL.Query())
	return err
}

// pageBody is a page of tasks with the link to the next.
type pageBody struct {
	Tasks []jobs.Task `json:"tasks"`
	Next  string      `json:"next,omitempty"`
}

func (s *Server) page(w http.ResponseWriter, r *http.Request, c *caller, f jobs.Filter) error {
	p, err := s.cfg.Backend.List(r.Context(), f)
	if err != nil {
		return err
	}
	body := pageBody{Tasks: make([]jobs.Task, len(p.Tasks))}
	for i, t := range p.Tasks {
		body.Tasks[i] = c.view(t)
	}
	if p.Next != "" {
		q := r.URL.Query()
		q.Set("marker", p.Next)
		if f.Limit != 0 {
			q.Set("limit", strconv.Itoa(f.Limit))
		}
		body.Next = r.URL.Path + "?" + q.Encode()
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// taskEvents: GET /v1/tasks/{id}/events (or their stream with
// follow=true).
func (s *Server) taskEvents(w http.ResponseWriter, r *http.Request, c *caller) error {
	q, err := parseEventsQuery(r.URL.Query(), r.Header.Get("Last-Event-ID"))
	if err != nil {
		return err
	}
	t, err := s.task(r, c)
	if err != nil {
		return err
	}
	if q.follow {
		return s.followEvents(w, r, c, t.ID, q.after)
	}
	evs, err := s.cfg.Backend.Events(r.Context(), t.ID, q.after, 0)
	if err != nil {
		return err
	}
	out := make([]jobs.Event, len(evs))
	for i, e := range evs {
		out[i] = c.viewEvent(e)
	}
	writeJSON(w, http.StatusOK, map[string][]jobs.Event{"events": out})
	return nil
}

// taskGraph: GET /v1/tasks/{id}/graph.
func (s *Server) taskGraph(w http.ResponseWriter, r *http.Request, c *caller) error {
	t, err := s.task(r, c)
	if err != nil {
		return err
	}
	g, err := s.cfg.Backend.Graph(r.Context(), t.ID)
	if err != nil {
		return err
	}
	if g.Nodes == nil {
		g.Nodes = []jobs.Node{}
	}
	if g.Edges == nil {
		g.Edges = []jobs.Edge{}
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}

// cancelTask: POST /v1/tasks/{id}/cancel.
func (s *Server) cancelTask(w http.ResponseWriter, r *http.Request, c *caller) error {
	t, err := s.task(r, c)
	if err != nil {
		return err
	}
	t, err = s.cfg.Backend.Cancel(r.Context(), t.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, c.view(t))
	return nil
}

// kinds: GET /v1/kinds.
func (s *Server) kinds(w http.ResponseWriter, r *http.Request, c *caller) error {
	ks := s.cfg.Backend.Kinds()
	if ks == nil {
		ks = []jobs.Kind{}
	}
	writeJSON(w, http.StatusOK, map[string][]jobs.Kind{"kinds": ks})
	return nil
}

func (s *Server) knownKind(name string) bool {
	for _, k := range s.cfg.Backend.Kinds() {
		if k.Name == name {
			return true
		}
	}
	return false
}

// sees reports whether the caller may see t: its project's, or any for
// an admin.
func (c *caller) sees(t jobs.Task) bool { return c.Admin || t.Project == c.Project.ID }

// scope is the project a caller's lists are limited to ("" for admins:
// every project).
func (c *caller) scope() string {
	if c.Admin {
		return ""
	}
	return c.Project.ID
}

// view is t as the caller may see it: error details for admins only.
func (c *caller) view(t jobs.Task) jobs.Task {
	if t.Error != nil && t.Error.Details != nil && !c.Admin {
		e := *t.Error
		e.Details = nil
		t.Error = &e
	}
	return t
}

func (c *caller) viewEvent(e jobs.Event) jobs.Event {
	if e.Error != nil && e.Error.Details != nil && !c.Admin {
		er := *e.Error
		er.Details = nil
		e.Error = &er
	}
	return e
}
