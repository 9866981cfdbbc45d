package service

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Defaults for Config fields left zero.
const (
	// DefaultHeartbeat is how often an idle event stream sends a comment,
	// so that proxies and clients see it alive.
	DefaultHeartbeat = 15 * time.Second
	// CookieName is the session cookie: a Keystone token, HttpOnly,
	// SameSite=Strict.
	CookieName = "ostask_token"
	// TokenHeader carries a caller's Keystone token.
	TokenHeader = "X-Auth-Token"
)

// Config configures a Server.
type Config struct {
	// Backend is the task queue (required).
	Backend Backend
	// Auth validates tokens and logs users in (required); *Keystone.
	Auth Authenticator
	// Logger receives request errors (nil: slog.Default()).
	Logger *slog.Logger
	// Registerer receives the service's metrics and Gatherer serves
	// /metrics; nil for both: a registry of the server's own. A
	// *prometheus.Registry as Registerer is its own Gatherer.
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// UI serves / and every path outside the API (the dashboard); nil:
	// those paths are 404.
	UI http.Handler
	// AutoLogin, when set, logs a caller without a valid token in as this
	// user on GET /v1/auth/session (the demo user of serve --sim).
	AutoLogin *Login
	// Heartbeat is the idle interval of event streams (0:
	// DefaultHeartbeat).
	Heartbeat time.Duration
	// AccessLog logs one line per request at Info on Logger, once it is
	// answered: method, path and query, status, duration, bytes written,
	// the remote address and the caller's project when it authenticated
	// (never a header, so never a token or cookie). An event stream's
	// line comes when it ends.
	AccessLog bool
}

// Validate reports a missing required field.
func (c Config) Validate() error {
	switch {
	case c.Backend == nil:
		return errors.New("service: Config.Backend is required")
	case c.Auth == nil:
		return errors.New("service: Config.Auth is required")
	case c.Heartbeat < 0:
		return errors.New("service: Config.Heartbeat is negative")
	case c.Gatherer != nil && c.Registerer == nil:
		return errors.New("service: Config.Gatherer without a Registerer")
	}
	return nil
}

// Server is the REST API of tasks: an http.Handler.
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics
	routes  []route
	// streams is cancelled by CloseStreams.
	streams      context.Context
	closeStreams context.CancelFunc
}

// handlerFunc is one route's handler; an error it returns is answered in
// the API's error shape (unless the handler already wrote an answer).
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *caller) error

type route struct {
	method, path string
	h            handlerFunc
	// public routes take no token.
	public bool
}

// caller is who made a request: nil identity on public routes.
type caller struct {
	Identity
	token string
}

// New builds a Server.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = DefaultHeartbeat
	}
	if cfg.Registerer == nil {
		reg := prometheus.NewRegistry()
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	if cfg.Gatherer == nil {
		g, ok := cfg.Registerer.(prometheus.Gatherer)
		if !ok {
			return nil, errors.New("service: Config.Registerer is no Gatherer; set Config.Gatherer")
		}
		cfg.Gatherer = g
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux(), metrics: m}
	s.streams, s.closeStreams = context.WithCancel(context.Background())
	s.routes = s.table()
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	// Unknown API paths, and known ones with another method, answer in
	// the API's error shape rather than the mux's plain text.
	s.mux.Handle("/v1/", s.wrap(route{"", "/v1/", s.noRoute, true}))
	if cfg.UI != nil {
		s.mux.Handle("/", cfg.UI)
	} else {
		s.mux.Handle("/", s.wrap(route{"", "/", s.noRoute, true}))
	}
	return s, nil
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.cfg.AccessLog {
		s.mux.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	info := &accessInfo{}
	r = r.WithContext(context.WithValue(r.Context(), accessKey{}, info))
	defer func() {
		status := sw.status
		if !sw.wrote {
			status = http.StatusOK // net/http's answer to a handler that wrote nothing
		}
		attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path)}
		if r.URL.RawQuery != "" {
			attrs = append(attrs, slog.String("query", r.URL.RawQuery))
		}
		attrs = append(attrs, slog.Int("status", status), slog.Duration("duration", time.Since(start)),
			slog.Int64("bytes", sw.bytes), slog.String("remote", r.RemoteAddr))
		if info.project != "" {
			attrs = append(attrs, slog.String("project", info.project))
		}
		s.log.LogAttrs(context.Background(), slog.LevelInfo, "http request", attrs...)
	}()
	s.mux.ServeHTTP(sw, r)
}

// accessInfo carries what the access log learns inside the handlers.
type accessInfo struct {
	project string
}

type accessKey struct{}

