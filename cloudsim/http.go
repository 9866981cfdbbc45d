package cloudsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// service names one simulated API; it picks microversion headers and
// error-body conventions.
type service int

const (
	svcIdentity service = iota
	svcCompute
	svcVolume
	svcImage
)

// Path prefixes of the simulated services under the simulator's URL.
const (
	identityPrefix = "/identity"
	computePrefix  = "/compute/v2.1"
	volumePrefix   = "/volume/v3"
	imagePrefix    = "/image"
)

// apiError is an error with an HTTP status; handlers return it and the
// router writes it in the service's fault format.
type apiError struct {
	Code       int
	Message    string
	RetryAfter time.Duration
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.Code, e.Message) }

func errf(code int, format string, args ...any) *apiError {
	return &apiError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// faultName is Nova's and Cinder's fault name for a status code.
func faultName(code int) string {
	switch code {
	case 400:
		return "badRequest"
	case 401:
		return "unauthorized"
	case 403:
		return "forbidden"
	case 404:
		return "itemNotFound"
	case 405:
		return "badMethod"
	case 409:
		return "conflictingRequest"
	case 413, 429:
		return "overLimit"
	case 415:
		return "badMediaType"
	case 501:
		return "notImplemented"
	case 503:
		return "serviceUnavailable"
	}
	return "computeFault"
}

// writeError writes e in the format of svc. Nova and Cinder use
// {"<faultName>": {"code", "message"}}; Keystone (and 401s from
// keystonemiddleware anywhere) use {"error": {"code", "message", "title"}};
// Glance answers with webob's own JSON error body, {"message", "code":
// "404 Not Found", "title"}, whose message follows webob's body template
// (the explanation, "<br /><br />", then empty detail and comment lines).
func writeError(w http.ResponseWriter, svc service, e *apiError) {
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((e.RetryAfter+time.Second-1)/time.Second)))
	}
	var body any
	if svc == svcIdentity || e.Code == 401 {
		body = map[string]any{"error": map[string]any{"code": e.Code, "message": e.Message, "title": http.StatusText(e.Code)}}
	} else if svc == svcImage {
		body = map[string]any{"message": e.Message + "<br /><br />\n\n\n", "title": http.StatusText(e.Code),
			"code": fmt.Sprintf("%d %s", e.Code, http.StatusText(e.Code))}
	} else {
		inner := map[string]any{"code": e.Code, "message": e.Message}
		if e.RetryAfter > 0 {
			inner["retryAfter"] = strconv.Itoa(int((e.RetryAfter + time.Second - 1) / time.Second))
		}
		body = map[string]any{faultName(e.Code): inner}
		if svc == svcCompute {
			// Nova's faults go through webob, which adds the charset.
			w.Header().Set("Content-Type", "application/json; charset=UTF-8")
			w.WriteHeader(e.Code)
			_ = json.NewEncoder(w).Encode(body)
			return
		}
	}
	writeJSON(w, e.Code, body)
}

func writeJSON(w http.ResponseWriter, code int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if body != nil {
		_ = json.NewEncoder(w).Encode(body)
	}
}

// microversion is a parsed "major.minor".
type microversion struct{ Major, Minor int }

func (v microversion) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// AtLeast reports v >= major.minor.
func (v microversion) AtLeast(major, minor int) bool {
	return v.Major > major || (v.Major == major && v.Minor >= minor)
}

func parseMicroversion(s string) (microversion, bool) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), ".")
	if !ok {
		return microversion{}, false
	}
	ma, err1 := strconv.Atoi(a)
	mi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || ma < 0 || mi < 0 {
		return microversion{}, false
	}
	return microversion{ma, mi}, true
}

func mustMV(s string) microversion {
	v, ok := parseMicroversion(s)
	if !ok {
		panic("bad microversion constant " + s)
	}
	return v
}

var (
	computeMin = mustMV(ComputeMinMicroversion)
	computeMax = mustMV(ComputeMaxMicroversion)
	volumeMin  = mustMV(VolumeMinMicroversion)
	volumeMax  = mustMV(VolumeMaxMicroversion)
)

