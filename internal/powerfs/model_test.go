package powerfs_test

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-ftl2/ftlstate/internal/powerfs"
	"github.com/go-ftl2/ftlstate/internal/testfs"
)

// TestTornWrites: with Options.Torn a crash keeps none, a prefix (the last
// write perhaps cut at a 512-byte boundary) or a subset of the unsynced
// writes, chosen by the seed, and each block holds either its old or its
// new content; the same seed gives the same crash.
func TestTornWrites(t *testing.T) {
	const chunks, size = 8, 2048
	old := bytes.Repeat([]byte{'.'}, chunks*size)
	crashWith := func(seed uint64) []byte {
		backing := backingWith(t, map[string]string{"f": string(old)})
		fs := testfs.PowerFS(t, backing, &powerfs.Options{Torn: true, Seed: seed})
		f, err := os.OpenFile(filepath.Join(fs.Dir(), "f"), os.O_RDWR, 0)
		must(t, err)
		for i := range chunks {
			_, err := f.WriteAt(bytes.Repeat([]byte{byte('a' + i)}, size), int64(i*size))
			must(t, err)
		}
		must(t, f.Close())
		if _, err := fs.Crash(); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(filepath.Join(backing, "f"))
		must(t, err)
		return data
	}
	seen := map[string]int{}
	for seed := uint64(1); seed <= 40; seed++ {
		got := crashWith(seed)
		if len(got) != len(old) {
			t.Fatalf("seed %d: %d bytes, want %d", seed, len(got), len(old))
		}
		var kept, partial int
		for i := range chunks {
			chunk := got[i*size : (i+1)*size]
			n := bytes.Count(chunk, []byte{byte('a' + i)})
			for b := 0; b < size; b += 512 {
				if blk := chunk[b : b+512]; !bytes.Equal(blk, old[:512]) && !bytes.Equal(blk, bytes.Repeat([]byte{byte('a' + i)}, 512)) {
					t.Fatalf("seed %d: chunk %d block %d is neither old nor new", seed, i, b/512)
				}
			}
			switch {
			case n == size:
				kept++
			case n > 0:
				partial++
				if chunk[0] != byte('a'+i) {
					t.Fatalf("seed %d: chunk %d was cut, but not to a prefix", seed, i)
				}
			}
		}
		switch {
		case partial > 0:
			seen["torn"]++
		case kept == 0:
			seen["none"]++
		case kept == chunks:
			seen["all"]++
		default:
			seen["some"]++
		}
		if seed <= 3 && !bytes.Equal(crashWith(seed), got) {
			t.Errorf("seed %d: two crashes with the same seed differ", seed)
		}
	}
	t.Logf("outcomes of 40 seeds: %v", seen)
	for _, k := range []string{"torn", "none", "some"} {
		if seen[k] == 0 {
			t.Errorf("no seed gave a crash that kept %s of the writes: %v", k, seen)
		}
	}
}

// TestRandomOps_MatchModel runs random sequences of file and directory
// operations through the mount, checks every read against a reference
// model of the durability rules, crashes, and checks that the backing
// directory is the model's durable state (hard links included).
func TestRandomOps_MatchModel(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { randomOps(t, seed, 400) })
	}
}

// minode is a file of the reference model.
type minode struct {
	vol, dur []byte
	truncs   []int
}

// mdir is a directory of the model: names to files.
type mdir struct {
	vol, dur map[string]*minode
}

