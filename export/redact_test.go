package export_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

func TestIsSecretKey(t *testing.T) {
	secret := []string{
		"password", "PASSWORD", "db_password", "DbPassword", "passwd", "mysql_passwd",
		"secret", "client_secret", "Secrets", "token", "access_token", "GITHUB_TOKEN",
		"private_key", "PRIVATE_KEY", "ssh-private-key", "privateKey", "private.key",
		"api_key", "API-Key", "x-api-key", "apiKey", "APIKEY", "ansible_become_password",
	}
	plain := []string{
		"", "user", "name", "address", "http_port", "key", "ssh_keys", "key_id",
		"public_key", "api", "private", "pass", "word", "ansible_host",
	}
	for _, k := range secret {
		assert.True(t, export.IsSecretKey(k), "%q should look secret", k)
	}
	for _, k := range plain {
		assert.False(t, export.IsSecretKey(k), "%q should not look secret", k)
	}
}

// nestedVars holds secrets at several depths, in maps and in maps inside
// lists (and lists of lists), beside values that must stay.
func nestedVars() map[string]any {
	return map[string]any{
		"http_port":   int64(80),
		"DB_Password": "hunter2",
		"API-Key":     "abc",
		"tls": map[string]any{
			"cert":        "PEM CERT",
			"private_key": "PEM KEY",
			"inner": map[string]any{
				"Token":  "t0k",
				"issuer": "ca",
			},
		},
		"users": []any{
			map[string]any{"name": "alice", "passwd": "a"},
			map[string]any{"name": "bob", "ssh": map[string]any{"private_key": "k", "public_key": "pub"}},
			"token", // a string in a list is a value, not a key: kept
			[]any{map[string]any{"secret": "deep", "ok": true}},
		},
		"secrets":   map[string]any{"a": "1", "b": []any{"2"}}, // replaced whole
		"nothing":   nil,
		"ratio":     0.5,
		"api_keys":  []any{"k1", "k2"}, // replaced whole
		"keys_only": []any{"not", "secret"},
	}
}

func redactedNestedVars() map[string]any {
	return map[string]any{
		"http_port":   int64(80),
		"DB_Password": "<redacted>",
		"API-Key":     "<redacted>",
		"tls": map[string]any{
			"cert":        "PEM CERT",
			"private_key": "<redacted>",
			"inner": map[string]any{
				"Token":  "<redacted>",
				"issuer": "ca",
			},
		},
		"users": []any{
			map[string]any{"name": "alice", "passwd": "<redacted>"},
			map[string]any{"name": "bob", "ssh": map[string]any{"private_key": "<redacted>", "public_key": "pub"}},
			"token",
			[]any{map[string]any{"secret": "<redacted>", "ok": true}},
		},
		"secrets":   "<redacted>",
		"nothing":   nil,
		"ratio":     0.5,
		"api_keys":  "<redacted>",
		"keys_only": []any{"not", "secret"},
	}
}

func TestRedactHost_NestedSecrets(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	in := &state.HostState{
		Name: "web01", Address: "192.168.1.10", Port: 22, User: "admin", Group: "web",
		Vars: nestedVars(), CreatedAt: now, UpdatedAt: now,
	}
	orig := in.Clone()

	got := export.RedactHost(in)

	want := orig.Clone()
	want.Vars = redactedNestedVars()
	assert.Equal(t, want, got)
	assert.Equal(t, orig, in, "input must not change")

	// The copy shares nothing with the input.
	got.Vars["tls"].(map[string]any)["cert"] = "changed"
	got.Vars["users"].([]any)[0].(map[string]any)["name"] = "changed"
	got.Vars["keys_only"].([]any)[0] = "changed"
	assert.Equal(t, orig, in, "changing the copy must not change the input")
}

func TestRedactHost_NoSecretsIsEqualCopy(t *testing.T) {
	in := &state.HostState{Name: "h", Vars: map[string]any{"a": map[string]any{"b": []any{int64(1)}}}}
	got := export.RedactHost(in)
	assert.Equal(t, in, got)
	assert.NotSame(t, in, got)
	assert.Nil(t, export.RedactHost(nil))
	assert.Nil(t, export.RedactHost(&state.HostState{Name: "h"}).Vars, "nil vars stay nil")
}

func TestRedactResource_DataAndTags(t *testing.T) {
	in := &state.ResourceState{
		Type: "linode", ID: "1", Name: "web01",
		Data: nestedVars(),
		Tags: map[string]string{"env": "prod", "Deploy-Token": "xyz"},
	}
	orig := in.Clone()

	got := export.RedactResource(in)

	assert.Equal(t, redactedNestedVars(), got.Data)
	assert.Equal(t, map[string]string{"env": "prod", "Deploy-Token": "<redacted>"}, got.Tags)
	assert.Equal(t, "linode", got.Type)
	assert.Equal(t, "1", got.ID)
	assert.Equal(t, "web01", got.Name)
	assert.Equal(t, orig, in, "input must not change")

	got.Tags["env"] = "changed"
	assert.Equal(t, "prod", in.Tags["env"])
	assert.Nil(t, export.RedactResource(nil))
}

func TestRedactValue(t *testing.T) {
	in := []any{map[string]any{"password": "x", "list": []any{map[string]any{"token": int64(1)}}}, "password"}
	want := []any{map[string]any{"password": "<redacted>", "list": []any{map[string]any{"token": "<redacted>"}}}, "password"}
	before := state.CloneMap(map[string]any{"v": in})
	assert.Equal(t, want, export.RedactValue(in))
	assert.Equal(t, before, map[string]any{"v": in}, "input must not change")
	assert.Equal(t, "password", export.RedactValue("password"))
	assert.Equal(t, int64(3), export.RedactValue(int64(3)))
	assert.Nil(t, export.RedactValue(nil))
}

// The redaction of a stored record: what the state.json export will call.
func TestRedactHost_FromStore(t *testing.T) {
	st := open()
	defer st.Close()
	require.NoError(t, st.AddHost(&state.HostState{Name: "db01", Vars: map[string]any{
		"db": map[string]any{"Password": "hunter2", "port": 5432},
	}}))
	h, ok := st.GetHost("db01")
	require.True(t, ok)
	r := export.RedactHost(h)
	assert.Equal(t, map[string]any{"db": map[string]any{"Password": "<redacted>", "port": int64(5432)}}, r.Vars)
	again, _ := st.GetHost("db01")
	assert.Equal(t, "hunter2", again.Vars["db"].(map[string]any)["Password"])
}