// negotiate reads the microversion a request asks for. The new
// OpenStack-API-Version header wins over the legacy one; no header means
// the minimum; "latest" means the maximum.
func negotiate(r *http.Request, svc service) (microversion, *apiError) {
	var lo, hi microversion
	switch svc {
	case svcCompute:
		lo, hi = computeMin, computeMax
	case svcVolume:
		lo, hi = volumeMin, volumeMax
	default:
		return microversion{}, nil
	}
	want := requestedMicroversion(r, svc)
	if want == "" {
		return lo, nil
	}
	if strings.EqualFold(want, "latest") {
		return hi, nil
	}
	v, ok := parseMicroversion(want)
	if !ok {
		return microversion{}, errf(400, "Invalid API version request string %s", want)
	}
	if !v.AtLeast(lo.Major, lo.Minor) || !hi.AtLeast(v.Major, v.Minor) {
		return microversion{}, errf(406, "Version %s is not supported by the API. Minimum is %s and maximum is %s.", want, lo, hi)
	}
	return v, nil
}

// requestedMicroversion is the version string a request asks for, "" for
// none.
func requestedMicroversion(r *http.Request, svc service) string {
	name, legacy := "compute", "X-OpenStack-Nova-API-Version"
	if svc == svcVolume {
		name, legacy = "volume", "X-OpenStack-Volume-API-Version"
	}
	want := ""
	for _, h := range r.Header.Values("OpenStack-API-Version") {
		for _, part := range strings.Split(h, ",") {
			f := strings.Fields(part)
			if len(f) == 2 && strings.EqualFold(f[0], name) {
				want = f[1]
			}
		}
	}
	if want == "" {
		want = r.Header.Get(legacy)
	}
	return want
}

// reqCtx is what the router hands to a handler: who is calling, with which
// microversion, and the request id that instance actions record.
type reqCtx struct {
	svc          service
	MV           microversion
	RequestID    string
	Token        *token
	loseResponse bool // set by a handler whose scripted fault says so
}

// isAdmin reports whether the caller holds the admin role.
func (rc *reqCtx) isAdmin() bool { return rc.Token != nil && rc.Token.Admin }

// projectID and userID of the caller.
func (rc *reqCtx) projectID() string {
	if rc.Token == nil {
		return ""
	}
	return rc.Token.ProjectID
}

func (rc *reqCtx) userID() string {
	if rc.Token == nil {
		return ""
	}
	return rc.Token.UserID
}

// LoseResponse makes the router drop the connection after the handler has
// done its work, so the change happens but the client sees an error.
func (rc *reqCtx) LoseResponse() { rc.loseResponse = true }

type handlerFunc func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error

// routeOpts tune one route.
type routeOpts struct {
	noAuth bool
}

// handle registers an OpenStack route: counted, faulted by the API fault
// plan, authenticated, microversioned, and with panics turned into 500s.
func (s *Sim) handle(mux *http.ServeMux, svc service, pattern string, h handlerFunc, opts ...routeOpts) {
	var o routeOpts
	if len(opts) > 0 {
		o = opts[0]
	}
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		s.counters.add(pattern)
		rc := &reqCtx{svc: svc, RequestID: "req-" + uuid.NewString()}
		w.Header().Set("X-Openstack-Request-Id", rc.RequestID)
		// Date comes from the simulator's clock, as a real server's comes
		// from its own: clients estimate the cloud's time from it.
		w.Header().Set("Date", s.clock.Now().UTC().Format(http.TimeFormat))
		if svc == svcCompute {
			w.Header().Set("X-Compute-Request-Id", rc.RequestID)
		}
		if e := s.apiFault(r, rc); e != nil {
			if e.Code == -1 {
				dropConnection(w)
				return
			}
			writeError(w, svc, e)
			return
		}
		if !o.noAuth {
			tok, e := s.authenticate(r)
			if e != nil {
				w.Header().Set("WWW-Authenticate", fmt.Sprintf("Keystone uri=%q", s.AuthURL()))
				writeError(w, svc, e)
				return
			}
			rc.Token = tok
			if e := scopeRequired(svc, tok); e != nil {
				writeError(w, svc, e)
				return
			}
		}
		mv, e := negotiate(r, svc)
		if e != nil {
			if e.Code == http.StatusNotAcceptable {
				// Nova and Cinder echo the version they refuse.
				echoMicroversionString(w, svc, requestedMicroversion(r, svc))
			}
			writeError(w, svc, e)
			return
		}
		rc.MV = mv
		echoMicroversion(w, svc, mv)
		buf := &bufferedWriter{header: w.Header()}
		if err := s.serve(buf, r, rc, h); err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				ae = errf(500, "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.\n%v", err)
			}
			buf = &bufferedWriter{header: w.Header()}
			writeError(buf, svc, ae)
		}
		if rc.loseResponse {
			dropConnection(w)
			return
		}
		buf.flush(w)
	})
}

