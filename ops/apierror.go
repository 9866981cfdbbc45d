package ops

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

// APIError is an OpenStack API's refusal as people and programs want it:
// the status, the request, the cloud's own message (not gophercloud's
// text, which repeats the whole response body after the URL) and the
// cloud's request id.
type APIError struct {
	Code      int    // HTTP status
	Method    string // e.g. POST
	Path      string // the URL's path, e.g. /compute/v2.1/servers
	Message   string // the cloud's message, one line, at most MaxMessage runes
	RequestID string // X-Openstack-Request-Id (or Nova's X-Compute-Request-Id)
}

// MaxMessage bounds an APIError's Message: the clouds' messages are
// short, bodies that are not messages (HTML error pages) can be long.
const MaxMessage = 400

// String renders e on one line:
// "409 Conflict on POST /compute/v2.1/servers/ID/action: Cannot 'stop' instance ... [req-...]".
func (e APIError) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", e.Code, http.StatusText(e.Code))
	if e.Method != "" {
		fmt.Fprintf(&b, " on %s %s", e.Method, e.Path)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [%s]", e.RequestID)
	}
	return b.String()
}

// APIErrors returns every OpenStack API error in err's tree (through
// Unwrap and joined errors), outermost first, each with the raw error
// text it replaces.
func APIErrors(err error) []APIErrorIn {
	var out []APIErrorIn
	var walk func(error)
	walk = func(e error) {
		switch v := e.(type) {
		case nil:
			return
		case gophercloud.ErrUnexpectedResponseCode:
			out = append(out, APIErrorIn{Raw: v.Error(), APIError: apiErrorOf(v)})
		case *gophercloud.ErrUnexpectedResponseCode:
			out = append(out, APIErrorIn{Raw: v.Error(), APIError: apiErrorOf(*v)})
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

// APIErrorIn is an API error found in an error's tree, with Raw, the
// text gophercloud gave it.
type APIErrorIn struct {
	APIError
	Raw string
}

// Describe renders err for people on one line: every OpenStack API error
// in it becomes its APIError form in place of gophercloud's text.
func Describe(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	for _, ae := range APIErrors(err) {
		if strings.Contains(s, ae.Raw) {
			s = strings.ReplaceAll(s, ae.Raw, ae.String())
		}
	}
	return oneLine(s)
}

func apiErrorOf(ue gophercloud.ErrUnexpectedResponseCode) APIError {
	e := APIError{Code: ue.Actual, Method: ue.Method, Message: cloudMessage(ue.Body), RequestID: requestID(ue.ResponseHeader)}
	e.Path = ue.URL
	if u, err := url.Parse(ue.URL); err == nil && u.Path != "" {
		e.Path = u.Path
	}
	return e
}

var htmlTag = regexp.MustCompile(`<[^>]*>`)

// cloudMessage extracts the message of an OpenStack error body: Nova and
// Cinder wrap it as {"<kind>": {"code": N, "message": "..."}}, Keystone as
// {"error": {"message": "..."}}, Neutron as {"NeutronError": {...}};
// Glance answers plain text or HTML.
func cloudMessage(body []byte) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) == nil {
		var msg struct {
			Message string `json:"message"`
		}
		if raw, ok := top["message"]; ok {
			var s string
			if json.Unmarshal(raw, &s) == nil && s != "" {
				return limitMessage(oneLine(s))
			}
		}
		for _, raw := range top {
			if json.Unmarshal(raw, &msg) == nil && msg.Message != "" {
				return limitMessage(oneLine(msg.Message))
			}
		}
	}
	return limitMessage(oneLine(htmlTag.ReplaceAllString(string(body), " ")))
}

func limitMessage(s string) string {
	if r := []rune(s); len(r) > MaxMessage {
		return string(r[:MaxMessage]) + "…"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
