package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ostask/ostask/jobs"
	"github.com/ostask/ostask/retry"
)

// Client is a typed client of the service's API. Every error for an
// answer that is not a success is an *Error (errors.Is matches the jobs
// sentinels: jobs.ErrNotFound, jobs.ErrFinished, ...).
type Client struct {
	base  *url.URL
	token func(ctx context.Context) (string, error)
	http  *http.Client
	// reconnect paces a stream's reconnections.
	reconnect retry.Policy
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithHTTPClient sets the HTTP client (default: one without a timeout,
// since streams last).
func WithHTTPClient(h *http.Client) ClientOption { return func(c *Client) { c.http = h } }

// WithReconnect sets how a stream reconnects after it was cut: at most
// MaxAttempts connections in a row that bring nothing new (default 6,
// waiting 250 ms growing to 5 s).
func WithReconnect(p retry.Policy) ClientOption { return func(c *Client) { c.reconnect = p } }

// NewClient returns a client of the service at baseURL
// (http://host:port); token returns the Keystone token to send (called
// for each request, so that it may renew it).
func NewClient(baseURL string, token func(ctx context.Context) (string, error), opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("service: %q is not an http(s) URL", baseURL)
	}
	c := &Client{base: u, token: token, http: &http.Client{},
		reconnect: retry.Policy{MaxAttempts: 6, Initial: 250 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2}}
	for _, o := range opts {
		o(c)
	}
	if err := c.reconnect.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// StaticToken is a token source that always returns tok.
func StaticToken(tok string) func(context.Context) (string, error) {
	return func(context.Context) (string, error) { return tok, nil }
}

// ListOptions select a page of tasks.
type ListOptions struct {
	Kind     string
	Status   jobs.Status
	Resource string
	Limit    int
	Marker   string
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("kind", o.Kind)
	set("status", string(o.Status))
	set("resource", o.Resource)
	set("marker", o.Marker)
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

// Create posts a task; key ("" none) is its Idempotency-Key. replayed is
// true when the key found an earlier identical request's task.
func (c *Client) Create(ctx context.Context, req CreateRequest, key string) (t jobs.Task, replayed bool, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return jobs.Task{}, false, err
	}
	var h http.Header
	if key != "" {
		h = http.Header{"Idempotency-Key": {key}}
	}
	res, err := c.do(ctx, "POST", "/v1/tasks", nil, body, h, &t)
	if err != nil {
		return jobs.Task{}, false, err
	}
	return t, res.Header.Get("Idempotent-Replayed") == "true", nil
}

// Get returns a task.
func (c *Client) Get(ctx context.Context, id string) (t jobs.Task, err error) {
	_, err = c.do(ctx, "GET", "/v1/tasks/"+url.PathEscape(id), nil, nil, nil, &t)
	return t, err
}

// List returns a page of tasks, newest first; Page.Next is the marker of
// the next page ("" on the last).
func (c *Client) List(ctx context.Context, o ListOptions) (jobs.Page, error) {
	return c.page(ctx, "/v1/tasks", o.query())
}

// ResourceTasks returns a page of a resource's history (typ: server,
// volume or image).
func (c *Client) ResourceTasks(ctx context.Context, typ, id string, limit int, marker string) (jobs.Page, error) {
	return c.page(ctx, "/v1/resources/"+url.PathEscape(typ)+"/"+url.PathEscape(id)+"/tasks",
		ListOptions{Limit: limit, Marker: marker}.query())
}

func (c *Client) page(ctx context.Context, path string, q url.Values) (jobs.Page, error) {
	var body pageBody
	if _, err := c.do(ctx, "GET", path, q, nil, nil, &body); err != nil {
		return jobs.Page{}, err
	}
	p := jobs.Page{Tasks: body.Tasks}
	if body.Next != "" {
		u, err := url.Parse(body.Next)
		if err != nil {
			return jobs.Page{}, fmt.Errorf("service: bad next link %q: %w", body.Next, err)
		}
		p.Next = u.Query().Get("marker")
	}
	return p, nil
}

// ResourceFault returns the newest failed or reverted task on a
// resource; an error matching jobs.ErrNotFound when there is none.
func (c *Client) ResourceFault(ctx context.Context, typ, id string) (t jobs.Task, err error) {
	_, err = c.do(ctx, "GET", "/v1/resources/"+url.PathEscape(typ)+"/"+url.PathEscape(id)+"/fault", nil, nil, nil, &t)
	return t, err
}

// Events returns a task's events with Seq > after.
func (c *Client) Events(ctx context.Context, id string, after int64) ([]jobs.Event, error) {
	var body struct {
		Events []jobs.Event `json:"events"`
	}
	q := url.Values{}
	if after > 0 {
		q.Set("after", strconv.FormatInt(after, 10))
	}
	_, err := c.do(ctx, "GET", "/v1/tasks/"+url.PathEscape(id)+"/events", q, nil, nil, &body)
	return body.Events, err
}

// Cancel asks a task to stop (an error matching jobs.ErrFinished if it
// already ended).
func (c *Client) Cancel(ctx context.Context, id string) (t jobs.Task, err error) {
	_, err = c.do(ctx, "POST", "/v1/tasks/"+url.PathEscape(id)+"/cancel", nil, nil, nil, &t)
	return t, err
}

// Graph returns a task's flow as drawn.
func (c *Client) Graph(ctx context.Context, id string) (g jobs.Graph, err error) {
	_, err = c.do(ctx, "GET", "/v1/tasks/"+url.PathEscape(id)+"/graph", nil, nil, nil, &g)
	return g, err
}

// Kinds returns the kinds of task.
func (c *Client) Kinds(ctx context.Context) ([]jobs.Kind, error) {
	var body struct {
		Kinds []jobs.Kind `json:"kinds"`
	}
	_, err := c.do(ctx, "GET", "/v1/kinds", nil, nil, nil, &body)
	return body.Kinds, err
}

// Whoami returns who the client's token is.
func (c *Client) Whoami(ctx context.Context) (id Identity, err error) {
	_, err = c.do(ctx, "GET", "/v1/auth/session", nil, nil, nil, &id)
	return id, err
}

// FollowEvents streams a task's events with Seq > after to fn, in order,
// until the task is final, and returns the final task. A cut stream is
// reopened from the last event received (Last-Event-ID), so fn sees each
// event once. An error from fn stops it.
func (c *Client) FollowEvents(ctx context.Context, id string, after int64, fn func(jobs.Event) error) (jobs.Task, error) {
	var final *jobs.Task
	err := c.stream(ctx, "/v1/tasks/"+url.PathEscape(id)+"/events", url.Values{"follow": {"true"}}, strconv.FormatInt(after, 10),
		func(ev sseMessage) (bool, error) {
			switch ev.event {
			case EventEvent:
				var e jobs.Event
				if err := json.Unmarshal(ev.data, &e); err != nil {
					return false, fmt.Errorf("service: bad event: %w", err)
				}
				return false, fn(e)
			case EventEnd:
				var t jobs.Task
				if err := json.Unmarshal(ev.data, &t); err != nil {
					return false, fmt.Errorf("service: bad end event: %w", err)
				}
				final = &t
				return true, nil
			}
			return false, nil
		})
	if err != nil {
		return jobs.Task{}, err
	}
	if final == nil {
		return jobs.Task{}, errors.New("service: the event stream ended before the task did")
	}
	return *final, nil
}

// FollowTasks streams the changes of the tasks o selects (Kind, Status,
// Resource) to fn until ctx ends or fn fails; ready, if not nil, is
// called once the stream is open (changes after it are sent), the place
// to read the list. A cut stream resumes from the last change received.
// It returns ctx's error when ctx ends.
func (c *Client) FollowTasks(ctx context.Context, o ListOptions, ready func() error, fn func(jobs.Task) error) error {
	q := o.query()
	q.Del("marker")
	q.Set("follow", "true")
	return c.stream(ctx, "/v1/tasks", q, "", func(ev sseMessage) (bool, error) {
		switch ev.event {
		case EventReady:
			if ready != nil {
				return false, ready()
			}
		case EventTask:
			var t jobs.Task
			if err := json.Unmarshal(ev.data, &t); err != nil {
				return false, fmt.Errorf("service: bad task event: %w", err)
			}
			return false, fn(t)
		}
		return false, nil
	})
}

type sseMessage struct {
	event, id string
	data      []byte
}

// stream reads an SSE stream, handing each message to fn until fn says
// done; a cut connection is reopened with Last-Event-ID.
func (c *Client) stream(ctx context.Context, path string, q url.Values, lastID string, fn func(sseMessage) (bool, error)) error {
	failures := 0
	for {
		progressed, done, err := c.streamOnce(ctx, path, q, lastID, func(m sseMessage) (bool, error) {
			if m.id != "" {
				lastID = m.id
			}
			return fn(m)
		})
		if done || ctx.Err() != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		var apiErr *Error
		if errors.As(err, &apiErr) && apiErr.Status < 500 {
			return err // refused, not cut: reconnecting will not help
		}
		var fnErr *callbackError
		if errors.As(err, &fnErr) {
			return fnErr.err
		}
		if progressed {
			failures = 0
		}
		failures++
		if failures >= c.reconnect.MaxAttempts {
			return fmt.Errorf("service: event stream lost after %d attempts: %w", failures, err)
		}
		select {
		case <-time.After(c.reconnect.Delay(failures, rand.Float64())):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// callbackError carries an error of the stream's consumer, which ends the
// stream without a reconnection.
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }

func (c *Client) streamOnce(ctx context.Context, path string, q url.Values, lastID string, fn func(sseMessage) (bool, error)) (progressed, done bool, err error) {
	h := http.Header{"Accept": {"text/event-stream"}}
	if lastID != "" && lastID != "0" {
		h.Set("Last-Event-ID", lastID)
	}
	res, err := c.send(ctx, "GET", path, q, nil, h)
	if err != nil {
		return false, false, err
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, false, fmt.Errorf("service: %s answered %s, not an event stream", path, ct)
	}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var m sseMessage
	var data [][]byte
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if m.event != "" || data != nil {
				m.data = bytes.Join(data, []byte("\n"))
				if m.event == "" {
					m.event = "message"
				}
				progressed = true
				stop, err := fn(m)
				if err != nil {
					return progressed, false, &callbackError{err}
				}
				if stop {
					return progressed, true, nil
				}
			}
			m, data = sseMessage{}, nil
			continue
		}
		if line[0] == ':' {
			continue
		}
		name, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(name) {
		case "event":
			m.event = string(value)
		case "id":
			m.id = string(value)
		case "data":
			data = append(data, append([]byte(nil), value...))
		}
	}
	if err := sc.Err(); err != nil {
		return progressed, false, err
	}
	return progressed, false, io.ErrUnexpectedEOF
}

// do sends a request and decodes a JSON answer into out.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body []byte, h http.Header, out any) (*http.Response, error) {
	res, err := c.send(ctx, method, path, q, body, h)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			return nil, fmt.Errorf("service: %s %s: bad answer: %w", method, path, err)
		}
	}
	return res, nil
}

// send sends a request; an answer that is not a 2xx becomes an *Error.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, body []byte, h http.Header) (*http.Response, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != nil {
		tok, err := c.token(ctx)
		if err != nil {
			return nil, fmt.Errorf("service: token: %w", err)
		}
		req.Header.Set(TokenHeader, tok)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode/100 == 2 {
		return res, nil
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	var eb struct {
		Error *Error `json:"error"`
	}
	if json.Unmarshal(data, &eb) == nil && eb.Error != nil && eb.Error.Code != "" {
		eb.Error.Status = res.StatusCode
		if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && secs > 0 {
			eb.Error.RetryAfter = time.Duration(secs) * time.Second
		}
		return nil, eb.Error
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	return nil, &Error{Status: res.StatusCode, Code: "http_" + strconv.Itoa(res.StatusCode), Message: msg}
}
