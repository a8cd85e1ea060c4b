// Package statefile reads and writes the state.json document of Go-FTL2's
// state management design: the format the file backend stores, export
// writes and import reads, so that all three agree byte for byte.
//
// # Format
//
//	{
//	  "metadata": {
//	    "version": "1.0",
//	    "created_at": "2024-01-15T10:30:00Z",
//	    "updated_at": "2024-01-15T14:45:00Z",
//	    "serial": 3,
//	    "lineage": "9f1c…"
//	  },
//	  "hosts": {
//	    "web01": {
//	      "name": "web01",
//	      "address": "192.168.1.10",
//	      "port": 22,
//	      "user": "admin",
//	      "group": "webservers",
//	      "groups": ["production", "eu"],
//	      "vars": {
//	        "http_port": 80
//	      },
//	      "created_at": "2024-01-15T10:30:00Z",
//	      "updated_at": "2024-01-15T10:30:00Z"
//	    }
//	  },
//	  "resources": {
//	    "linode:12345678": {
//	      "type": "linode",
//	      "id": "12345678",
//	      "name": "web01",
//	      "data": {…},
//	      "tags": {…},
//	      "created_at": "2024-01-15T10:30:00Z",
//	      "updated_at": "2024-01-15T10:30:00Z"
//	    }
//	  },
//	  "operations": {
//	    "3f9a1c2e4b5d6071": {
//	      "id": "3f9a1c2e4b5d6071",
//	      "action": "create",
//	      "resource": "linode:web02",
//	      "host": "web02",
//	      "data": {…},
//	      "started_at": "2024-01-15T14:50:00Z",
//	      "holder": "pid 4242 on host ci-7 (ftl2 apply)"
//	    }
//	  }
//	}
//
// Encode writes exactly what encoding/json writes for the whole document
// with a two-space indent and HTML escaping off (json.Encoder with
// SetIndent("", "  ") and SetEscapeHTML(false)): the fields in the
// order above, map keys (host names, resource keys, vars, data, tags)
// sorted, arrays one element per line, times in RFC 3339 with nanoseconds
// in UTC, and "hosts": {} when there are none. The fields the design
// document lacks are metadata.serial and metadata.lineage, left out while
// zero, and "operations", the pending operations (state.Operation) by ID,
// left out when there are none. A host's group is left out when empty,
// and so is groups (the host's groups beyond group, HostState.Groups) when
// it has none; an operation's host and holder are left out when empty;
// vars, data and tags are left out when nil and written as {} when empty,
// so both survive a round trip. The documented example (no groups, no
// serial, no lineage, no operations) is therefore written exactly as
// before those fields existed.
// Strings are escaped as encoding/json escapes them, except that <, > and
// & are written as they are (a reviewer reads "<redacted>" and URLs with
// query strings as they are; HTML escaping protects web pages, not files).
//
// Decode reads the documented format and its hand-edited variants: any
// whitespace, any key order, times with any offset (converted to UTC),
// numbers in any JSON notation (normalized as state.NormalizeValue does:
// 80.0 is int64(80), integers beyond int64 become float64), null for an
// absent metadata, hosts, resources, operations, groups, vars, data or
// tags (an empty groups list is no groups). A missing metadata.version is
// state.FormatVersion; other missing metadata fields are zero (a backend
// fills them in).
//
// # Strictness
//
// Decode refuses, with an *Error matching state.ErrCorrupt that names the
// line, the column and the JSON path:
//
//   - a duplicate key at any level: encoding/json would keep the last one,
//     so a host listed twice would silently lose one of its versions;
//   - an unknown field at any level: a later rewrite of the file would
//     silently drop it (a typo such as "adress" is caught the same way);
//   - a format version other than state.FormatVersion;
//   - invalid UTF-8, lone UTF-16 surrogates in \u escapes, and control
//     characters in names (state.ValidateName): nothing is replaced by
//     U+FFFD behind the user's back;
//   - nesting deeper than state.MaxValueDepth in vars and data, and numbers
//     that no float64 can hold (1e400);
//   - empty input, a document that is not an object, and anything after
//     it.
//
// # Limits
//
// Decode holds the whole document in memory while it parses it, then the
// decoded records: a document larger than DecodeOptions.MaxSize (default
// DefaultMaxSize, 1 GiB) is refused before it is read whole, with an
// error matching ErrTooLarge. Peak memory is a few times the document's
// size; DecodeRaw keeps only the document (each record as its text in
// it), so that a store held as a Raw costs about its size. Encode holds
// one record's encoding at a time (plus a 64 KiB write buffer), whatever
// the size of the store; EncodeRaw copies each record's text.
//
// # Concurrency
//
// Encode, EncodeContents, EncodeRaw, Decode and DecodeRaw may be called
// concurrently.
package statefile
