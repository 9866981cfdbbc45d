package cloudsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Cinder validates request bodies with jsonschema and reports the first
// violation as
//
//	Invalid input for field/attribute <field>. Value: <str(value)>. <jsonschema message>
//
// (or the bare jsonschema message for the body itself). The helpers here
// reproduce those messages, including Python's rendering of the offending
// value, so that a client matching on them sees what a real cloud sends.

// cinderDBMaxInt is Cinder's constants.DB_MAX_INT, the maximum of a size.
const cinderDBMaxInt = 0x7FFFFFFF

// decodeJSONAny reads a request body as untyped JSON with numbers kept as
// json.Number. Anything that is not exactly one JSON value is Cinder's
// "Malformed request body".
func decodeJSONAny(r *http.Request) (any, *apiError) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, errf(400, "Malformed request body")
	}
	if len(data) > maxBody {
		return nil, errf(413, "Request is too large.")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, errf(400, "Malformed request body")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errf(400, "Malformed request body")
	}
	return v, nil
}

func invalidField(field string, value any, msg string) *apiError {
	return errf(400, "Invalid input for field/attribute %s. Value: %s. %s", field, pyStr(value), msg)
}

// jsonIs reports whether v has the jsonschema type t (draft 4: a number
// with a fraction or exponent is not an integer, a boolean is not a number).
func jsonIs(v any, t string) bool {
	switch t {
	case "null":
		return v == nil
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "integer":
		n, ok := v.(json.Number)
		return ok && !strings.ContainsAny(n.String(), ".eE")
	case "number":
		_, ok := v.(json.Number)
		return ok
	}
	return false
}

// checkType is jsonschema's "type" keyword: field "" means the body itself.
func checkType(field string, v any, types ...string) *apiError {
	for _, t := range types {
		if jsonIs(v, t) {
			return nil
		}
	}
	q := make([]string, len(types))
	for i, t := range types {
		q[i] = "'" + t + "'"
	}
	msg := fmt.Sprintf("%s is not of type %s", pyRepr(v), strings.Join(q, ", "))
	if field == "" {
		return errf(400, "%s", msg)
	}
	return invalidField(field, v, msg)
}

// checkOnlyKeys is "additionalProperties": false.
func checkOnlyKeys(field string, obj map[string]any, allowed ...string) *apiError {
	var extra []string
	for k := range obj {
		ok := false
		for _, a := range allowed {
			if k == a {
				ok = true
				break
			}
		}
		if !ok {
			extra = append(extra, k)
		}
	}
	if len(extra) == 0 {
		return nil
	}
	msg := additionalPropsMsg(extra)
	if field == "" {
		return errf(400, "%s", msg)
	}
	return invalidField(field, obj, msg)
}

func additionalPropsMsg(keys []string) string {
	sort.Strings(keys)
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = pyRepr(k)
	}
	verb := "was"
	if len(q) > 1 {
		verb = "were"
	}
	return fmt.Sprintf("Additional properties are not allowed (%s %s unexpected)", strings.Join(q, ", "), verb)
}

// requireKey is "required": [key].
func requireKey(field string, obj map[string]any, key string) *apiError {
	if _, ok := obj[key]; ok {
		return nil
	}
	msg := fmt.Sprintf("%s is a required property", pyRepr(key))
	if field == "" {
		return errf(400, "%s", msg)
	}
	return invalidField(field, obj, msg)
}

var sizePattern = regexp.MustCompile(`^[0-9]+$`)

// checkVolumeSize is Cinder's parameter_types.volume_size: an integer or a
// string of digits, 1 <= size <= DB_MAX_INT. A null (when allowed) gives 0.
func checkVolumeSize(field string, v any, allowNull bool) (int, *apiError) {
	types := []string{"integer", "string"}
	if allowNull {
		types = append(types, "null")
		if v == nil {
			return 0, nil
		}
	}
	if e := checkType(field, v, types...); e != nil {
		return 0, e
	}
	var digits string
	switch x := v.(type) {
	case string:
		if !sizePattern.MatchString(x) {
			return 0, invalidField(field, v, fmt.Sprintf("%s does not match '^[0-9]+$'", pyRepr(x)))
		}
		digits = x
	case json.Number:
		digits = x.String()
	}
	n, ok := new(big.Int).SetString(digits, 10)
	if !ok {
		return 0, invalidField(field, v, fmt.Sprintf("%s does not match '^[0-9]+$'", pyRepr(v)))
	}
	if n.Cmp(big.NewInt(1)) < 0 {
		return 0, invalidField(field, v, fmt.Sprintf("%s is less than the minimum of 1", n.String()))
	}
	if n.Cmp(big.NewInt(cinderDBMaxInt)) > 0 {
		return 0, invalidField(field, v, fmt.Sprintf("%s is greater than the maximum of %d", n.String(), cinderDBMaxInt))
	}
	return int(n.Int64()), nil
}

