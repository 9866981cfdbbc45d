package service

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ostask/ostask/jobs"
)

// Limits on requests.
const (
	// MaxBodyBytes bounds a request body; past it the answer is 413.
	MaxBodyBytes = 1 << 20
	// MaxKeyLen bounds an Idempotency-Key.
	MaxKeyLen = 255
	// MaxRetries and MaxTimeout bound a task's options.
	MaxRetries = 100
	MaxTimeout = 7 * 24 * time.Hour
	// maxQueryValue bounds a query parameter's value.
	maxQueryValue = 1024
)

// CreateRequest is the body of POST /v1/tasks.
type CreateRequest struct {
	Kind    string          `json:"kind"`
	Params  json.RawMessage `json:"params,omitempty"`
	Options jobs.Options    `json:"options,omitzero"`
}

// decodeJSON reads one JSON value of r's body into v: at most
// MaxBodyBytes (else 413), no unknown fields, nothing after the value.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "the body is larger than %d bytes", MaxBodyBytes)
		}
		return badRequest("", "cannot read the body: %v", err)
	}
	return decodeBytes(data, v)
}

// decodeBytes is decodeJSON's parsing half, separate for the fuzzer.
func decodeBytes(data []byte, v any) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return badRequest("", "the body is empty; a JSON object is expected")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("", "the body holds more than one JSON value")
	}
	return nil
}

// jsonError turns a decoding error into a 400 naming the field where it
// can.
func jsonError(err error) *Error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return badRequest("", "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return badRequest("", "the body must be a JSON object, not %s", te.Value)
		}
		return badRequest(field, "must be %s, not %s", jsonType(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("", "the JSON body ends too early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for it (golang/go#29035).
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return badRequest(name, "unknown field")
	}
	return badRequest("", "invalid body: %v", err)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64", "int32":
		return "an integer"
	case "struct", "map":
		return "an object"
	case "slice":
		return "an array"
	case "bool":
		return "a boolean"
	}
	return "a " + kind
}

// decodeCreate reads and checks a task request: the body's shape, the
// kind's presence, params an object, options in bounds, the
// Idempotency-Key. Whether the kind exists and the params fit its
// schema is the backend's to say, in the same transaction as the insert.
func decodeCreate(w http.ResponseWriter, r *http.Request, project string) (jobs.NewTask, error) {
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jobs.NewTask{}, newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "the body is larger than %d bytes", MaxBodyBytes)
		}
		return jobs.NewTask{}, badRequest("", "cannot read the body: %v", err)
	}
	return parseCreate(data, r.Header.Get("Idempotency-Key"), project)
}

// createBody is CreateRequest with its options left raw, to be decoded on
// their own so that their errors name options.<field>.
type createBody struct {
	Kind    string          `json:"kind"`
	Params  json.RawMessage `json:"params"`
	Options json.RawMessage `json:"options"`
}

// parseCreate is decodeCreate after the body was read (the fuzzers' entry).
func parseCreate(data []byte, key, project string) (jobs.NewTask, error) {
	var b createBody
	if err := decodeBytes(data, &b); err != nil {
		return jobs.NewTask{}, err
	}
	req := CreateRequest{Kind: b.Kind, Params: b.Params}
	if opts := bytes.TrimSpace(b.Options); len(opts) > 0 && !bytes.Equal(opts, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(opts))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req.Options); err != nil {
			e := jsonError(err)
			switch {
			case len(e.Fields) == 1:
				e.Fields[0].Field = "options." + e.Fields[0].Field
				e.Message = "invalid " + e.Fields[0].Field
			case opts[0] != '{':
				e = badRequest("options", "must be an object")
			default:
				// Only options.timeout has a decoder of its own (jobs.Duration).
				e = badRequest("options.timeout", "%s", strings.TrimPrefix(err.Error(), "json: "))
			}
			return jobs.NewTask{}, e
		}
	}
	return checkCreate(req, key, project)
}