// scopeRequired refuses an unscoped token on Nova, Cinder and Glance:
// their policies need a project (the default of newer releases, which
// enforce scope), so nothing is listed across projects or created without
// one. Keystone's token routes take any valid token.
func scopeRequired(svc service, tok *token) *apiError {
	if svc == svcIdentity || tok.ProjectID != "" {
		return nil
	}
	if svc == svcImage {
		return errf(403, "You are not authorized to complete this action with an unscoped token.")
	}
	return errf(403, "Policy doesn't allow this request with an unscoped token: a project-scoped token is required.")
}

// serve runs h, turning a panic into an error: bad input must never crash
// the simulator.
func (s *Sim) serve(w http.ResponseWriter, r *http.Request, rc *reqCtx, h handlerFunc) (err error) {
	defer func() {
		if p := recover(); p != nil {
			s.cfg.Logger.Error("cloudsim: handler panic", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error: %v", p)
		}
	}()
	return h(w, r, rc)
}

func echoMicroversion(w http.ResponseWriter, svc service, mv microversion) {
	echoMicroversionString(w, svc, mv.String())
}

func echoMicroversionString(w http.ResponseWriter, svc service, mv string) {
	switch svc {
	case svcCompute:
		w.Header().Set("OpenStack-API-Version", "compute "+mv)
		w.Header().Set("X-OpenStack-Nova-API-Version", mv)
		w.Header().Set("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
	case svcVolume:
		w.Header().Set("OpenStack-API-Version", "volume "+mv)
		w.Header().Set("Vary", "OpenStack-API-Version")
	}
}

// bufferedWriter holds a response so that the router can still replace it
// (a handler error after a partial write) or drop it (lose-response).
type bufferedWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = 200
	}
	return b.body.Write(p)
}
func (b *bufferedWriter) flush(w http.ResponseWriter) {
	if b.code == 0 {
		b.code = 200
	}
	w.WriteHeader(b.code)
	_, _ = w.Write(b.body.Bytes())
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// apiFault rolls the API-level faults of the plan for one request. It
// returns nil to go on, an error to answer with, or Code -1 to drop the
// connection. It may sleep (slow responses) and may mark the request
// lose-response.
func (s *Sim) apiFault(r *http.Request, rc *reqCtx) *apiError {
	a := s.faults.API
	if a.Match != "" && !strings.Contains(r.Method+" "+r.URL.Path, a.Match) {
		return nil
	}
	retryAfter := a.RetryAfter
	if retryAfter == 0 {
		retryAfter = defaultRetryAfter
	}
	s.mu.Lock()
	now := s.clock.Now()
	var status int
	for _, b := range a.Bursts {
		if now.UnixNano()%int64(b.Every) < int64(b.Length) && s.rng.Float64() < b.Fraction {
			status = b.Status
			break
		}
	}
	roll := func(p float64) bool { return p > 0 && s.rng.Float64() < p }
	if status == 0 {
		switch {
		case roll(a.Error500):
			status = 500
		case roll(a.Error503):
			status = 503
		case roll(a.RateLimit):
			status = 429
		case roll(a.Drop):
			status = -1
		}
	}
	slow := roll(a.Slow)
	if r.Method == http.MethodPost && roll(a.LoseResponse) {
		rc.loseResponse = true
	}
	s.mu.Unlock()
	if slow {
		d := a.SlowDelay
		if d == 0 {
			d = defaultSlowDelay
		}
		// A busy API keeps a request after its client gave up on it and
		// still carries it out: the sleep does not end with the request.
		s.sleep(context.WithoutCancel(r.Context()), d)
	}
	switch status {
	case 0:
		return nil
	case -1:
		return &apiError{Code: -1}
	case 429:
		return &apiError{Code: 429, Message: "Too many requests have been sent in a given amount of time. Please retry later.", RetryAfter: retryAfter}
	case 503:
		return &apiError{Code: 503, Message: "The server is currently unavailable. Please try again at a later time.", RetryAfter: retryAfter}
	default:
		return errf(500, "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.")
	}
}

// scriptedAPIFault turns a scripted fault kind that acts on the request
// itself (500, 503, 429, lose-response) into the router's action. It
// returns nil for kinds that act on the background walk instead.
func scriptedAPIFault(o outcome, rc *reqCtx) *apiError {
	switch o.kind {
	case Fault500:
		return errf(500, "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.")
	case Fault503:
		return &apiError{Code: 503, Message: "The server is currently unavailable. Please try again at a later time.", RetryAfter: defaultRetryAfter}
	case Fault429:
		return &apiError{Code: 429, Message: "Too many requests have been sent in a given amount of time. Please retry later.", RetryAfter: defaultRetryAfter}
	case FaultLoseResponse:
		rc.LoseResponse()
	}
	return nil
}

// maxBody caps request bodies; a larger one gets 413.
const maxBody = 1 << 20

// decodeBody decodes a JSON request body into v. Malformed JSON and wrong
// types get Nova's 400 messages.
func decodeBody(r *http.Request, v any) *apiError {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return errf(400, "Malformed request body")
	}
	if len(data) > maxBody {
		return errf(413, "Request is too large.")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return errf(400, "Malformed request body")
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return errf(400, "Invalid input for field/attribute %s. Value: %s. %s is not of type '%s'", te.Field, te.Value, te.Value, jsonTypeName(te.Type.Kind().String()))
		}
		return errf(400, "Malformed request body")
	}
	return nil
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "int", "int64", "float64":
		return "integer"
	case "bool":
		return "boolean"
	case "slice":
		return "array"
	}
	return "object"
}

