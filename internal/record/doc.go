// Package record encodes the records of a store (hosts, resources, pending
// operations and the store's metadata) as MessagePack, for the backends
// that keep one record per key: boltbackend and etcdbackend.
//
// # Layout
//
// Every record is a MessagePack array whose first element is the record
// format version (Version, 2), followed by the fields in a fixed order,
// and last a checksum:
//
//	host:      [2, name, address, port, user, group, vars, created_at, updated_at, groups?, sum]
//	resource:  [2, type, id, name, data, tags, created_at, updated_at, sum]
//	metadata:  [2, version, created_at, updated_at, serial, lineage, sum]
//	operation: [2, id, action, resource, host, data, started_at, holder, sum]
//
// sum is the CRC-32C (Castagnoli) of every byte of the record before it,
// written as a MessagePack uint32 (0xce and 4 bytes, big-endian) so that it
// is always the last 5 bytes. Decoding verifies it before it reads any
// field: a flipped byte anywhere (an address, a user, a password) gives an
// error matching state.ErrCorrupt ("checksum mismatch"), never another
// value. Records of format version 1, written before checksums existed,
// have no sum and are still read; everything written is version 2.
//
// groups (HostState.Groups, the groups beyond group) is optional: a host
// with no such groups has the 9 fields it had before the field existed,
// so stores written earlier read unchanged; a host with some has a 10th
// field, a non-empty array of strings.
//
// Timestamps use the MessagePack timestamp extension (type -1); the zero
// time is written in its 96-bit form and comes back as time.Time{}. vars,
// data (of resources and operations) and tags are nil when the record's map is nil and a (possibly
// empty) map otherwise, so that nil and empty maps round-trip exactly. Maps
// are written with their keys sorted, so one record always encodes to the
// same bytes. Encoding uses github.com/vmihailenco/msgpack/v5.
//
// # Values
//
// Vars and Data hold the value model of state.NormalizeValue and nothing
// else: int64, float64, string, bool, nil, []any and map[string]any.
// Decoding dispatches on the MessagePack type code and yields exactly these
// types: every integer encoding gives int64, both float encodings give
// float64.
//
// # Validation
//
// Encoding and decoding enforce the same rules, so that whatever encodes
// decodes to the same value, and what decodes re-encodes:
//
//   - the record rules of (*state.HostState).Normalize and
//     (*state.ResourceState).Normalize: host names and resource types pass
//     state.ValidateName, ports are 0..65535, a host's groups pass
//     state.ValidateGroups, every string and map key is valid UTF-8;
//   - values are in the model and normalized: floats are finite and not
//     integral within int64's range (NormalizeValue makes those int64),
//     integers fit in int64, maps and lists nest at most
//     state.MaxValueDepth deep (Vars itself being level 1);
//   - timestamps lie in years 0 to 9999, the range state.json can hold.
//
// The checks are done while encoding or decoding, without copying the
// record again. Encoding a value outside these rules gives an error
// matching state.ErrInvalid (a *state.FieldError naming the field, such as
// "vars.x"); decoding bytes that break them, or that are not a record at
// all, gives an error matching state.ErrCorrupt. Decoding never panics,
// never reads past its input, and allocates in proportion to the input:
// every length is checked against the bytes that remain before anything is
// allocated.
//
// Decoded records never share memory with the input, which may be a
// bbolt page valid only during its transaction: the strings of one record
// are cut from a single copy of its bytes (one allocation per record
// instead of one per string).
package record
