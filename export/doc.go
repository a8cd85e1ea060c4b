// Package export renders a state store for people and for other tools: the
// documented state.json (Write, Read, Import), the differences between two
// states (Diff), redaction of secrets for review (RedactHost,
// RedactResource, RedactOperation, Options.Redact), the hosts as an
// Ansible dynamic inventory (WriteInventoryList, WriteInventoryHost), and
// the state files of the Python ftl2 (WriteFTL2, ReadFTL2, ReadAny).
//
// Every function reads a state.Viewer, so it works on any backend and on a
// *state.State, from one consistent snapshot.
//
// # Diff
//
// Diff(a, b, opts) lists the changes that turn a into b: hosts,
// resources and pending operations added, removed and changed, a changed
// record field by field.
// Vars and Data are compared recursively, maps key by key and lists
// element by element (by index), and each change names its JSON path:
//
//	~ hosts.web01.address: "192.168.1.10" -> "192.168.1.11"
//	+ hosts.web01.vars.http_port: 8080
//	- hosts.web02
//	+ hosts.web03
//	~ resources.linode:1.data.ipv4.0: "192.168.1.10" -> "192.168.1.11"
//	- operations.3f9a1c2e4b5d6071
//
// That is the text form (Result.WriteText; "+" added, "-" removed, "~"
// changed, values as JSON). Result.WriteJSON writes the same changes in a
// machine-readable form with stable field names, and Result.Empty tells
// whether there were any, for an exit status like diff(1)'s.
//
// By default Diff compares content only. Timestamps (created_at,
// updated_at, an operation's started_at) are ignored: they say when a record was written, not what it
// holds, and a store re-created by a later run, or imported from an
// export, should compare equal to the original when its content is the
// same. Metadata (version, serial, lineage) is ignored too, since any
// write changes the serial. DiffOptions.Timestamps and
// DiffOptions.Metadata include them.
//
// Diff walks both snapshots together in key order (a merge walk): memory
// beyond the changes it returns is one record of each side, and DiffFunc
// does without the Result.
//
// # Redaction
//
// IsSecretKey tells which keys look secret ("password", "passwd",
// "passphrase", "secret", "token", "private_key", "api_key",
// "credential", in any case and spelling:
// "API-Key", "apiKey"). RedactHost, RedactResource and RedactOperation
// return copies of a record whose Vars, Data and Tags values under such
// keys, at any depth
// (in maps, and in maps inside lists), are replaced by "<redacted>";
// Options.Redact does the same to the Ansible inventory, and
// DiffOptions.Redact to the values a Diff reports. Nothing is redacted
// by default.
//
// # Ansible inventory
//
// WriteInventoryList and WriteInventoryHost write what an Ansible dynamic
// inventory script prints for --list and for --host NAME, with
// Options.Redact applied to the host variables. The rendering itself is
// package state/ansible's (see there for the mapping), which sits below
// the backends so that a store held for writing can serve it to Ansible
// while a run writes (boltbackend's live reads).
//
// # Python ftl2 state files
//
// The Python ftl2 (benthomasson/ftl2) keeps its state in
// .ftl2-state.json, a format of its own: WriteFTL2 writes it, ReadFTL2
// reads it, and ReadAny (which Import uses) tells it from a state.json by
// its content. The mapping:
//
//	ftl2 file                         store
//	--------------------------------  -------------------------------------------
//	version (1), created_at,          Metadata.CreatedAt, UpdatedAt (no serial, no
//	updated_at                        lineage: an import into a store that is not
//	                                  empty needs ImportOptions.Force)
//	hosts.NAME                        host NAME
//	  ansible_host                    Address
//	  ansible_port                    Port
//	  ansible_user                    User
//	  groups ["a", "b", "c"]          Group "a", Groups ["b", "c"]; [] is no group
//	  added_at                        CreatedAt and UpdatedAt (ftl2 has one time;
//	                                  WriteFTL2 writes UpdatedAt)
//	  any other key                   Vars
//	resources.KEY                     resource KEY, Name KEY
//	  provider                        Type; none is Type "-"
//	  id "i-0abc"                     ID
//	  id 12345678 (an integer)        ID "12345678" and the tag ftl2.id=integer,
//	                                  so that it is written back as a number; any
//	                                  size is kept exactly
//	  created_at                      CreatedAt
//	  last_seen                       UpdatedAt (none: UpdatedAt = CreatedAt)
//	  any other key                   Data ("tags" too: ftl2's tags are data)
//	  ftlstate {name, tags, data}     what ftl2 has no place for, written by
//	                                  WriteFTL2 only when needed: Name when it is
//	                                  not KEY, Tags, and Data keys named like the
//	                                  entry's own keys
//
// A value that does not fit its field stays under its own name in Vars or
// Data, so that it is written back as it was and the inventory shows it as
// ftl2's does: an ansible_host or ansible_user that is not a non-empty
// string, an ansible_port that is not a number from 1 to 65535 ("2222",
// 0), an added_at, created_at or last_seen that is not an RFC 3339 time
// (an extra variable called added_at replaces ftl2's time with any value),
// a provider that is not a valid type (or is "-"), an id that is neither
// text nor an integer (1.5, null).
//
// WriteFTL2 writes the host's Ansible variables (see Precedence above, the
// same code as the inventory), so the Python tool's inventory merge of the
// file lists every host with the address, port, user and vars of
// inventory --list, in each of its groups; a field that is not set is not
// written (ftl2 then uses the host name, port 22, no user, as Ansible
// does). The text is Python's own json.dumps(indent=2) with ensure_ascii:
// non-ASCII escaped, floats as Python's repr writes them, times as its
// isoformat ("2026-12-01T18:34:25.977046+00:00"; nine digits for times
// with nanoseconds, which Python does not have). A host var named
// "groups", which ftl2 would read as the host's group list, is refused.
//
// Round trips. ftl2 file -> ReadFTL2 -> WriteFTL2 gives the same JSON
// values, but for these normalisations:
//
//   - key order: hosts and resources in name order, entries in the order
//     above, nested keys sorted;
//   - times: the same instant, in UTC, in Python's spelling (+00:00, not Z);
//   - numbers: a float with an integral value is an integer (2.0 is 2,
//     -0.0 is 0, 1e+16 is 10000000000000000), as everywhere in this store;
//   - groups: a group listed twice is listed once (ftl2's own inventory
//     merge puts the host in it once); a host without groups gets [];
//   - version: 1;
//   - a last_seen equal to created_at is left out (it reads back the same);
//   - an ftlstate object is written in its canonical form.
//
// A store -> WriteFTL2 -> ReadFTL2 gives the same hosts, resources and
// groups, but for these: a host's CreatedAt becomes its UpdatedAt; a var
// ansible_host, ansible_port or ansible_user (or an ansible_ssh_* alias)
// is dropped when its field is set, as in the inventory, and one of the
// first three becomes the field when the field is not set and the value
// fits; a var added_at is written in place of the host's time (a time
// comes back as the host's times, anything else as the var, with no
// time); empty Vars, Data and Tags maps come back as none; metadata keeps
// its times only.
//
// Refused, with line, column and JSON path, never rounded or replaced:
// NaN, Infinity and -Infinity (Python writes them for float NaN and
// infinities; JSON has no such numbers), integers beyond int64 other than
// ids, numbers beyond float64 or so small they would become 0, duplicate
// keys (Python keeps the last one silently), invalid UTF-8 and lone
// surrogates, group lists that are not lists of names, names ftlstate
// cannot store (state.ValidateName), unknown top-level keys, and an
// ftlstate object of another shape. An ftl2 execution record (what
// "ftl2 run --state-file" writes: module, completed, successful, ...) is
// refused with an *ExecutionRecordError saying what it is.
//
// Hybrid files: ftl2 reads a state.json without complaint and, on its
// first change, writes it back as a hybrid: the documented metadata and
// entries as they were, its own entries beside them, a top-level
// updated_at, and, for update_resource on a documented resource, its keys
// added to that entry. Beside a documented metadata, ReadFTL2 reads each
// entry by its shape (a host with "name" and no "ansible_host" is
// documented, a resource with type, id, name and updated_at and no
// provider), the documented ones by the state.json decoder itself; the
// keys update_resource added become Data, and its last_seen the
// UpdatedAt. ReadReport counts the entries of each shape. Without a
// metadata every entry is read as ftl2's (a var may be called "name").
//
// Where this differs from ftl2's own inventory merge, on purpose: group
// names are Ansible-safe (AnsibleGroup: "équipe" is "_quipe"); an added_at
// that is not a time is a var (ftl2 drops the key). ftl2's ansible_connection
// and other ansible_* keys are vars, which is what Ansible and ftl2's
// inventory-script reader make of them.
//
// # Determinism
//
// The same content always gives the same bytes.
//
//   - Diff: metadata changes first, then hosts in name order, then
//     resources in key order, then pending operations in ID order (byte
//     order); within a record, fields in state.json order (hosts: name,
//     address, port, user, vars, group, groups, created_at, updated_at;
//     resources: type, id, name, data, tags, created_at, updated_at;
//     operations: id, action, resource, host, data, started_at, holder), map keys in byte order, list elements by
//     index. JSON is indented by two spaces.
//   - Inventory: as state/ansible renders it.
//
// No output escapes '<', '>' or '&' (JSON allows them as they are), so
// "<redacted>" reads as it is.
//
// # Concurrency
//
// The functions of this package may be called concurrently; each reads
// its own snapshots.
//
// # Caveats
//
// Diff holds a's snapshot while it takes b's. Diff(v, v) with the same
// backend handle therefore nests two views of one store, which a backend
// whose views hold a read lock (statetest.Memory; bbolt while it grows
// its file) can deadlock with a writer arriving in between. Compare a
// *state.State with itself, or two different stores.
package export
