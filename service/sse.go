package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ostask/ostask/jobs"
)

// Server-Sent Events. A stream's events carry ids the client sends back
// as Last-Event-ID when it reconnects: an event's Seq for a task's log, a
// change cursor for the live list.
const (
	// streamBatch bounds the events or tasks read per round.
	streamBatch = 500
	// writeTimeout drops a client that stops reading.
	writeTimeout = 30 * time.Second
	// retryMillis is the reconnection delay the stream asks clients for.
	retryMillis = 2000
)

// SSE event names.
const (
	EventEvent = "event" // a task's log entry (data: jobs.Event)
	EventEnd   = "end"   // the task is final (data: jobs.Task); the stream ends
	EventTask  = "task"  // a task of the live list changed (data: jobs.Task)
	EventReady = "ready" // the live list's stream starts (data: {"cursor": N})
)

type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func startSSE(w http.ResponseWriter) *sseWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	s := &sseWriter{w: w, rc: http.NewResponseController(w)}
	return s
}

// send writes one event, buffered: the stream flushes what it wrote
// before it waits (wait) and when it ends, so that a batch of events goes
// out in one write rather than one each.
func (s *sseWriter) send(event, id string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.WriteString("event: " + event + "\n")
	if id != "" {
		buf.WriteString("id: " + id + "\n")
	}
	buf.WriteString("data: ")
	buf.Write(b) // JSON has no raw newlines
	buf.WriteString("\n\n")
	return s.put(buf.Bytes())
}

func (s *sseWriter) comment(text string) error { return s.write([]byte(": " + text + "\n\n")) }

// put writes b, buffered.
func (s *sseWriter) put(b []byte) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(writeTimeout)) // not every writer has one
	_, err := s.w.Write(b)
	return err
}

// write writes b and flushes it with what send buffered.
func (s *sseWriter) write(b []byte) error {
	if err := s.put(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// flush sends what is buffered.
func (s *sseWriter) flush() error { return s.rc.Flush() }

// wait runs wait with a deadline of one heartbeat: it returns nil when
// wait did, or after sending a heartbeat comment; the request's end is
// its error.
func (srv *Server) wait(ctx context.Context, sw *sseWriter, wait func(context.Context) error) error {
	if err := sw.flush(); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, srv.cfg.Heartbeat)
	defer cancel()
	err := wait(wctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		return sw.comment("heartbeat")
	}
	return err
}

// followEvents streams a task's events after seq `after`, then `end` with
// the task once it is final.
func (srv *Server) followEvents(w http.ResponseWriter, r *http.Request, c *caller, id string, after int64) error {
	ctx, cancel := srv.streamContext(r)
	defer cancel()
	srv.metrics.streams.WithLabelValues("events").Inc()
	defer srv.metrics.streams.WithLabelValues("events").Dec()
	sw := startSSE(w)
	if err := sw.write([]byte("retry: " + strconv.Itoa(retryMillis) + "\n\n")); err != nil {
		return err
	}
	for {
		// The task first: if it was final before the events were read,
		// they hold its last one.
		t, err := srv.cfg.Backend.Get(ctx, id)
		if err != nil {
			return err
		}
		evs, err := srv.cfg.Backend.Events(ctx, id, after, streamBatch)
		if err != nil {
			return err
		}
		for _, e := range evs {
			if err := sw.send(EventEvent, strconv.FormatInt(e.Seq, 10), c.viewEvent(e)); err != nil {
				return err
			}
			after = e.Seq
		}
		if len(evs) == streamBatch {
			continue
		}
		if t.Status.Final() {
			if err := sw.send(EventEnd, "", c.view(t)); err != nil {
				return err
			}
			return sw.flush()
		}
		if err := srv.wait(ctx, sw, func(ctx context.Context) error {
			return srv.cfg.Backend.WaitEvents(ctx, id, after)
		}); err != nil {
			return err
		}
	}
}

// followTasks streams the changes of tasks matching f: first `ready` with
// the cursor it starts from (unless resumed with Last-Event-ID), then a
// `task` event per change.
func (srv *Server) followTasks(w http.ResponseWriter, r *http.Request, c *caller, f jobs.Filter) error {
	ctx, cancel := srv.streamContext(r)
	defer cancel()
	cursor := int64(-1)
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		n, err := parseSeq(last)
		if err != nil {
			return badRequest("Last-Event-ID", "must be a non-negative integer")
		}
		cursor = n
	}
	if cursor < 0 {
		_, now, err := srv.cfg.Backend.Changes(ctx, f, -1)
		if err != nil {
			return err
		}
		cursor = now
	}
	limit := f.Limit
	if limit == 0 || limit > streamBatch {
		f.Limit = streamBatch
	}
	srv.metrics.streams.WithLabelValues("tasks").Inc()
	defer srv.metrics.streams.WithLabelValues("tasks").Dec()
	sw := startSSE(w)
	if err := sw.write([]byte("retry: " + strconv.Itoa(retryMillis) + "\n\n")); err != nil {
		return err
	}
	if r.Header.Get("Last-Event-ID") == "" {
		if err := sw.send(EventReady, strconv.FormatInt(cursor, 10), map[string]int64{"cursor": cursor}); err != nil {
			return err
		}
	}
	for {
		ts, next, err := srv.cfg.Backend.Changes(ctx, f, cursor)
		if err != nil {
			return err
		}
		for i, t := range ts {
			// Only the batch's last event moves the client's resume point:
			// a client cut off within a batch gets all of it again.
			id := strconv.FormatInt(cursor, 10)
			if i == len(ts)-1 {
				id = strconv.FormatInt(next, 10)
			}
			if err := sw.send(EventTask, id, c.view(t)); err != nil {
				return err
			}
		}
		if next < cursor {
			return fmt.Errorf("service: the change cursor went back from %d to %d", cursor, next)
		}
		moved := next > cursor
		cursor = next
		if moved && len(ts) == f.Limit {
			continue
		}
		if err := srv.wait(ctx, sw, func(ctx context.Context) error {
			return srv.cfg.Backend.WaitChanges(ctx, cursor)
		}); err != nil {
			return err
		}
	}
}
