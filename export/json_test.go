package export_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
	"github.com/go-ftl2/ftlstate/state/statetest"
)

func testdata(parts ...string) string {
	return filepath.Join(append([]string{"..", "testdata"}, parts...)...)
}

func openMem(t testing.TB) *state.State {
	t.Helper()
	st, err := state.Open(statetest.NewMemory())
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	return st
}

func importFile(t testing.TB, st *state.State, path string, opts *export.ImportOptions) error {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	return export.Import(st, f, opts)
}

func TestImport_DocumentedExampleIntoEmptyStore(t *testing.T) {
	st := openMem(t)
	require.NoError(t, importFile(t, st, testdata("state.json"), nil))
	web, ok := st.GetHost("web01")
	require.True(t, ok)
	assert.Equal(t, int64(80), web.Vars["http_port"])
	assert.Equal(t, "webservers", web.Group)
	db, ok := st.GetHost("db01")
	require.True(t, ok)
	assert.Equal(t, "15", db.Vars["postgres_version"])
	r, ok := st.GetResource("linode:12345678")
	require.True(t, ok)
	assert.Equal(t, []any{"192.168.1.10"}, r.Data["ipv4"])
	m := st.Metadata()
	assert.Equal(t, uint64(1), m.Serial, "the import is the store's first change")
	assert.NotEmpty(t, m.Lineage, "the store keeps its own lineage when the document has none")
	assert.Equal(t, "2024-01-15T10:30:00Z", m.CreatedAt.Format("2006-01-02T15:04:05Z07:00"))
}

func TestWrite_RoundTripIsByteIdentical(t *testing.T) {
	st := openMem(t)
	require.NoError(t, importFile(t, st, testdata("state.json"), nil))
	var first bytes.Buffer
	require.NoError(t, export.Write(&first, st, nil))

	// Export → import into another store (same document, so its lineage and
	// serial come along) → export: the same bytes but the serial.
	other := openMem(t)
	require.NoError(t, export.Import(other, bytes.NewReader(first.Bytes()), nil))
	var second bytes.Buffer
	require.NoError(t, export.Write(&second, other, nil))
	want := strings.Replace(first.String(), `"serial": 1,`, `"serial": 2,`, 1)
	assert.Equal(t, want, second.String())

	// Deterministic: the same content, the same bytes.
	var again bytes.Buffer
	require.NoError(t, export.Write(&again, st, nil))
	assert.Equal(t, first.String(), again.String())
}

func TestWrite_MatchesStatefile(t *testing.T) {
	st := openMem(t)
	require.NoError(t, importFile(t, st, testdata("state.json"), nil))
	var got bytes.Buffer
	require.NoError(t, export.Write(&got, st, nil))
	var want bytes.Buffer
	require.NoError(t, st.View(func(snap state.Snapshot) error { return statefile.Encode(&want, snap, nil) }))
	assert.Equal(t, want.String(), got.String(), "export writes exactly what the file backend writes")
}

func TestWrite_Redact(t *testing.T) {
	st := openMem(t)
	require.NoError(t, st.AddHost(&state.HostState{Name: "db", Vars: map[string]any{
		"db_password": "hunter2", "user": "app", "nested": map[string]any{"API_KEY": "key-value", "list": []any{map[string]any{"token": "token-value"}}},
	}}))
	require.NoError(t, st.AddResource("r", &state.ResourceState{Type: "t", Data: map[string]any{"secret": "secret-value"}, Tags: map[string]string{"owner": "me"}}))
	var plain, red bytes.Buffer
	require.NoError(t, export.Write(&plain, st, nil))
	assert.Contains(t, plain.String(), "hunter2", "off by default")
	var progress []int
	require.NoError(t, export.Write(&red, st, &export.Options{Redact: true, Progress: func(n int) { progress = append(progress, n) }}))
	out := red.String()
	for _, secret := range []string{"hunter2", "key-value", "token-value", "secret-value"} {
		assert.NotContains(t, out, secret)
	}
	assert.Equal(t, 4, strings.Count(out, export.Redacted))
	assert.Contains(t, out, `"user": "app"`)
	assert.Contains(t, out, `"owner": "me"`)
	assert.Equal(t, []int{1, 2}, progress)
	h, _ := st.GetHost("db")
	assert.Equal(t, "hunter2", h.Vars["db_password"], "redaction never touches the store")
}