// wrap is every route's middleware: recovery, authentication, the error
// shape, metrics.
func (s *Server) wrap(rt route) http.Handler {
	name := rt.path
	if rt.method != "" {
		name = rt.method + " " + rt.path
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("service: handler panic", "route", name, "panic", p, "stack", string(debug.Stack()))
				if !sw.wrote {
					writeError(sw, newError(http.StatusInternalServerError, CodeInternal, "internal error"))
				}
			}
			s.metrics.observe(name, sw.status, time.Since(start))
		}()
		var c *caller
		if !rt.public {
			var err error
			if c, err = s.authenticate(r); err != nil {
				s.fail(sw, r, name, err)
				return
			}
			if info, ok := r.Context().Value(accessKey{}).(*accessInfo); ok {
				info.project = c.Project.ID
			}
		}
		if err := rt.h(sw, r, c); err != nil {
			if sw.wrote {
				// A stream already under way: its end is the answer.
				if !errors.Is(err, context.Canceled) {
					s.log.Warn("service: stream ended", "route", name, "err", err)
				}
				return
			}
			s.fail(sw, r, name, err)
		}
	})
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, name string, err error) {
	e := toError(err)
	if e.Status >= 500 {
		s.log.Error("service: request failed", "route", name, "status", e.Status, "err", err)
	}
	writeError(w, e)
}

// authenticate reads the caller's token (X-Auth-Token, else the session
// cookie) and validates it.
func (s *Server) authenticate(r *http.Request) (*caller, error) {
	tok := requestToken(r)
	if tok == "" {
		return nil, fmt.Errorf("%w: no token (X-Auth-Token header or %s cookie)", ErrUnauthorized, CookieName)
	}
	id, err := s.cfg.Auth.Validate(r.Context(), tok)
	if err != nil {
		return nil, err
	}
	return &caller{Identity: id, token: tok}, nil
}

func requestToken(r *http.Request) string {
	if t := r.Header.Get(TokenHeader); t != "" {
		return t
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value
	}
	return ""
}

// noRoute answers paths the API does not have: 405 with Allow when the
// path exists under other methods, else 404.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request, _ *caller) error {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "/v1/" && pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		for _, m := range allow {
			w.Header().Add("Allow", m)
		}
		return newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "%s is not allowed on %s", r.Method, r.URL.Path)
	}
	return newError(http.StatusNotFound, CodeNotFound, "no such path: %s", r.URL.Path)
}

//go:embed openapi.json
var openapiDoc []byte

// OpenAPI returns the API's OpenAPI 3.1 document.
func OpenAPI() []byte { return append([]byte(nil), openapiDoc...) }

func (s *Server) openapi(w http.ResponseWriter, r *http.Request, _ *caller) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(openapiDoc)))
	_, err := w.Write(openapiDoc)
	return err
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ *caller) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, _ *caller) error {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := s.cfg.Backend.Ready(ctx); err != nil {
		s.log.Warn("service: not ready", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable",
			"error": &Error{Code: CodeUnavailable, Message: "the task store is not ready"}})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, _ *caller) error {
	promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

// statusWriter records the answer's status for metrics and whether one
// was written; Unwrap lets http.ResponseController reach Flush and the
// write deadline.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	bytes  int64 // of the body
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush keeps statusWriter an http.Flusher for handlers that test for one.
func (w *statusWriter) Flush() {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

var _ io.Writer = (*statusWriter)(nil)

// Routes lists the server's routes as "METHOD /path" (the OpenAPI
// document's test compares them).
func Routes() []string {
	s := &Server{}
	var out []string
	for _, rt := range s.table() {
		out = append(out, rt.method+" "+rt.path)
	}
	return out
}

// table is the route table.
func (s *Server) table() []route {
	return []route{
		{"POST", "/v1/tasks", s.createTask, false},
		{"GET", "/v1/tasks", s.listTasks, false},
		{"GET", "/v1/tasks/{id}", s.getTask, false},
		{"GET", "/v1/tasks/{id}/events", s.taskEvents, false},
		{"GET", "/v1/tasks/{id}/graph", s.taskGraph, false},
		{"POST", "/v1/tasks/{id}/cancel", s.cancelTask, false},
		{"GET", "/v1/resources/{type}/{id}/tasks", s.resourceTasks, false},
		{"GET", "/v1/resources/{type}/{id}/fault", s.resourceFault, false},
		{"GET", "/v1/kinds", s.kinds, false},
		{"POST", "/v1/auth/session", s.login, true},
		{"GET", "/v1/auth/session", s.whoami, true},
		{"DELETE", "/v1/auth/session", s.logout, true},
		{"GET", "/openapi.json", s.openapi, true},
		{"GET", "/healthz", s.healthz, true},
		{"GET", "/readyz", s.readyz, true},
		{"GET", "/metrics", s.serveMetrics, true},
	}
}
