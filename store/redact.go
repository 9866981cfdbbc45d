package store

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
)

// Secrets never reach the database. Two rules apply to every JSON document
// a DB writes (results, store values, failures, retry histories):
//
//   - A member whose key names a secret (see SecretKey) is removed, at any
//     depth: a *servers.Server result keeps everything but its adminPass.
//   - Every occurrence of a registered secret value (WithSecrets,
//     DB.AddSecrets: the cloud's password, token, application credential
//     secret) is replaced by "[redacted]", wherever it hides: in a failure
//     message, inside a URL, in a store value.
//
// A removed member decodes as its zero value after a resume, so a flow
// that needs a secret must be given it again (engine.WithStore) rather than
// read it back.

// Redacted replaces a registered secret in stored text.
const Redacted = "[redacted]"

// MinSecretLen is the shortest registered secret that is scrubbed; shorter
// strings would match ordinary text everywhere and are ignored.
const MinSecretLen = 6

// secretSuffixes end the normalised keys that name secrets.
var secretSuffixes = []string{"password", "passwd", "passphrase", "secret", "token", "privatekey", "adminpass"}

// needles find documents that may hold a secret key without decoding them;
// every suffix above contains one.
var needles = []string{"pass", "secret", "token", "private"}

// SecretKey reports whether a JSON key names a secret: its letters and
// digits, lower-cased, end with password, passwd, passphrase, secret,
// token, privatekey or adminpass ("adminPass", "X-Auth-Token",
// "application_credential_secret", "db_password").
func SecretKey(key string) bool {
	var b strings.Builder
	for _, r := range strings.ToLower(key) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	k := b.String()
	for _, s := range secretSuffixes {
		if strings.HasSuffix(k, s) {
			return true
		}
	}
	return false
}

type redactor struct {
	mu      sync.RWMutex
	secrets [][]byte // as they appear inside a JSON string
}

func (r *redactor) add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range secrets {
		if len(s) < MinSecretLen {
			continue
		}
		// Both ways encoding/json writes it: with HTML escaping (Marshal's
		// default: & < > as \u0026...) and without (what scrub
		// re-encodes with), so that neither document form keeps it.
		for _, html := range []bool{true, false} {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(html)
			_ = enc.Encode(s) // a string always encodes
			b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			esc := b[1 : len(b)-1]
			if !containsBytes(r.secrets, esc) {
				r.secrets = append(r.secrets, esc)
			}
		}
	}
}

func containsBytes(list [][]byte, b []byte) bool {
	for _, x := range list {
		if bytes.Equal(x, b) {
			return true
		}
	}
	return false
}

// scrub returns doc without secret members and registered secrets. doc
// must be valid JSON; the result is too.
func (r *redactor) scrub(doc []byte) []byte {
	if mayHoldSecretKey(doc) {
		var v any
		d := json.NewDecoder(bytes.NewReader(doc))
		d.UseNumber()
		if d.Decode(&v) == nil && dropSecretKeys(v) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if enc.Encode(v) == nil {
				doc = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
			}
		}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, s := range r.secrets {
		if bytes.Contains(doc, s) {
			doc = bytes.ReplaceAll(doc, s, []byte(Redacted))
		}
	}
	return doc
}

// holds reports whether doc contains a registered secret (as scrub would
// find it).
func (r *redactor) holds(doc []byte) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, s := range r.secrets {
		if bytes.Contains(doc, s) {
			return true
		}
	}
	return false
}

// dropSecretKeys removes secret members from v in place and reports
// whether it removed any.
func dropSecretKeys(v any) bool {
	changed := false
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if SecretKey(k) {
				delete(x, k)
				changed = true
				continue
			}
			if dropSecretKeys(e) {
				changed = true
			}
		}
	case []any:
		for _, e := range x {
			if dropSecretKeys(e) {
				changed = true
			}
		}
	}
	return changed
}

func mayHoldSecretKey(doc []byte) bool {
	for _, n := range needles {
		if containsFold(doc, n) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains the lower-case ASCII needle in
// any letter case.
func containsFold(s []byte, needle string) bool {
	n := len(needle)
outer:
	for i := 0; i+n <= len(s); i++ {
		for j := 0; j < n; j++ {
			c := s[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != needle[j] {
				continue outer
			}
		}
		return true
	}
	return false
}
