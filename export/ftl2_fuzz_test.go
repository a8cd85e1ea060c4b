package export_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/go-ftl2/ftlstate/export"
	"github.com/go-ftl2/ftlstate/state"
)

// FuzzReadFTL2 reads arbitrary bytes as an ftl2 file. They either give an
// error matching state.ErrCorrupt, or contents that a store accepts, that
// export --format ftl2 writes, and that read back as the store held them
// (but for the documented normalisations: storeNormalized), writing the
// same bytes again. Seeds: every file of testdata/ftl2 and the documented
// example.
func FuzzReadFTL2(f *testing.F) {
	var seeds []string
	for _, pattern := range []string{"ftl2/*.json", "ftl2/bad/*", "state.json"} {
		m, err := filepath.Glob(testdata(pattern))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, m...)
	}
	if len(seeds) < 10 {
		f.Fatalf("only %d seeds", len(seeds))
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, _, err := export.ReadAny(bytes.NewReader(b), &export.ImportOptions{Format: export.FormatFTL2})
		if err != nil {
			if !errors.Is(err, state.ErrCorrupt) {
				t.Fatalf("error does not match ErrCorrupt: %v", err)
			}
			return
		}
		st := openMem(t)
		if err := st.Replace(c, true); err != nil {
			t.Fatalf("read contents a store refuses: %v", err)
		}
		var out bytes.Buffer
		if err := export.WriteFTL2(&out, st, nil); err != nil {
			if errors.Is(err, state.ErrInvalid) {
				return // a documented host with a var "groups": refused, documented
			}
			t.Fatal(err)
		}
		back, err := export.ReadFTL2(bytes.NewReader(out.Bytes()))
		if err != nil {
			t.Fatalf("the export does not read back: %v\n%s", err, out.Bytes())
		}
		want := storeNormalized(contentsOf(t, st))
		for _, part := range []struct {
			name      string
			want, got any
		}{{"hosts", want.Hosts, back.Hosts}, {"resources", want.Resources, back.Resources}} {
			if !reflect.DeepEqual(part.want, part.got) {
				t.Fatalf("%s changed in the round trip:\n%#v\n%#v\n%s", part.name, part.want, part.got, out.Bytes())
			}
		}
		st2 := openMem(t)
		if err := st2.Replace(back, true); err != nil {
			t.Fatal(err)
		}
		var again bytes.Buffer
		if err := export.WriteFTL2(&again, st2, nil); err != nil || !bytes.Equal(out.Bytes(), again.Bytes()) {
			t.Fatalf("export is not stable (%v):\n%s\n%s", err, out.Bytes(), again.Bytes())
		}
	})
}
