package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

// describe renders err for people, on one line: every OpenStack API error
// in it becomes the cloud's own message with the status, the request and
// the request id, in place of gophercloud's text (which repeats the whole
// response body after the URL).
func describe(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	for _, ue := range apiErrors(err) {
		raw := ue.Error()
		if strings.Contains(s, raw) {
			s = strings.ReplaceAll(s, raw, apiMessage(ue))
		}
	}
	return oneLine(s)
}

// apiErrors collects the API errors in err's tree.
func apiErrors(err error) []gophercloud.ErrUnexpectedResponseCode {
	var out []gophercloud.ErrUnexpectedResponseCode
	var walk func(error)
	walk = func(e error) {
		switch v := e.(type) {
		case nil:
			return
		case gophercloud.ErrUnexpectedResponseCode:
			out = append(out, v)
		case *gophercloud.ErrUnexpectedResponseCode:
			out = append(out, *v)
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

// apiMessage is one API error as people want it:
// "409 Conflict on POST /compute/v2.1/servers/ID/action: Cannot 'stop' instance ... [req-...]".
func apiMessage(ue gophercloud.ErrUnexpectedResponseCode) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", ue.Actual, http.StatusText(ue.Actual))
	if ue.Method != "" {
		path := ue.URL
		if u, err := url.Parse(ue.URL); err == nil && u.Path != "" {
			path = u.Path
		}
		fmt.Fprintf(&b, " on %s %s", ue.Method, path)
	}
	if msg := cloudMessage(ue.Body); msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	if id := requestIDOf(ue.ResponseHeader); id != "" {
		fmt.Fprintf(&b, " [%s]", id)
	}
	return b.String()
}

func requestIDOf(h http.Header) string {
	if h == nil {
		return ""
	}
	if v := h.Get("X-Openstack-Request-Id"); v != "" {
		return v
	}
	return h.Get("X-Compute-Request-Id")
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
				return limit(oneLine(s))
			}
		}
		for _, raw := range top {
			if json.Unmarshal(raw, &msg) == nil && msg.Message != "" {
				return limit(oneLine(msg.Message))
			}
		}
	}
	return limit(oneLine(htmlTag.ReplaceAllString(string(body), " ")))
}

// limit keeps an error body from flooding the terminal; messages from
// the cloud are short, bodies that are not messages can be pages.
func limit(s string) string {
	const max = 400
	if r := []rune(s); len(r) > max {
		return string(r[:max]) + "…"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
