package statefile

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-ftl2/ftlstate/state"
)

// ErrTooLarge means a document is larger than DecodeOptions.MaxSize. The
// *Error reporting it matches both ErrTooLarge and state.ErrCorrupt.
var ErrTooLarge = errors.New("document too large")

// Error reports why a document could not be decoded: where (line and
// column, and the JSON path of the value at fault) and what is wrong. It
// matches state.ErrCorrupt with errors.Is, and ErrTooLarge when that is
// the reason. It does not match state.ErrInvalid: the document is bad, not
// an argument; a caller that wants the bad field reads Path.
//
// Its message reads "line 14, column 15: hosts.web01.port: must be
// 0..65535"; parts that are not known are left out.
type Error struct {
	// Line and Column locate the problem in the input, both counted from
	// 1; Column counts characters (UTF-8 sequences), not bytes. Both are
	// zero when the problem has no position (a document too large).
	Line, Column int
	// Offset is the problem's byte offset in the input.
	Offset int64
	// Path is the JSON path of the value at fault, as state.FieldError
	// writes it ("hosts.web01.port", `hosts."a b".vars.list.0`); empty for
	// the document as a whole.
	Path string
	// Msg says what is wrong.
	Msg string

	err error // a further cause (ErrTooLarge), or nil
}

// maxPathShown is the longest path Error.Error shows whole.
const maxPathShown = 160

func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		b.WriteString("line ")
		b.WriteString(strconv.Itoa(e.Line))
		b.WriteString(", column ")
		b.WriteString(strconv.Itoa(e.Column))
		b.WriteString(": ")
	}
	if p := e.Path; p != "" {
		if len(p) > maxPathShown {
			// A path 500 levels deep helps nobody: keep both ends.
			p = strings.ToValidUTF8(p[:maxPathShown/2]+"..."+p[len(p)-maxPathShown/2:], "")
		}
		b.WriteString(p)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns state.ErrCorrupt and the further cause, if any.
func (e *Error) Unwrap() []error {
	if e.err != nil {
		return []error{state.ErrCorrupt, e.err}
	}
	return []error{state.ErrCorrupt}
}

// position sets e's line and column from its offset in data.
func (e *Error) position(data []byte) {
	off := min(int(e.Offset), len(data))
	e.Line = 1 + bytes.Count(data[:off], []byte{'\n'})
	start := bytes.LastIndexByte(data[:off], '\n') + 1
	e.Column = 1 + utf8.RuneCount(data[start:off])
}
