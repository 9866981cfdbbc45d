package ops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// serverListOpts asks for /servers/detail with changes-since.
type serverListOpts struct {
	changesSince time.Time
	name         string
	form         listForm
	limit        int
}

// monitorPageSize is the page size of the monitor's lists. Pages are
// dispatched as they arrive, oldest first, so a smaller page lets the
// longest-waiting operations complete sooner; a larger one makes fewer
// requests. 250 keeps a 1,000-change round at 4 requests.
const monitorPageSize = 250

func (o serverListOpts) ToServerListQuery() (string, error) {
	q := url.Values{}
	if !o.changesSince.IsZero() {
		q.Set("changes-since", o.changesSince.UTC().Format("2006-01-02T15:04:05Z"))
	}
	if o.name != "" {
		q.Set("name", o.name)
	}
	if o.form.sortKey != "" {
		q.Set("sort_key", o.form.sortKey)
		q.Set("sort_dir", o.form.sortDir)
	}
	if o.limit > 0 {
		q.Set("limit", strconv.Itoa(o.limit))
	}
	if len(q) == 0 {
		return "", nil
	}
	return "?" + q.Encode(), nil
}

// listForm is one way of asking Nova for the servers changed in a window.
//
// Why not sort_key=updated_at, which would give the oldest changes first:
// Nova lists the servers that are still being scheduled (its build
// requests) in front of the cell's servers and sorts them in Python; their
// updated_at is None, so with two or more of them the sort raises and the
// whole list answers 500 (BuildRequestList._sort_build_requests, still
// upstream). Every boot of two servers or more hits it. created_at is set
// on build requests, and in a burst of boots the servers created first
// are, by and large, the ones that change first.
type listForm struct {
	name             string
	sortKey, sortDir string
}

// serverListForms are tried in order; the monitor moves to the next one
// for good when the current one keeps failing in a way that says "this
// query", not "this cloud" (see formFault), while the next one works.
var serverListForms = []listForm{
	{name: "created_at-asc", sortKey: "created_at", sortDir: "asc"},
	{name: "default-order"}, // Nova's own: created_at desc
}

// formSwitchAfter is how many rounds in a row a list form may fail with a
// query fault, each time while another form answered, before the monitor
// gives it up for this cloud.
const formSwitchAfter = 2

// serverLister makes the compute monitor's rounds and remembers which list
// form works on this cloud.
type serverLister struct {
	c *Cloud

	mu       sync.Mutex
	forms    []listForm
	cur      int // index in forms of the form in use
	fails    int // rounds in a row the form in use failed with a query fault
	switches int

	pageSize int // monitorPageSize; tests shrink it

	// afterPage (guarded by mu), when set (tests), sees each page's server ids before the
	// next page is asked for.
	afterPage func(ids []string)
}

func newServerLister(c *Cloud, forms []listForm) *serverLister {
	return &serverLister{c: c, forms: forms, pageSize: monitorPageSize}
}

// form returns the form in use and its index.
func (l *serverLister) form() (listForm, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.forms[l.cur], l.cur
}

// formName is the name of the list form in use (for Stats).
func (l *serverLister) formName() string {
	f, _ := l.form()
	return f.name
}

// formFault reports whether err says that the query itself is at fault:
// a 500 (Nova's computeFault for an exception while listing) or 501, or a
// 400 (a sort key or filter this cloud refuses). 502, 503, 504 and 429
// are the cloud's or a proxy's trouble: every form would meet them.
func formFault(err error) bool {
	var ue gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &ue) {
		return false
	}
	switch ue.Actual {
	case http.StatusInternalServerError, http.StatusNotImplemented, http.StatusBadRequest:
		return true
	}
	return false
}

// poll is one compute monitor round. When the form in use fails with a
// query fault, the round is made again at once with the next form, so a
// form the cloud cannot serve costs one request, not a round; after
// formSwitchAfter such rounds the next form becomes the one in use.
func (l *serverLister) poll(ctx context.Context, req pollRequest, emit func([]*observation)) error {
	form, idx := l.form()
	err := l.pollWith(ctx, form, req, emit)
	if err == nil || !formFault(err) || len(l.forms) < 2 {
		if err == nil {
			l.mu.Lock()
			if l.cur == idx {
				l.fails = 0
			}
			l.mu.Unlock()
		}
		return err
	}
	alt := l.forms[(idx+1)%len(l.forms)]
	altErr := l.pollWith(ctx, alt, req, emit)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != idx {
		return altErr // another round already switched
	}
	if altErr != nil {
		// Both fail: the cloud is in trouble, not the query.
		return fmt.Errorf("%w (list form %s; form %s failed too: %v)", err, form.name, alt.name, altErr)
	}
	l.fails++
	if l.fails >= formSwitchAfter {
		l.cur = (idx + 1) % len(l.forms)
		l.fails = 0
		l.switches++
		l.c.log.Warn("ostask: the server list form keeps failing on this cloud; switched to another",
			"from", form.name, "to", alt.name, "err", err)
	}
	return nil
}