// checkStringField is {"type": ["string", "null"], "maxLength": max} (max 0
// means no limit); minLen is the schema's minLength.
func checkStringField(field string, v any, minLen, maxLen int) (string, *apiError) {
	if e := checkType(field, v, "string", "null"); e != nil {
		return "", e
	}
	s, _ := v.(string)
	if v == nil {
		return "", nil
	}
	if n := len([]rune(s)); n < minLen {
		return "", invalidField(field, v, fmt.Sprintf("%s is too short", pyRepr(s)))
	} else if maxLen > 0 && n > maxLen {
		return "", invalidField(field, v, fmt.Sprintf("%s is too long", pyRepr(s)))
	}
	return s, nil
}

var metadataKeyPattern = regexp.MustCompile(`^[a-zA-Z0-9-_:. /]{1,255}$`)

// checkMetadata is Cinder's parameter_types.extra_specs (metadata_allows_null
// when allowNull): an object of string values of at most 255 characters,
// keys matching ^[a-zA-Z0-9-_:. /]{1,255}$.
func checkMetadata(field string, v any, allowNull bool) (map[string]string, *apiError) {
	types := []string{"object"}
	if allowNull {
		types = append(types, "null")
	}
	if e := checkType(field, v, types...); e != nil {
		return nil, e
	}
	obj, _ := v.(map[string]any)
	out := make(map[string]string, len(obj))
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var extra []string
	for _, k := range keys {
		if !metadataKeyPattern.MatchString(k) {
			extra = append(extra, k)
			continue
		}
		val := obj[k]
		if e := checkType(k, val, "string"); e != nil {
			return nil, e
		}
		s := val.(string)
		if len([]rune(s)) > 255 {
			return nil, invalidField(k, val, fmt.Sprintf("%s is too long", pyRepr(s)))
		}
		out[k] = s
	}
	if len(extra) > 0 {
		return nil, invalidField(field, obj, additionalPropsMsg(extra))
	}
	return out, nil
}

// checkOptionalUUID is parameter_types.optional_uuid.
func checkOptionalUUID(field string, v any) (string, *apiError) {
	if v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok || !validUUID(s) {
		return "", invalidField(field, v, fmt.Sprintf("%s is not valid under any of the given schemas", pyRepr(v)))
	}
	return s, nil
}

// checkOptionalBool is parameter_types.optional_boolean: null, a boolean,
// or one of the strings oslo's bool_from_string accepts.
func checkOptionalBool(field string, v any) (bool, *apiError) {
	switch x := v.(type) {
	case nil:
		return false, nil
	case bool:
		return x, nil
	case string:
		if b, ok := parseBoolString(x); ok {
			return b, nil
		}
	}
	return false, invalidField(field, v, fmt.Sprintf("%s is not valid under any of the given schemas", pyRepr(v)))
}

// parseBoolString is oslo's strict bool_from_string.
func parseBoolString(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "on", "y", "yes":
		return true, true
	case "0", "f", "false", "off", "n", "no":
		return false, true
	}
	return false, false
}

// parsePyDict parses the Python dict literal gophercloud (and cinderclient)
// send as a metadata filter, {'k':'v', 'k2':'v2'}, or the same in JSON.
// It reports false for anything else.
func parsePyDict(s string) (map[string]string, bool) {
	s = strings.TrimSpace(s)
	var m map[string]any
	if json.Unmarshal([]byte(s), &m) == nil {
		out := make(map[string]string, len(m))
		for k, v := range m {
			out[k] = pyStr(v)
		}
		return out, true
	}
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
		return nil, false
	}
	body := strings.TrimSpace(s[1 : len(s)-1])
	out := map[string]string{}
	for body != "" {
		k, rest, ok := pyString(body)
		if !ok {
			return nil, false
		}
		rest = strings.TrimSpace(rest)
		if !strings.HasPrefix(rest, ":") {
			return nil, false
		}
		rest = strings.TrimSpace(rest[1:])
		var v string
		if sv, r2, ok := pyString(rest); ok {
			v, rest = sv, r2
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			v, rest = strings.TrimSpace(rest[:end]), rest[end:]
			if _, err := strconv.ParseFloat(v, 64); err != nil && v != "True" && v != "False" && v != "None" {
				return nil, false
			}
		}
		out[k] = v
		rest = strings.TrimSpace(rest)
		if strings.HasPrefix(rest, ",") {
			rest = strings.TrimSpace(rest[1:])
		} else if rest != "" {
			return nil, false
		}
		body = rest
	}
	return out, true
}

// pyString reads one quoted Python string literal from the start of s.
func pyString(s string) (string, string, bool) {
	if s == "" || (s[0] != '\'' && s[0] != '"') {
		return "", s, false
	}
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == q:
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", s, false
}
