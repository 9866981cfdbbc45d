package cloudsim_test

import (
	"testing"
)

// Nova's error messages, word for word (checked on a Zed Nova): schema
// errors print the body as Python's str()/repr() of what json.loads made
// of it, in the body's own key order.
func TestNovaExactErrorMessages(t *testing.T) {
	e := newNovaEnv(t, nil)
	img := e.defaultImage
	id := e.create("target")
	const unknownImage = "5d0a5e4c-8f5e-4a4e-9a55-1f0f3c2b7a10"
	tests := []struct {
		name, method, path, mv string
		body                   any
		code                   int
		msg                    string
	}{
		{"networks required, body in Python repr", "POST", "/compute/v2.1/servers", "2.37",
			`{"server": {"name": "x", "imageRef": "` + img + `", "flavorRef": "1", "min_count": 1, "metadata": {"b": "1", "a": "2"}, "config_drive": true}}`, 400,
			"Invalid input for field/attribute server. Value: {'name': 'x', 'imageRef': '" + img + "', 'flavorRef': '1', 'min_count': 1, 'metadata': {'b': '1', 'a': '2'}, 'config_drive': True}. 'networks' is a required property"},
		{"a name with a quote", "POST", "/compute/v2.1/servers", "2.37",
			`{"server": {"name": "it's", "flavorRef": 1, "description": null}}`, 400,
			`Invalid input for field/attribute server. Value: {'name': "it's", 'flavorRef': 1, 'description': None}. 'networks' is a required property`},
		{"null where a string belongs", "POST", "/compute/v2.1/servers", "2.37",
			`{"server": {"name": "x", "flavorRef": 1, "key_name": null, "networks": "none"}}`, 400,
			"Invalid input for field/attribute key_name. Value: None. None is not of type 'string'"},
		{"no server object", "POST", "/compute/v2.1/servers", "2.37", `{"servers": {}}`, 400,
			"'server' is a required property"},
		{"unexpected property", "POST", "/compute/v2.1/servers", "2.37", `{"server": {"name": "x", "bogus": [1.5, 2e20]}}`, 400,
			"Invalid input for field/attribute server. Value: {'name': 'x', 'bogus': [1.5, 2e+20]}. Additional properties are not allowed ('bogus' was unexpected)"},
		{"wrong type", "POST", "/compute/v2.1/servers", "2.37", `{"server": {"name": 12, "flavorRef": "1", "networks": "none"}}`, 400,
			"Invalid input for field/attribute name. Value: 12. 12 is not of type 'string'"},
		{"two allowed types", "POST", "/compute/v2.1/servers", "2.37", `{"server": {"name": "x", "flavorRef": true, "networks": "none"}}`, 400,
			"Invalid input for field/attribute flavorRef. Value: True. True is not of type 'string', 'integer'"},
		{"metadata value type names the key", "POST", "/compute/v2.1/servers", "2.37",
			`{"server": {"name": "x", "flavorRef": "1", "imageRef": "` + img + `", "networks": "none", "metadata": {"k": 1}}}`, 400,
			"Invalid input for field/attribute k. Value: 1. 1 is not of type 'string'"},
		{"string where an object belongs", "POST", "/compute/v2.1/servers/" + id + "/action", "2.37",
			`{"reboot": "HARD"}`, 400, "Invalid input for field/attribute reboot. Value: HARD. 'HARD' is not of type 'object'"},
		{"unknown image", "POST", "/compute/v2.1/servers", "2.37",
			`{"server": {"name": "x", "flavorRef": "1", "imageRef": "` + unknownImage + `", "networks": "none"}}`, 400,
			"Can not find requested image"},
		{"negative limit on servers", "GET", "/compute/v2.1/servers?limit=-1", "2.60", nil, 400,
			"Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'"},
		{"word limit on servers", "GET", "/compute/v2.1/servers/detail?limit=abc", "2.60", nil, 400,
			"Invalid input for query parameters limit. Value: abc. 'abc' does not match '^[0-9]*$'"},
		{"empty limit", "GET", "/compute/v2.1/servers?limit=", "2.60", nil, 400,
			"Invalid input for query parameters limit. Value: . '' is too short"},
		{"negative limit on flavors", "GET", "/compute/v2.1/flavors?limit=-1", "2.60", nil, 400,
			"Invalid input for query parameters limit. Value: -1. '-1' does not match '^[0-9]*$'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, e.demoTok, tc.mv, tc.body)
			if r.code != tc.code || r.errMessage() != tc.msg {
				t.Fatalf("%d %q\nwant %d %q", r.code, r.errMessage(), tc.code, tc.msg)
			}
		})
	}
}