// pollWith lists the servers changed since req.Since (all pages) with
// form, following servers_links. Deleted servers come back as DELETED.
// Each server is decoded only as far as the monitor needs (id, status,
// task_state, fault); the full record is decoded for the operations that
// complete on it.
//
// Paging is not always stable. While a server moves from Nova's build
// requests to its cell, a marker naming it can make the next page skip
// servers or repeat them. A round that paged past such a marker, or saw a
// server twice, reports itself unstable, and the monitor does not move
// its changes-since window past it (see monitor.doRound): a change the
// round skipped is listed again by the next one.
func (l *serverLister) pollWith(ctx context.Context, form listForm, req pollRequest, emit func([]*observation)) error {
	c := l.c
	opts := serverListOpts{form: form, limit: l.pageSize}
	if !req.Full {
		opts.changesSince = req.Since
	}
	q, _ := opts.ToServerListQuery()
	next := c.Compute.ServiceURL("servers", "detail") + q
	seen := map[string]bool{}
	unstable := false
	for next != "" {
		page, err := c.getServerPage(ctx, next)
		if err != nil {
			return err
		}
		var obs []*observation
		var last liteServer
		for _, raw := range page.Servers {
			var lite liteServer
			if err := json.Unmarshal(raw, &lite); err != nil {
				return fmt.Errorf("decode server in list: %w", err)
			}
			last = lite
			if seen[lite.ID] {
				unstable = true
				continue
			}
			seen[lite.ID] = true
			if req.IDs[lite.ID] {
				obs = append(obs, lite.observation(raw))
			}
		}
		emit(obs)
		l.mu.Lock()
		afterPage := l.afterPage
		l.mu.Unlock()
		if afterPage != nil {
			ids := make([]string, 0, len(page.Servers))
			for _, raw := range page.Servers {
				var lite liteServer
				_ = json.Unmarshal(raw, &lite)
				ids = append(ids, lite.ID)
			}
			afterPage(ids)
		}
		next = ""
		if len(page.Servers) > 0 {
			for _, lk := range page.Links {
				if lk.Rel == "next" {
					next = lk.Href
				}
			}
		}
		if next != "" && last.scheduling() {
			// The next page starts after a server that may move to its
			// cell before Nova reads the marker.
			unstable = true
		}
	}
	if unstable && req.report != nil {
		req.report.unstable = true
	}
	var more []*observation
	if req.Full && !unstable {
		// A plain list hides deleted servers, so absence is proof, when
		// the paging was stable.
		for id := range req.IDs {
			if !seen[id] {
				more = append(more, &observation{ID: id, Gone: true, Status: StatusDeleted})
				seen[id] = true
			}
		}
	}
	// Watches no round has shown for a while get one GET each (bounded
	// per round): a server deleted while Nova was still scheduling it
	// never reaches a cell, so no changes-since list shows it as DELETED;
	// only its 404 does.
	for id := range req.Stale {
		if seen[id] {
			continue
		}
		o, err := c.getServerObservation(ctx, id)
		if err != nil {
			return err
		}
		more = append(more, o)
	}
	emit(more)
	return nil
}

// getServerObservation GETs one server: 404 is an observation of its
// absence.
func (c *Cloud) getServerObservation(ctx context.Context, id string) (*observation, error) {
	resp, err := c.Compute.Get(ctx, c.Compute.ServiceURL("servers", id), nil,
		&gophercloud.RequestOpts{KeepResponseBody: true, OkCodes: []int{200}})
	if gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		return &observation{ID: id, Gone: true, Status: StatusDeleted}, nil
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Server json.RawMessage `json:"server"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("decode server %s: %w", id, err)
	}
	var lite liteServer
	if err := json.Unmarshal(body.Server, &lite); err != nil {
		return nil, fmt.Errorf("decode server %s: %w", id, err)
	}
	return lite.observation(body.Server), nil
}

type serverPage struct {
	Servers []json.RawMessage `json:"servers"`
	Links   []struct {
		Rel  string `json:"rel"`
		Href string `json:"href"`
	} `json:"servers_links"`
}

func (c *Cloud) getServerPage(ctx context.Context, url string) (*serverPage, error) {
	resp, err := c.Compute.Get(ctx, url, nil, &gophercloud.RequestOpts{KeepResponseBody: true, OkCodes: []int{200}})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var page serverPage
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		return nil, fmt.Errorf("decode server list: %w", err)
	}
	return &page, nil
}

// liteServer is the part of a server the monitor decides on.
type liteServer struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	TaskState string `json:"OS-EXT-STS:task_state"`
	Fault     *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Details string `json:"details"`
	} `json:"fault"`
	Volumes []struct {
		ID string `json:"id"`
	} `json:"os-extended-volumes:volumes_attached"`
}

// scheduling reports whether the server may still be one of Nova's build
// requests: those show as BUILD with task_state scheduling.
func (l *liteServer) scheduling() bool {
	return l.Status == "BUILD" && (l.TaskState == "scheduling" || l.TaskState == "")
}

func (l *liteServer) observation(raw json.RawMessage) *observation {
	o := &observation{ID: l.ID, Status: l.Status, TaskState: l.TaskState, Resource: raw, Gone: l.Status == StatusDeleted}
	if l.Fault != nil && (l.Fault.Message != "" || l.Fault.Code != 0) {
		o.Fault = &faultInfo{Code: l.Fault.Code, Message: l.Fault.Message, Details: l.Fault.Details}
	}
	for _, v := range l.Volumes {
		o.Servers = append(o.Servers, v.ID)
	}
	return o
}