func randomOps(t *testing.T, seed uint64, ops int) {
	rng := rand.New(rand.NewPCG(seed, 7))
	dirs := []string{".", "d"}
	backing := backingWith(t, map[string]string{"d/a": "initial a", "b": "initial b"})
	model := map[string]*mdir{}
	for _, d := range dirs {
		model[d] = &mdir{vol: map[string]*minode{}, dur: map[string]*minode{}}
	}
	for dir, name := range map[string]string{"d": "a", ".": "b"} {
		n := &minode{vol: []byte("initial " + name), dur: []byte("initial " + name)}
		model[dir].vol[name], model[dir].dur[name] = n, n
	}
	fs := testfs.PowerFS(t, backing, nil)
	names := []string{"a", "b", "c"}
	pick := func() (string, string, string) {
		d, n := dirs[rng.IntN(len(dirs))], names[rng.IntN(len(names))]
		return d, n, filepath.Join(fs.Dir(), d, n)
	}
	var log []string
	fatalf := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d after %q: %s", seed, log, fmt.Sprintf(format, args...))
	}
	for range ops {
		d, name, p := pick()
		n := model[d].vol[name]
		switch op := rng.IntN(10); {
		case op < 3: // write, creating the file if needed
			off := rng.IntN(3 * 4096)
			data := bytes.Repeat([]byte{byte('A' + rng.IntN(26))}, 1+rng.IntN(5000))
			log = append(log, fmt.Sprintf("write %s/%s %d+%d", d, name, off, len(data)))
			write(t, p, int64(off), string(data))
			if n == nil {
				n = &minode{}
				model[d].vol[name] = n
			}
			if end := off + len(data); end > len(n.vol) {
				n.vol = append(n.vol, make([]byte, end-len(n.vol))...)
			}
			copy(n.vol[off:], data)
		case op == 3 && n != nil: // truncate
			size := rng.IntN(4 * 4096)
			log = append(log, fmt.Sprintf("truncate %s/%s %d", d, name, size))
			must(t, os.Truncate(p, int64(size)))
			n.vol = resize(n.vol, size)
			n.truncs = append(n.truncs, size)
		case op == 4 && n != nil: // fsync the file
			log = append(log, fmt.Sprintf("fsync %s/%s", d, name))
			fsync(t, p)
			n.dur = slices.Clone(n.vol)
			n.truncs = nil
		case op == 5: // fsync the directory
			log = append(log, fmt.Sprintf("fsyncdir %s", d))
			must(t, syncDir(filepath.Join(fs.Dir(), d)))
			for _, c := range model[d].vol {
				for _, s := range c.truncs {
					c.dur = resize(c.dur, s)
				}
				c.truncs = nil
			}
			model[d].dur = maps.Clone(model[d].vol)
		case op == 6 && n != nil: // rename, perhaps to the other directory
			d2, name2, p2 := pick()
			log = append(log, fmt.Sprintf("rename %s/%s %s/%s", d, name, d2, name2))
			must(t, os.Rename(p, p2))
			if model[d2].vol[name2] == n {
				continue // two names of one file: rename does nothing
			}
			delete(model[d].vol, name)
			model[d2].vol[name2] = n
		case op == 7 && n != nil: // hard link
			d2, name2, p2 := pick()
			if model[d2].vol[name2] != nil {
				continue
			}
			log = append(log, fmt.Sprintf("link %s/%s %s/%s", d, name, d2, name2))
			must(t, os.Link(p, p2))
			model[d2].vol[name2] = n
		case op == 8 && n != nil: // unlink
			log = append(log, fmt.Sprintf("unlink %s/%s", d, name))
			must(t, os.Remove(p))
			delete(model[d].vol, name)
		default: // read everything back through the mount
			for _, dd := range dirs {
				if got, want := fileNames(t, filepath.Join(fs.Dir(), dd)), slices.Sorted(maps.Keys(model[dd].vol)); !slices.Equal(got, want) {
					fatalf("directory %s lists %v, want %v", dd, got, want)
				}
				for nn, c := range model[dd].vol {
					if data, err := os.ReadFile(filepath.Join(fs.Dir(), dd, nn)); err != nil || !bytes.Equal(data, c.vol) {
						fatalf("%s/%s reads %d bytes (%v), want %d", dd, nn, len(data), err, len(c.vol))
					}
				}
			}
		}
	}
	crash(t, fs)
	inodes := map[*minode]os.FileInfo{}
	for _, d := range dirs {
		if got, want := fileNames(t, filepath.Join(backing, d)), slices.Sorted(maps.Keys(model[d].dur)); !slices.Equal(got, want) {
			fatalf("after the crash, directory %s holds %v, want %v", d, got, want)
		}
		for name, c := range model[d].dur {
			p := filepath.Join(backing, d, name)
			if data, err := os.ReadFile(p); err != nil || !bytes.Equal(data, c.dur) {
				fatalf("after the crash, %s/%s holds %d bytes (%v), want %d", d, name, len(data), err, len(c.dur))
			}
			fi, err := os.Stat(p)
			must(t, err)
			if other, ok := inodes[c]; ok && !os.SameFile(other, fi) {
				fatalf("after the crash, %s/%s is not the same file as its other name", d, name)
			}
			inodes[c] = fi
		}
	}
}

// fileNames lists the names of the files in dir, sorted.
func fileNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names
}

func resize(b []byte, n int) []byte {
	if n <= len(b) {
		return b[:n:n]
	}
	return append(b, make([]byte, n-len(b))...)
}