func checkCreate(req CreateRequest, key, project string) (jobs.NewTask, error) {
	var fields []jobs.FieldError
	add := func(field, format string, args ...any) {
		fields = append(fields, jobs.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	switch {
	case req.Kind == "":
		add("kind", "is required")
	case len(req.Kind) > 100 || !printable(req.Kind):
		add("kind", "unknown kind")
	}
	params := bytes.TrimSpace(req.Params)
	switch {
	case len(params) == 0 || bytes.Equal(params, []byte("null")):
		params = []byte("{}")
	case params[0] != '{':
		add("params", "must be a JSON object")
	}
	if req.Options.Retries < 0 || req.Options.Retries > MaxRetries {
		add("options.retries", "must be between 0 and %d", MaxRetries)
	}
	if time.Duration(req.Options.Timeout) > MaxTimeout {
		add("options.timeout", "must be at most %s", MaxTimeout)
	}
	if len(key) > MaxKeyLen || !printable(key) {
		add("Idempotency-Key", "must be at most %d printable ASCII characters", MaxKeyLen)
	}
	if fields != nil {
		return jobs.NewTask{}, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "invalid task", Fields: fields}
	}
	return jobs.NewTask{Kind: req.Kind, Project: project, Params: json.RawMessage(params), Options: req.Options,
		IdempotencyKey: key}, nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// listQuery is a list request's parameters.
type listQuery struct {
	filter jobs.Filter
	follow bool
}

// parseListQuery reads ?kind=&status=&resource=&limit=&marker=&follow=.
// allowed names the parameters this route takes; any other is a 400, as
// is a repeated one.
func parseListQuery(q url.Values, allowed ...string) (listQuery, error) {
	var lq listQuery
	var fields []jobs.FieldError
	add := func(field, format string, args ...any) {
		fields = append(fields, jobs.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
	}
	for name, vals := range q {
		if !contains(allowed, name) {
			add(name, "unknown query parameter")
			continue
		}
		if len(vals) > 1 {
			add(name, "given more than once")
			continue
		}
		v := vals[0]
		if len(v) > maxQueryValue || !utf8.ValidString(v) {
			add(name, "too long or not UTF-8")
			continue
		}
		switch name {
		case "kind":
			lq.filter.Kind = v
		case "status":
			if v == "" {
				continue
			}
			st, err := jobs.ParseStatus(v)
			if err != nil {
				add("status", "unknown status %q (one of %s)", v, statusList())
				continue
			}
			lq.filter.Status = st
		case "resource":
			lq.filter.Resource = v
		case "marker":
			lq.filter.Marker = v
		case "limit":
			if v == "" {
				continue
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > jobs.MaxLimit {
				add("limit", "must be an integer from 1 to %d", jobs.MaxLimit)
				continue
			}
			lq.filter.Limit = n
		case "follow":
			b, err := parseBool(v)
			if err != nil {
				add("follow", "must be true or false")
				continue
			}
			lq.follow = b
		}
	}
	if fields != nil {
		sortFields(fields)
		return lq, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "invalid query", Fields: fields}
	}
	return lq, nil
}

// eventsQuery is an events request's parameters.
type eventsQuery struct {
	after  int64
	follow bool
}

// parseEventsQuery reads ?after=&follow= and the Last-Event-ID header,
// which wins over after (it is the browser's resume point).
func parseEventsQuery(q url.Values, lastEventID string) (eventsQuery, error) {
	var eq eventsQuery
	var fields []jobs.FieldError
	add := func(field, msg string) { fields = append(fields, jobs.FieldError{Field: field, Message: msg}) }
	for name, vals := range q {
		if name != "after" && name != "follow" {
			add(name, "unknown query parameter")
			continue
		}
		if len(vals) > 1 {
			add(name, "given more than once")
			continue
		}
		switch name {
		case "after":
			n, err := parseSeq(vals[0])
			if err != nil {
				add("after", "must be a non-negative integer")
				continue
			}
			eq.after = n
		case "follow":
			b, err := parseBool(vals[0])
			if err != nil {
				add("follow", "must be true or false")
				continue
			}
			eq.follow = b
		}
	}
	if lastEventID != "" {
		n, err := parseSeq(lastEventID)
		if err != nil {
			add("Last-Event-ID", "must be a non-negative integer")
		} else {
			eq.after = n
		}
	}
	if fields != nil {
		sortFields(fields)
		return eq, &Error{Status: http.StatusBadRequest, Code: CodeBadRequest, Message: "invalid query", Fields: fields}
	}
	return eq, nil
}

func parseSeq(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a non-negative integer: %q", s)
	}
	return n, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "", "true", "1", "yes":
		return true, nil
	case "false", "0", "no":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean: %q", s)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sortFields(fields []jobs.FieldError) {
	for i := 1; i < len(fields); i++ {
		for j := i; j > 0 && fields[j].Field < fields[j-1].Field; j-- {
			fields[j], fields[j-1] = fields[j-1], fields[j]
		}
	}
}

func statusList() string {
	names := make([]string, len(jobs.Statuses))
	for i, s := range jobs.Statuses {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// resourceTypes are the cloud resources tasks make or act on.
var resourceTypes = []string{"server", "volume", "image"}
