package export

import (
	"maps"
	"strings"
	"unicode"

	"github.com/go-ftl2/ftlstate/state"
)

// Redacted is the value that replaces a secret.
const Redacted = "<redacted>"

// Options controls the writers of this package (the Ansible inventory
// writers, and the state.json export). The nil *Options and the zero
// Options mean the defaults: nothing is redacted.
type Options struct {
	// Redact replaces the value of every Vars, Data and Tags key that
	// looks secret (see IsSecretKey), at any depth, with Redacted.
	Redact bool
	// Progress, when set, is called by Write after each record with the
	// number of records written so far (for progress bars).
	Progress func(done int)
}

func (o *Options) redact() bool { return o != nil && o.Redact }

// secretWords are the fragments that make a key look secret, spelled as
// they appear after folding (see IsSecretKey).
var secretWords = [...]string{"password", "passwd", "passphrase", "secret", "token", "privatekey", "apikey", "credential"}

// IsSecretKey reports whether a Vars, Data or Tags key looks like it holds
// a secret: after lowercasing it and dropping every character that is not
// a letter or a digit, it contains "password", "passwd", "passphrase",
// "secret", "token", "privatekey", "apikey" or "credential". So "db_password", "PASSWORD",
// "API-Key", "x_api_key", "apiKey", "ssh.private_key" and
// "client_secrets" all look secret; "user", "ssh_keys" and "key_id" do
// not.
//
// The rule errs on the side of redacting: "tokenizer" looks secret too.
func IsSecretKey(key string) bool {
	var b strings.Builder
	b.Grow(len(key))
	for _, r := range key {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToLower(r))
		}
	}
	folded := b.String()
	for _, w := range secretWords {
		if strings.Contains(folded, w) {
			return true
		}
	}
	return false
}

// RedactHost returns a deep copy of h whose Vars have every value under a
// secret-looking key (see IsSecretKey), at any depth in maps and in maps
// inside lists, replaced by Redacted. h is not modified. nil gives nil.
func RedactHost(h *state.HostState) *state.HostState {
	if h == nil {
		return nil
	}
	c := *h
	c.Vars = redactMap(h.Vars)
	return &c
}

// RedactResource returns a deep copy of r whose Data (at any depth, as
// RedactHost does for Vars) and Tags have every value under a
// secret-looking key replaced by Redacted. r is not modified. nil gives
// nil.
func RedactResource(r *state.ResourceState) *state.ResourceState {
	if r == nil {
		return nil
	}
	c := *r
	c.Data = redactMap(r.Data)
	if r.Tags != nil {
		c.Tags = maps.Clone(r.Tags)
		for k := range c.Tags {
			if IsSecretKey(k) {
				c.Tags[k] = Redacted
			}
		}
	}
	return &c
}

// RedactOperation returns a copy of op whose Data holds Redacted under
// every secret-looking key, at any depth (see RedactValue); nil gives nil.
// op is not modified.
func RedactOperation(op *state.Operation) *state.Operation {
	if op == nil {
		return nil
	}
	c := *op
	c.Data = redactMap(op.Data)
	return &c
}

// RedactValue returns a deep copy of v, a value in the state package's
// value model (see state.NormalizeValue), in which every map entry under a
// secret-looking key, at any depth, holds Redacted instead of its value.
// A secret-looking key's whole value is replaced, even when it is a map or
// a list. v is not modified.
func RedactValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if v == nil {
			return v
		}
		return redactMap(v)
	case []any:
		if v == nil {
			return v
		}
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = RedactValue(e)
		}
		return c
	default:
		return v
	}
}

func redactMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, v := range m {
		if IsSecretKey(k) {
			c[k] = Redacted
		} else {
			c[k] = RedactValue(v)
		}
	}
	return c
}

// HasRedacted reports whether c holds a value that Redact wrote (the string
// Redacted under a secret-looking key): a redacted export, which would
// overwrite real secrets if imported.
func HasRedacted(c *state.Contents) bool {
	for _, h := range c.Hosts {
		if hasRedacted(h.Vars) {
			return true
		}
	}
	for _, r := range c.Resources {
		if hasRedacted(r.Data) {
			return true
		}
		for k, v := range r.Tags {
			if v == Redacted && IsSecretKey(k) {
				return true
			}
		}
	}
	return false
}

func hasRedacted(v any) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if e == Redacted && IsSecretKey(k) || hasRedacted(e) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasRedacted(e) {
				return true
			}
		}
	}
	return false
}
