package record_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/go-ftl2/ftlstate/internal/fuzzseed"
	"github.com/go-ftl2/ftlstate/internal/record"
	"github.com/go-ftl2/ftlstate/state"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the seed corpus of FuzzDecodeRecord")

// seedDir holds the seed corpus, in the repository's shared testdata
// (go test reads a package's own testdata/fuzz; FuzzDecodeRecord adds these
// files itself).
const seedDir = "../../testdata/fuzz/FuzzDecodeRecord"

// FuzzDecodeRecord decodes arbitrary bytes as each kind of record. Bytes
// either decode, and then re-encode to bytes that decode to the same
// value (and re-encode identically), or give an error matching
// state.ErrCorrupt; never a panic.
func FuzzDecodeRecord(f *testing.F) {
	corpus, err := fuzzseed.Read(seedDir)
	if err != nil {
		f.Fatal(err)
	}
	if len(corpus) == 0 {
		f.Fatalf("no seeds in %s", seedDir)
	}
	for _, b := range corpus {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkRoundTrip(t, b)
	})
}

func checkRoundTrip(t *testing.T, b []byte) {
	t.Helper()
	roundTrip(t, "host", b, record.DecodeHost, record.EncodeHost)
	roundTrip(t, "resource", b, record.DecodeResource, record.EncodeResource)
	roundTrip(t, "metadata", b, record.DecodeMetadata, func(m state.Metadata) ([]byte, error) { return record.EncodeMetadata(&m) })
	roundTrip(t, "operation", b, record.DecodeOperation, record.EncodeOperation)

	r, rerr := record.DecodeResource(b)
	typ, terr := record.ResourceType(b)
	if rerr == nil && (terr != nil || typ != r.Type) {
		t.Fatalf("ResourceType disagrees with DecodeResource: %q, %v vs %q", typ, terr, r.Type)
	}
}

func roundTrip[T any](t *testing.T, kind string, b []byte, decode func([]byte) (T, error), encode func(T) ([]byte, error)) {
	t.Helper()
	v, err := decode(b)
	if err != nil {
		if !errors.Is(err, state.ErrCorrupt) {
			t.Fatalf("%s: error does not match ErrCorrupt: %v", kind, err)
		}
		return
	}
	b2, err := encode(v)
	if err != nil {
		t.Fatalf("%s: decoded %#v but cannot encode it: %v", kind, v, err)
	}
	v2, err := decode(b2)
	if err != nil {
		t.Fatalf("%s: re-encoded bytes do not decode: %v", kind, err)
	}
	if !reflect.DeepEqual(v, v2) {
		t.Fatalf("%s: round trip changed the value:\n%#v\n%#v", kind, v, v2)
	}
	b3, err := encode(v2)
	if err != nil || !bytes.Equal(b2, b3) {
		t.Fatalf("%s: encoding is not deterministic: %v", kind, err)
	}
}

// TestSeedCorpus checks that the seed corpus holds every seed below, as
// written by -update-seeds, and that each behaves as its name says.
func TestSeedCorpus(t *testing.T) {
	want := seeds(t)
	if *updateSeeds {
		require.NoError(t, os.MkdirAll(seedDir, 0o755))
		for name, b := range want {
			require.NoError(t, os.WriteFile(filepath.Join(seedDir, name), fuzzseed.Marshal(b), 0o644))
		}
	}
	got, err := fuzzseed.Read(seedDir)
	require.NoError(t, err)
	for name, b := range want {
		assert.Equal(t, b, got[name], "seed %s is missing or stale (run go test -run TestSeedCorpus -update-seeds)", name)
	}
	for name, b := range got {
		t.Run(name, func(t *testing.T) {
			checkRoundTrip(t, b)
			_, herr := record.DecodeHost(b)
			_, rerr := record.DecodeResource(b)
			_, merr := record.DecodeMetadata(b)
			_, oerr := record.DecodeOperation(b)
			switch {
			case strings.HasPrefix(name, "host-"):
				assert.NoError(t, herr)
			case strings.HasPrefix(name, "resource-"):
				assert.NoError(t, rerr)
			case strings.HasPrefix(name, "metadata-"):
				assert.NoError(t, merr)
			case strings.HasPrefix(name, "operation-"):
				assert.NoError(t, oerr)
			case strings.HasPrefix(name, "bad-"):
				assert.Error(t, herr)
				assert.Error(t, rerr)
				assert.Error(t, merr)
				assert.Error(t, oerr)
			}
		})
	}
}

