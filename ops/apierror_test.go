package ops_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/ostask/ostask/ops"
)

func TestAPIErrors(t *testing.T) {
	nova := gophercloud.ErrUnexpectedResponseCode{
		URL: "http://127.0.0.1:1/compute/v2.1/servers", Method: "POST", Expected: []int{202}, Actual: 400,
		Body:           []byte(`{"badRequest": {"code": 400, "message": "Flavor nope could not be found."}}`),
		ResponseHeader: http.Header{"X-Openstack-Request-Id": {"req-1"}},
	}
	keystone := gophercloud.ErrUnexpectedResponseCode{
		URL: "http://127.0.0.1:1/identity/v3/auth/tokens", Method: "POST", Actual: 401,
		Body: []byte(`{"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}`),
	}
	glance := gophercloud.ErrUnexpectedResponseCode{
		URL: "http://127.0.0.1:1/image/v2/images/x", Method: "DELETE", Actual: 404,
		Body:           []byte("<html><body><h1>404 Not Found</h1>\n\nNo image found with ID x\n</body></html>"),
		ResponseHeader: http.Header{"X-Compute-Request-Id": {"req-2"}},
	}
	long := gophercloud.ErrUnexpectedResponseCode{URL: "http://h/p", Method: "GET", Actual: 500, Body: []byte(strings.Repeat("x", 1000))}

	cases := []struct {
		name string
		err  error
		want []ops.APIError
		text string
	}{
		{"nova", fmt.Errorf("create: %w", nova),
			[]ops.APIError{{Code: 400, Method: "POST", Path: "/compute/v2.1/servers", Message: "Flavor nope could not be found.", RequestID: "req-1"}},
			"create: 400 Bad Request on POST /compute/v2.1/servers: Flavor nope could not be found. [req-1]"},
		{"keystone pointer", &keystone,
			[]ops.APIError{{Code: 401, Method: "POST", Path: "/identity/v3/auth/tokens", Message: "The request you have made requires authentication."}},
			"401 Unauthorized on POST /identity/v3/auth/tokens: The request you have made requires authentication."},
		{"glance html, joined", errors.Join(errors.New("first"), glance),
			[]ops.APIError{{Code: 404, Method: "DELETE", Path: "/image/v2/images/x", Message: "404 Not Found No image found with ID x", RequestID: "req-2"}},
			"first 404 Not Found on DELETE /image/v2/images/x: 404 Not Found No image found with ID x [req-2]"},
		{"no api error", errors.New("dial tcp: refused"), nil, "dial tcp: refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ops.APIErrors(tc.err)
			if len(got) != len(tc.want) {
				t.Fatalf("APIErrors: %d errors, want %d: %+v", len(got), len(tc.want), got)
			}
			for i := range got {
				if got[i].APIError != tc.want[i] {
					t.Errorf("APIErrors[%d] = %+v, want %+v", i, got[i].APIError, tc.want[i])
				}
			}
			if d := ops.Describe(tc.err); d != tc.text {
				t.Errorf("Describe = %q, want %q", d, tc.text)
			}
		})
	}
	t.Run("a long body is cut", func(t *testing.T) {
		ae := ops.APIErrors(long)[0]
		if n := len([]rune(ae.Message)); n != ops.MaxMessage+1 || !strings.HasSuffix(ae.Message, "…") {
			t.Errorf("message of %d runes (%q...), want %d and an ellipsis", n, ae.Message[:20], ops.MaxMessage+1)
		}
	})
	if ops.Describe(nil) != "" {
		t.Error("Describe(nil) is not empty")
	}
}
