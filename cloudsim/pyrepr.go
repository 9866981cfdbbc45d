package cloudsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Nova's validation messages print the offending JSON value as Python
// prints the object json.loads made of it: str() in "Value: %s", repr()
// in jsonschema's own part ("%r is not of type ..."). Dicts keep the order
// of the request body, so the raw JSON is rendered, not a Go map.

// pyRepr renders v as Python's repr() of the equivalent object. v is a
// json.RawMessage (rendered in its own key order), a string, a bool, nil,
// a number, or a map/slice of those (maps in sorted key order).
func pyRepr(v any) string {
	var b strings.Builder
	writePy(&b, v)
	return b.String()
}

// pyStr renders v as Python's str(): like repr, but a string is itself.
func pyStr(v any) string {
	switch t := v.(type) {
	case string:
		return t
	case json.RawMessage:
		var s string
		if jsonKind(t) == "string" && json.Unmarshal(t, &s) == nil {
			return s
		}
	}
	return pyRepr(v)
}

func writePy(b *strings.Builder, v any) {
	switch t := v.(type) {
	case nil:
		b.WriteString("None")
	case json.RawMessage:
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.UseNumber()
		if err := writePyTokens(b, dec); err != nil {
			b.Reset()
			b.Write(t)
		}
	case string:
		b.WriteString(pyQuote(t))
	case bool:
		if t {
			b.WriteString("True")
		} else {
			b.WriteString("False")
		}
	case json.Number:
		b.WriteString(pyNumber(t.String()))
	case int:
		b.WriteString(strconv.Itoa(t))
	case float64:
		b.WriteString(pyNumber(strconv.FormatFloat(t, 'g', -1, 64)))
	case []any:
		b.WriteByte('[')
		for i, x := range t {
			if i > 0 {
				b.WriteString(", ")
			}
			writePy(b, x)
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(pyQuote(k))
			b.WriteString(": ")
			writePy(b, t[k])
		}
		b.WriteByte('}')
	case map[string]json.RawMessage:
		m := make(map[string]any, len(t))
		for k, raw := range t {
			m[k] = raw
		}
		writePy(b, m)
	default:
		fmt.Fprint(b, t)
	}
}

// writePyTokens renders one JSON value from dec, keeping object key order.
func writePyTokens(b *strings.Builder, dec *json.Decoder) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		open, close := byte('['), byte(']')
		if t == '{' {
			open, close = '{', '}'
		}
		b.WriteByte(open)
		for i := 0; dec.More(); i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			if t == '{' {
				k, err := dec.Token()
				if err != nil {
					return err
				}
				b.WriteString(pyQuote(k.(string)))
				b.WriteString(": ")
			}
			if err := writePyTokens(b, dec); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return err
		}
		b.WriteByte(close)
	default:
		writePy(b, t)
	}
	return nil
}

// pyNumber renders a JSON number as Python's int or float repr.
func pyNumber(lit string) string {
	if !strings.ContainsAny(lit, ".eE") {
		if strings.HasPrefix(lit, "-0") && strings.Trim(lit, "-0") == "" {
			return "0"
		}
		return lit
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) {
		return "inf"
	}
	if f != 0 {
		if exp := math.Floor(math.Log10(math.Abs(f))); exp < -4 || exp >= 16 {
			return strconv.FormatFloat(f, 'e', -1, 64)
		}
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// pyQuote is Python's repr of a str: single quotes unless the text has a
// single quote and no double quote; control characters escaped.
func pyQuote(s string) string {
	q := byte('\'')
	if strings.Contains(s, "'") && !strings.Contains(s, "\"") {
		q = '"'
	}
	var b strings.Builder
	b.WriteByte(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == rune(q):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte(q)
	return b.String()
}
