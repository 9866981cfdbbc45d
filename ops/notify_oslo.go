package ops

import (
	"bytes"
	"unicode/utf8"
)

// osloMessageOf returns the oslo.message of an oslo.messaging 2.0
// envelope, {"oslo.version": "2.0", "oslo.message": "<JSON as a string>"},
// unescaped, as encoding/json would decode it into osloEnvelope.Message,
// but in one pass: the message is nearly all of the body and every
// character of it is escaped once more inside the string, which
// encoding/json validates and then unquotes a character at a time. The
// consumer reads every notification of a burst on one goroutine.
//
// ok is false for anything else than a flat object of plain string
// values with the keys written as they are matched (no escapes, no other
// case, no invalid UTF-8, no surrogate escapes): the caller then decodes
// the body with encoding/json, which decides on it. FuzzOsloMessageOf
// checks the two agree.
func osloMessageOf(body []byte) (msg []byte, ok bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		return nil, false // {}: no message, let encoding/json say so
	}
	found := false
	for {
		// The key: a plain string.
		if i >= len(body) || body[i] != '"' {
			return nil, false
		}
		end := bytes.IndexByte(body[i+1:], '"')
		if end < 0 {
			return nil, false
		}
		key := body[i+1 : i+1+end]
		for _, c := range key {
			if c == '\\' || c < 0x20 || c >= 0x80 {
				return nil, false
			}
		}
		i = skipSpace(body, i+2+end)
		if i >= len(body) || body[i] != ':' {
			return nil, false
		}
		i = skipSpace(body, i+1)
		val, next, ok := unquoteJSON(body, i)
		if !ok {
			return nil, false
		}
		switch {
		case string(key) == "oslo.message":
			msg, found = val, true // the last one wins, as in encoding/json
		case bytes.EqualFold(key, []byte("oslo.message")) || bytes.EqualFold(key, []byte("oslo.version")):
			if string(key) != "oslo.version" {
				return nil, false // encoding/json matches keys of another case too
			}
		}
		i = skipSpace(body, next)
		if i >= len(body) {
			return nil, false
		}
		if body[i] == '}' {
			break
		}
		if body[i] != ',' {
			return nil, false
		}
		i = skipSpace(body, i+1)
	}
	if skipSpace(body, i+1) != len(body) || !found {
		return nil, false
	}
	return msg, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// unquoteJSON decodes the JSON string starting at b[i] (its opening
// quote): the string and the index after its closing quote. ok is false
// for what is not a string, or one that encoding/json would decode
// otherwise than byte for byte (invalid UTF-8, surrogate escapes).
func unquoteJSON(b []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	i++
	out := make([]byte, 0, len(b)-i)
	ascii := true
	for i < len(b) {
		// Copy the run of plain characters at once.
		j := i
		for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 {
			if b[j] >= 0x80 {
				ascii = false
			}
			j++
		}
		out = append(out, b[i:j]...)
		i = j
		if i >= len(b) || b[i] < 0x20 {
			return nil, 0, false
		}
		if b[i] == '"' {
			if !ascii && !utf8.Valid(out) {
				return nil, 0, false
			}
			return out, i + 1, true
		}
		// An escape.
		if i+1 >= len(b) {
			return nil, 0, false
		}
		switch c := b[i+1]; c {
		case '"', '\\', '/':
			out = append(out, c)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+6 > len(b) {
				return nil, 0, false
			}
			r := rune(0)
			for _, h := range b[i+2 : i+6] {
				switch {
				case '0' <= h && h <= '9':
					r = r<<4 | rune(h-'0')
				case 'a' <= h && h <= 'f':
					r = r<<4 | rune(h-'a'+10)
				case 'A' <= h && h <= 'F':
					r = r<<4 | rune(h-'A'+10)
				default:
					return nil, 0, false
				}
			}
			if 0xD800 <= r && r < 0xE000 {
				return nil, 0, false // surrogates: encoding/json pairs them
			}
			out = utf8.AppendRune(out, r)
			i += 4
		default:
			return nil, 0, false
		}
		i += 2
	}
	return nil, 0, false
}
