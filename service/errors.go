package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/ostask/ostask/jobs"
)

// Error codes of the API's error body; Error.Code is one of them.
const (
	CodeBadRequest       = "bad_request"        // 400: malformed or invalid input (see Fields)
	CodeUnauthorized     = "unauthorized"       // 401: no token, or not a valid one
	CodeNotFound         = "not_found"          // 404
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeConflict         = "conflict"           // 409: the task already ended
	CodeTooLarge         = "too_large"          // 413: body over MaxBodyBytes
	CodeKeyReused        = "key_reused"         // 422: idempotency key sent with another request
	CodeNoCredentials    = "no_credentials"     // 422: no credentials for the project
	CodeUnavailable      = "unavailable"        // 503: database or Keystone unreachable
	CodeCloudUnavailable = "cloud_unavailable"  // 503: the project's cloud cannot be reached now (Retry-After)
	CodeInternal         = "internal"           // 500
)

// Error is the API's one error shape, the value of {"error": ...}. The
// client returns it (as *Error) for every answer that is not a success.
type Error struct {
	Status  int               `json:"-"`
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  []jobs.FieldError `json:"fields,omitempty"`
	// RetryAfter, on a 503, is when to try again: the Retry-After header
	// (whole seconds), which the client reads back into it.
	RetryAfter time.Duration `json:"-"`
	// Err is the cause, for logs; never sent.
	Err error `json:"-"`
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
	for _, f := range e.Fields {
		s += fmt.Sprintf("; %s: %s", f.Field, f.Message)
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Is matches the jobs sentinels the error codes stand for, so that a
// client's caller can test errors.Is(err, jobs.ErrNotFound).
func (e *Error) Is(target error) bool {
	switch e.Code {
	case CodeNotFound:
		return target == jobs.ErrNotFound
	case CodeConflict:
		return target == jobs.ErrFinished
	case CodeKeyReused:
		return target == jobs.ErrKeyReused
	case CodeNoCredentials:
		return target == jobs.ErrNoCredentials
	case CodeCloudUnavailable:
		return target == jobs.ErrCloudUnavailable
	case CodeUnauthorized:
		return target == ErrUnauthorized
	}
	return false
}

// DefaultRetryAfter is the Retry-After of a 503 whose cause gives none.
const DefaultRetryAfter = 5 * time.Second

// ErrUnauthorized: no token, or one Keystone does not accept.
var ErrUnauthorized = errors.New("service: unauthorized")

// ErrUnavailable: Keystone could not be asked (its answer was not a
// verdict on the token).
var ErrUnavailable = errors.New("service: identity service unavailable")

func newError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(field, format string, args ...any) *Error {
	msg := fmt.Sprintf(format, args...)
	e := &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: msg}
	if field != "" {
		e.Message = "invalid " + field
		e.Fields = []jobs.FieldError{{Field: field, Message: msg}}
	}
	return e
}

func notFound(what string) *Error {
	return newError(http.StatusNotFound, CodeNotFound, "%s not found", what)
}

// toError maps an error from a handler (a backend's, the decoder's) onto
// the API's error: the jobs sentinels to their status codes, anything
// unknown to 500 without its text (it may carry internals).
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ve *jobs.ValidationError
	switch {
	case errors.As(err, &ve):
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "invalid task", Fields: ve.Fields, Err: err}
	case errors.Is(err, jobs.ErrUnknownKind):
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "invalid kind",
			Fields: []jobs.FieldError{{Field: "kind", Message: "unknown kind"}}, Err: err}
	case errors.Is(err, jobs.ErrBadMarker):
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "invalid marker",
			Fields: []jobs.FieldError{{Field: "marker", Message: "names no task"}}, Err: err}
	case errors.Is(err, jobs.ErrBadStatus):
		return &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "invalid status",
			Fields: []jobs.FieldError{{Field: "status", Message: err.Error()}}, Err: err}
	case errors.Is(err, jobs.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: CodeNotFound, Message: "task not found", Err: err}
	case errors.Is(err, jobs.ErrFinished):
		return &Error{Status: http.StatusConflict, Code: CodeConflict, Message: "the task already ended", Err: err}
	case errors.Is(err, jobs.ErrKeyReused):
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeKeyReused,
			Message: "the Idempotency-Key was sent before with another request", Err: err}
	case errors.Is(err, jobs.ErrNoCredentials):
		return &Error{Status: http.StatusUnprocessableEntity, Code: CodeNoCredentials,
			Message: "the service has no cloud credentials for this project, so no worker could run the task", Err: err}
	case errors.Is(err, jobs.ErrCloudUnavailable):
		after := DefaultRetryAfter
		var ce *jobs.CloudUnavailableError
		if errors.As(err, &ce) && ce.RetryAfter > 0 {
			after = ce.RetryAfter
		}
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeCloudUnavailable,
			Message:    "the project's cloud cannot be reached now (its identity service is unreachable or failing); nothing was stored: retry later",
			RetryAfter: after, Err: err}
	case errors.Is(err, ErrUnauthorized):
		return &Error{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "a valid token is required (X-Auth-Token)", Err: err}
	case errors.Is(err, ErrUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the identity service cannot be reached", Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: "the request was cut short", Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: "internal error", Err: err}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v) // the client went away; nothing left to tell it
}

func writeError(w http.ResponseWriter, e *Error) {
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Keystone uri="", X-Auth-Token`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}
