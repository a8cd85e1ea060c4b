// Package atomicfile writes files so that a reader (or a crash) sees either
// the old content or the new, never a mix: a unique temp file in the
// target's directory, write, fsync, close, rename over the target, fsync
// the directory (google/renameio's pattern). On any failure the temp file
// is removed and the target is untouched.
package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// TempPattern is the os.CreateTemp pattern of temp files: base + ".tmp-*".
// Temp files left by a killed process match it (see Leftovers).
func TempPattern(path string) string { return filepath.Base(path) + ".tmp-*" }

// Write replaces path with what write produces. The new file gets perm
// when path does not exist yet, else path's current mode.
func Write(path string, perm fs.FileMode, write func(w io.Writer) error) (err error) {
	if fi, err := os.Stat(path); err == nil {
		perm = fi.Mode().Perm()
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPattern(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return SyncDir(dir)
}

// WriteFile replaces path with data (see Write).
func WriteFile(path string, data []byte, perm fs.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Copy replaces dst with a copy of src (see Write); dst keeps src's mode
// when dst is new.
func Copy(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return err
	}
	return Write(dst, fi.Mode().Perm(), func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}

// SyncDir fsyncs a directory, making a rename or a creation in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if errors.Is(err, os.ErrInvalid) {
		err = nil // a file system without directory sync
	}
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// SyncFile fsyncs the file at path.
func SyncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Leftovers lists temp files of path left in its directory by a process
// that died while writing.
func Leftovers(path string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(filepath.Dir(path), globEscape(filepath.Base(path))+".tmp-*"))
	if err != nil {
		return nil, err
	}
	return matches, nil
}

func globEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}