// seeds returns the seed corpus: valid records of every kind, with every
// value kind and encoding size class, and bad inputs the tests know.
func seeds(t testing.TB) map[string][]byte {
	t.Helper()
	must := func(b []byte, err error) []byte {
		t.Helper()
		require.NoError(t, err)
		return b
	}
	list := make([]any, 20)
	for i := range list {
		list[i] = int64(i * 1000)
	}
	wide := map[string]any{}
	for i := range 17 {
		wide[fmt.Sprintf("k%02d", i)] = i%2 == 0
	}
	vars := map[string]any{
		"str": "hello, 世界", "empty": "", "str8": strings.Repeat("a", 40), "str16": strings.Repeat("b", 300),
		"fix": int64(7), "neg": int64(-7), "u8": int64(200), "u16": int64(60000), "u32": int64(4e9), "u64": int64(math.MaxInt64),
		"i8": int64(-100), "i16": int64(-30000), "i32": int64(-2e9), "i64": int64(math.MinInt64),
		"float": 1.5, "tiny": 1e-300, "big": 1e300, "true": true, "false": false, "null": nil,
		"list": []any{"a", int64(1), 2.5, nil, []any{}, map[string]any{}}, "list16": list, "map16": wide,
		"nested": map[string]any{"deeper": map[string]any{"l": []any{map[string]any{"k": "v"}}}},
	}
	t0 := time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC)
	host := &state.HostState{Name: "web01", Address: "192.0.2.10", Port: 22, User: "admin", Group: "web", Vars: vars, CreatedAt: t0, UpdatedAt: t0.Add(time.Nanosecond)}
	hostOld := &state.HostState{Name: "a/b ünï", Port: 65535, CreatedAt: time.Unix(1<<34, 5).UTC(), UpdatedAt: time.Unix(5, 0).UTC()}
	res := &state.ResourceState{Type: "linode", ID: "123", Name: "web-1", Data: map[string]any{"ipv4": []any{"192.0.2.1"}}, Tags: map[string]string{"env": "prod"}, CreatedAt: t0, UpdatedAt: t0}
	hb := must(record.EncodeHost(host))
	s := map[string][]byte{
		"host-every-kind":      hb,
		"host-bare":            must(record.EncodeHost(&state.HostState{Name: "h"})),
		"host-empty-vars":      must(record.EncodeHost(&state.HostState{Name: "h", Vars: map[string]any{}})),
		"host-timestamp-forms": must(record.EncodeHost(hostOld)),
		"host-groups":          must(record.EncodeHost(&state.HostState{Name: "h", Group: "web", Groups: []string{"prod", "eu"}})),
		"bad-groups-repeated":  hostWithGroups("web", "prod", "web"),
		"bad-groups-empty":     hostWithGroups("web"),
		"resource-full":        must(record.EncodeResource(res)),
		"resource-bare":        must(record.EncodeResource(&state.ResourceState{Type: "ip"})),
		"resource-empty-maps":  must(record.EncodeResource(&state.ResourceState{Type: "ip", Data: map[string]any{}, Tags: map[string]string{}})),
		"metadata-new":         must(record.EncodeMetadata(&state.Metadata{Version: "1.0", CreatedAt: t0, UpdatedAt: t0, Serial: 42, Lineage: "3f0c2a4e-0000-4000-8000-000000000000"})),
		"metadata-zero":        must(record.EncodeMetadata(&state.Metadata{})),
		"operation-full": must(record.EncodeOperation(&state.Operation{ID: "0123456789abcdef", Action: "create", Resource: "linode:web01", Host: "web01",
			Data: map[string]any{"token": "tok-1", "request": map[string]any{"region": "us-east"}}, StartedAt: t0, Holder: "pid 42 on host ci-7 (ftl2 apply)"})),
		"operation-bare":      must(record.EncodeOperation(&state.Operation{ID: "a", Action: "delete", Resource: "r"})),
		"bad-empty":           {},
		"bad-truncated-host":  hb[:len(hb)/2],
		"bad-trailing-byte":   append(slices.Clone(hb), 0xc0),
		"bad-huge-str32":      hostWith(0xdb, 0xff, 0xff, 0xff, 0xff, 'x'),
		"bad-huge-array32":    hostWith(0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0),
		"bad-huge-map32":      hostWith(0xdf, 0xff, 0xff, 0xff, 0xff, 0xa0, 0xc0),
		"bad-deep-lists":      hostWith(bytes.Repeat([]byte{0x91}, 600)...),
		"bad-duplicate-key":   hostWith(0x82, 0xa1, 'k', 0x01, 0xa1, 'k', 0x02),
		"bad-integral-float":  hostWith(0xcb, 0x40, 0x54, 0, 0, 0, 0, 0, 0),
		"bad-nan":             hostWith(0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 1),
		"bad-utf8":            hostWith(0xa2, 0xff, 0xfe),
		"bad-bin":             hostWith(0xc4, 0x01, 'x'),
		"bad-uint64-overflow": hostWith(0xcf, 0xff, 0, 0, 0, 0, 0, 0, 0),
		"bad-version":         {0x99, 0x03, 0xa1, 'h'},
		// Records of format version 1 (no checksum) are still read.
		"host-v1-every-kind": version1(hb),
		"resource-v1-full":   version1(must(record.EncodeResource(res))),
		"metadata-v1":        version1(must(record.EncodeMetadata(&state.Metadata{Version: "1.0", CreatedAt: t0, UpdatedAt: t0, Serial: 42, Lineage: "x"}))),
		"bad-checksum":       flipByte(hb, len(hb)/2),
		"bad-no-checksum":    version1(hb)[:0:0],
	}
	noSum := slices.Clone(version1(hb))
	noSum[0]++      // the array header counts a checksum...
	noSum[1] = 0x02 // ...and says version 2, but there is none
	s["bad-no-checksum"] = noSum
	return s
}
