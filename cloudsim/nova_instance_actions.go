package cloudsim

import (
	"net/http"
	"time"
)

// recordAction starts an os-instance-action for a mutating call. Its
// request_id is the call's local request id, which is how a client ties
// the action to the call it made. Callers hold s.mu.
func (s *Sim) recordAction(sv *server, rc *reqCtx, action string, now time.Time) *instanceAction {
	a := &instanceAction{
		Action: action, RequestID: rc.RequestID, UserID: rc.userID(), ProjectID: sv.ProjectID,
		Start: now.UTC(), Updated: now.UTC(),
	}
	if a.UserID == "" {
		a.UserID = sv.UserID
	}
	sv.Actions = append(sv.Actions, a)
	return a
}

// beginEvent starts an event of a on sv's host. Callers hold s.mu.
func (s *Sim) beginEvent(sv *server, a *instanceAction, name string, now time.Time) *instanceEvent {
	return s.beginEventOn(a, name, sv.Host, now)
}

// beginEventOn starts an event of a on host ("" for the API or the
// conductor). Callers hold s.mu.
func (s *Sim) beginEventOn(a *instanceAction, name, host string, now time.Time) *instanceEvent {
	ev := &instanceEvent{Event: name, Start: now.UTC(), Host: host}
	a.Events = append(a.Events, ev)
	a.Updated = now.UTC()
	return ev
}

// endEvent finishes ev; a failure marks the action's message "Error" as
// Nova's wrap_instance_event does. Callers hold s.mu.
func (s *Sim) endEvent(a *instanceAction, ev *instanceEvent, ok bool, details string, now time.Time) {
	if ev == nil || !ev.Finish.IsZero() {
		return
	}
	ev.Finish = now.UTC()
	a.Updated = now.UTC()
	if ok {
		ev.Result = "Success"
		return
	}
	ev.Result = "Error"
	ev.Details = details
	if details != "" {
		ev.Traceback = "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/nova/compute/manager.py\", line 10817, in _error_out_instance_on_exception\n    yield\nnova.exception.NovaException: " + details + "\n"
	}
	a.Message = "Error"
}

// endOpenEvents finishes every event of a that is still running.
func (s *Sim) endOpenEvents(a *instanceAction, ok bool, details string, now time.Time) {
	for _, ev := range a.Events {
		s.endEvent(a, ev, ok, details, now)
	}
}

func (s *Sim) actionView(sv *server, a *instanceAction, rc *reqCtx, withEvents bool) map[string]any {
	v := map[string]any{
		"action": a.Action, "instance_uuid": sv.ID, "project_id": a.ProjectID, "request_id": a.RequestID,
		"start_time": fmtNoZ(a.Start), "user_id": a.UserID, "message": nil,
	}
	if a.Message != "" {
		v["message"] = a.Message
	}
	if rc.MV.AtLeast(2, 58) {
		v["updated_at"] = fmtNoZ(a.Updated)
	}
	if !withEvents || !(rc.isAdmin() || rc.MV.AtLeast(2, 51)) {
		return v
	}
	// Nova lists events newest first (created_at desc, id desc).
	events := make([]any, 0, len(a.Events))
	for i := len(a.Events) - 1; i >= 0; i-- {
		ev := a.Events[i]
		e := map[string]any{"event": ev.Event, "start_time": fmtNoZ(ev.Start), "finish_time": nil, "result": nil}
		if !ev.Finish.IsZero() {
			e["finish_time"] = fmtNoZ(ev.Finish)
		}
		if ev.Result != "" {
			e["result"] = ev.Result
		}
		if rc.isAdmin() {
			e["traceback"] = nil
			if ev.Traceback != "" {
				e["traceback"] = ev.Traceback
			}
		}
		if rc.MV.AtLeast(2, 62) {
			e["hostId"] = hostID(sv.ProjectID, ev.Host)
			if rc.isAdmin() {
				e["host"] = ev.Host
			}
		}
		// details (2.84) need the events:details policy, admin only
		// by default: a member's events have no such key.
		if rc.MV.AtLeast(2, 84) && rc.isAdmin() {
			e["details"] = nil
			if ev.Details != "" {
				e["details"] = ev.Details
			}
		}
		events = append(events, e)
	}
	v["events"] = events
	return v
}

func (s *Sim) listInstanceActions(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	defer s.lockNow()()
	sv, e := s.findServer(rc, r.PathValue("id"), rc.MV.AtLeast(2, 21))
	if e != nil {
		return e
	}
	q := r.URL.Query()
	limit := s.cfg.MaxLimit
	var since, before time.Time
	marker := ""
	if rc.MV.AtLeast(2, 58) {
		if limit, e = s.limitParam(q.Get("limit"), q.Has("limit")); e != nil {
			return e
		}
		if v := q.Get("changes-since"); v != "" {
			t, ok := parseNovaTime(v)
			if !ok {
				return errf(400, "Invalid input for query parameters changes-since. Value: %s. '%s' is not a 'date-time'", v, v)
			}
			since = t
		}
		if v := q.Get("changes-before"); v != "" && rc.MV.AtLeast(2, 66) {
			t, ok := parseNovaTime(v)
			if !ok {
				return errf(400, "Invalid input for query parameters changes-before. Value: %s. '%s' is not a 'date-time'", v, v)
			}
			if !since.IsZero() && t.Before(since) {
				return errf(400, "The value of changes-since must be less than or equal to changes-before.")
			}
			before = t
		}
		marker = q.Get("marker")
	}
	actions := make([]*instanceAction, 0, len(sv.Actions))
	for i := len(sv.Actions) - 1; i >= 0; i-- {
		actions = append(actions, sv.Actions[i])
	}
	if marker != "" {
		i := 0
		for i < len(actions) && actions[i].RequestID != marker {
			i++
		}
		if i == len(actions) {
			return errf(400, "Marker %s could not be found.", marker)
		}
		actions = actions[i+1:]
	}
	out := []any{}
	for _, a := range actions {
		if !since.IsZero() && a.Updated.Before(since) {
			continue
		}
		if !before.IsZero() && a.Updated.After(before) {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, s.actionView(sv, a, rc, false))
	}
	body := map[string]any{"instanceActions": out}
	if rc.MV.AtLeast(2, 58) && limit > 0 && len(out) == limit {
		last := out[len(out)-1].(map[string]any)["request_id"].(string)
		body["links"] = []any{map[string]any{"rel": "next", "href": nextLink(s.linkBase(r)+r.URL.Path, q, last)}}
	}
	writeJSON(w, 200, body)
	return nil
}

func (s *Sim) showInstanceAction(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	defer s.lockNow()()
	sv, e := s.findServer(rc, r.PathValue("id"), rc.MV.AtLeast(2, 21))
	if e != nil {
		return e
	}
	req := r.PathValue("req")
	for _, a := range sv.Actions {
		if a.RequestID == req {
			writeJSON(w, 200, map[string]any{"instanceAction": s.actionView(sv, a, rc, true)})
			return nil
		}
	}
	return errf(404, "Action for request_id %s on instance %s not found", req, sv.ID)
}
