package export

import (
	"fmt"
	"io"

	"github.com/go-ftl2/ftlstate/state"
	"github.com/go-ftl2/ftlstate/state/statefile"
)

// Write renders the store v holds as the documented state.json, from one
// consistent snapshot (with bbolt, one read transaction), byte for byte as
// the file backend writes the same content. It streams: records are
// encoded one at a time, so memory does not grow with the store beyond
// what v itself holds. The same content always gives the same bytes.
func Write(w io.Writer, v state.Viewer, opts *Options) error {
	eo := &statefile.EncodeOptions{}
	if opts != nil {
		eo.Progress = opts.Progress
	}
	if opts.redact() {
		eo.Host = RedactHost
		eo.Resource = func(_ string, r *state.ResourceState) *state.ResourceState { return RedactResource(r) }
		eo.Operation = RedactOperation
	}
	return v.View(func(snap state.Snapshot) error {
		return statefile.Encode(w, snap, eo)
	})
}

// ImportOptions adjust Read and Import. nil means the defaults.
type ImportOptions struct {
	// Force imports a document whose lineage differs from the store's, that
	// has none, or whose serial is older (see state.State.Replace).
	Force bool
	// MaxSize is the largest document read, in bytes; zero means
	// statefile.DefaultMaxSize (1 GiB).
	MaxSize int64
	// Format is the format Import and ReadAny read: FormatState,
	// FormatFTL2, or "" to recognise it by its content (see ReadAny).
	// Read reads FormatState whatever it says.
	Format Format
}

// Read reads and validates a whole state.json document. Errors name the
// problem's line and column and its JSON path ("line 14, column 15:
// hosts.web01.port: must be 0..65535") and match state.ErrCorrupt; a
// document past MaxSize also matches statefile.ErrTooLarge.
func Read(r io.Reader, opts *ImportOptions) (*state.Contents, error) {
	do := &statefile.DecodeOptions{}
	if opts != nil {
		do.MaxSize = opts.MaxSize
	}
	return statefile.Decode(r, do)
}

// Import reads a state file from r (a documented state.json or an ftl2
// one, as ReadAny recognises them, or as opts.Format says), validates all
// of it, then replaces everything st holds with it in one atomic, durable
// write: all or nothing. Like Terraform's "state push" it refuses, with an error matching
// state.ErrConflict, a document from another store (lineage) or older than
// the store (serial), or one without lineage into a store that is not
// empty, unless opts.Force is set. The documented example (no lineage, no
// serial) imports into an empty store; so does an ftl2 file, which has
// neither.
func Import(st *state.State, r io.Reader, opts *ImportOptions) error {
	c, _, err := ReadAny(r, opts)
	if err != nil {
		return fmt.Errorf("import: %w", err)
	}
	if err := st.Replace(c, opts != nil && opts.Force); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	return nil
}