// validUUID reports whether s is a UUID in any of the forms Nova accepts.
func validUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) >= 32
}

// Time formats of the services (see reference/openstack-api.md §0).
const (
	novaTime    = "2006-01-02T15:04:05Z"
	noZTime     = "2006-01-02T15:04:05.000000"
	rfc3339Time = "2006-01-02T15:04:05Z"
)

func fmtNova(t time.Time) string { return t.UTC().Format(novaTime) }

// fmtNoZ drops the fraction: Nova and Cinder keep times in DATETIME
// columns without fractional seconds, so a read shows ".000000".
func fmtNoZ(t time.Time) string { return t.UTC().Truncate(time.Second).Format(noZTime) }

// fmtNoZFrac keeps the microseconds, for the few bodies built before the
// row is read back (Cinder's volume create response).
func fmtNoZFrac(t time.Time) string { return t.UTC().Format(noZTime) }
func fmtZ(t time.Time) string       { return t.UTC().Format(rfc3339Time) }

// Handler returns the simulator's HTTP handler (Start serves it).
func (s *Sim) Handler() http.Handler {
	mux := http.NewServeMux()
	s.registerIdentity(mux)
	s.registerCompute(mux)
	s.registerVolume(mux)
	s.registerImage(mux)
	s.registerSimAPI(mux)
	s.registerFallbacks(mux)
	return mux
}

// registerFallbacks answers unknown routes and methods as each service
// does (checked on a Zed cloud), in JSON rather than Go's plain-text
// "404 page not found": Nova and Cinder route with the method, so a
// known path with another method is a 404 too, in webob's JSON body;
// Glance answers webob's 404, or 405 for a known path; Keystone answers
// 405 with flask's {"message"} and, where Keystone's flask sends an HTML
// page, 404 in its own JSON error shape.
func (s *Sim) registerFallbacks(mux *http.ServeMux) {
	otherMethod := func(r *http.Request, catchAll string) bool {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if m == r.Method {
				continue
			}
			r2 := r.Clone(r.Context())
			r2.Method = m
			if _, p := mux.Handler(r2); p != "" && p != catchAll {
				return true
			}
		}
		return false
	}
	for _, f := range []struct {
		prefix string
		svc    service
		noAuth bool
	}{
		{computePrefix[:strings.LastIndex(computePrefix, "/")] + "/", svcCompute, false},
		{volumePrefix + "/", svcVolume, false},
		{imagePrefix + "/", svcImage, false},
		{identityPrefix + "/", svcIdentity, true},
	} {
		pattern := f.prefix
		s.handle(mux, f.svc, pattern, func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
			if otherMethod(r, pattern) {
				switch f.svc {
				case svcImage:
					writeJSON(w, 405, map[string]any{"message": "The method " + r.Method + " is not allowed for this resource. <br /><br />\n",
						"code": "405 Method Not Allowed", "title": "Method Not Allowed"})
					return nil
				case svcIdentity:
					writeJSON(w, 405, map[string]any{"message": "The method is not allowed for the requested URL."})
					return nil
				}
			}
			if f.svc == svcIdentity {
				return errf(404, "The resource could not be found.")
			}
			writeWebobNotFound(w)
			return nil
		}, routeOpts{noAuth: f.noAuth})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { writeWebobNotFound(w) })
}

// writeWebobNotFound is webob's JSON 404, which Nova, Cinder and Glance
// send for a path their routers do not know.
func writeWebobNotFound(w http.ResponseWriter) {
	writeJSON(w, 404, map[string]any{"message": "The resource could not be found.<br /><br />\n\n\n", "code": "404 Not Found", "title": "Not Found"})
}