func TestImport_ValidatesWholeDocumentFirst(t *testing.T) {
	st := openMem(t)
	require.NoError(t, st.AddHost(&state.HostState{Name: "keep"}))
	before := st.Metadata()
	doc := `{"metadata": {"version": "1.0", "lineage": "` + before.Lineage + `", "serial": 5},
  "hosts": {
    "good": {"name": "good", "address": "a", "port": 22, "user": "u", "created_at": "2024-01-15T10:30:00Z", "updated_at": "2024-01-15T10:30:00Z"},
    "web01": {"name": "web01", "address": "a", "port": 70000, "user": "u", "created_at": "2024-01-15T10:30:00Z", "updated_at": "2024-01-15T10:30:00Z"}
  }}`
	err := export.Import(st, strings.NewReader(doc), nil)
	require.ErrorIs(t, err, state.ErrCorrupt)
	assert.Contains(t, err.Error(), "hosts.web01.port: must be 0..65535")
	assert.True(t, st.HasHost("keep"), "nothing imported")
	assert.False(t, st.HasHost("good"), "not even the valid part")
	assert.Equal(t, before, st.Metadata())
}

func TestImport_Conflicts(t *testing.T) {
	st := openMem(t)
	require.NoError(t, st.AddHost(&state.HostState{Name: "a"}))
	require.NoError(t, st.AddHost(&state.HostState{Name: "b"}))
	var mine bytes.Buffer
	require.NoError(t, export.Write(&mine, st, nil)) // serial 2

	foreign := openMem(t)
	require.NoError(t, foreign.AddHost(&state.HostState{Name: "x"}))
	var theirs bytes.Buffer
	require.NoError(t, export.Write(&theirs, foreign, nil))

	require.NoError(t, st.AddHost(&state.HostState{Name: "c"})) // serial 3: mine is now older
	cases := map[string]string{
		"older serial":    mine.String(),
		"foreign lineage": theirs.String(),
		"no lineage":      readFile(t, testdata("state.json")),
	}
	for name, doc := range cases {
		err := export.Import(st, strings.NewReader(doc), nil)
		assert.ErrorIs(t, err, state.ErrConflict, name)
		assert.True(t, st.HasHost("c"), "%s: refused import changes nothing", name)
	}
	require.NoError(t, export.Import(st, strings.NewReader(mine.String()), &export.ImportOptions{Force: true}))
	assert.False(t, st.HasHost("c"), "forced import of the older copy restores it")
	assert.Equal(t, uint64(4), st.Metadata().Serial, "serial still moves forward")
}

func TestImport_SizeLimit(t *testing.T) {
	st := openMem(t)
	doc := readFile(t, testdata("state.json"))
	err := export.Import(st, strings.NewReader(doc), &export.ImportOptions{MaxSize: 100})
	require.ErrorIs(t, err, statefile.ErrTooLarge)
	assert.ErrorIs(t, err, state.ErrCorrupt)
	hosts, _ := st.Len()
	assert.Zero(t, hosts)
}

func TestImport_NotState(t *testing.T) {
	st := openMem(t)
	for name, doc := range map[string]string{
		"empty":     "",
		"array":     "[]",
		"html":      "<html></html>",
		"truncated": `{"hosts": {"a": {"name": "a"`,
	} {
		err := export.Import(st, strings.NewReader(doc), nil)
		assert.ErrorIs(t, err, state.ErrCorrupt, name)
	}
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}

// BenchmarkWrite measures export throughput and the heap it adds while it
// runs, at 20k and 200k records; the growth between the two is the
// streaming claim (see the bench command for the peak-memory table).
func BenchmarkWrite(b *testing.B) {
	for _, n := range []int{20_000, 200_000} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			st := openMem(b)
			require.NoError(b, st.Update(func(tx *state.Tx) error {
				for i := range n / 2 {
					if err := tx.AddHost(&state.HostState{Name: fmt.Sprintf("host-%06d", i), Address: "10.0.0.1", Port: 22, User: "admin", Group: "web", Vars: map[string]any{"i": i, "role": "web"}}); err != nil {
						return err
					}
					if err := tx.AddResource(fmt.Sprintf("linode:%06d", i), &state.ResourceState{Type: "linode", ID: fmt.Sprint(i), Data: map[string]any{"region": "us-east", "ipv4": []any{"10.0.0.1"}}}); err != nil {
						return err
					}
				}
				return nil
			}))
			var cw countingWriter
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				cw = 0
				if err := export.Write(&cw, st, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(cw))
		})
	}
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}
