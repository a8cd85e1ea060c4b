// Package export renders a state store for people and for other tools: the
// differences between two states (Diff), redaction of secrets for review
// (RedactHost, RedactResource, Options.Redact), and the hosts as an
// Ansible dynamic inventory (WriteInventoryList, WriteInventoryHost).
//
// Every function reads a state.Viewer, so it works on any backend and on a
// *state.State, from one consistent snapshot.
//
// # Diff
//
// Diff(a, b, opts) lists the changes that turn a into b: hosts and
// resources added, removed and changed, a changed record field by field.
// Vars and Data are compared recursively, maps key by key and lists
// element by element (by index), and each change names its JSON path:
//
//	~ hosts.web01.address: "192.168.1.10" -> "192.168.1.11"
//	+ hosts.web01.vars.http_port: 8080
//	- hosts.web02
//	+ hosts.web03
//	~ resources.linode:1.data.ipv4.0: "192.168.1.10" -> "192.168.1.11"
//
// That is the text form (Result.WriteText; "+" added, "-" removed, "~"
// changed, values as JSON). Result.WriteJSON writes the same changes in a
// machine-readable form with stable field names, and Result.Empty tells
// whether there were any, for an exit status like diff(1)'s.
//
// By default Diff compares content only. Timestamps (created_at,
// updated_at) are ignored: they say when a record was written, not what it
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
// "API-Key", "apiKey"). RedactHost and RedactResource return copies of a
// record whose Vars, Data and Tags values under such keys, at any depth
// (in maps, and in maps inside lists), are replaced by "<redacted>";
// Options.Redact does the same to the Ansible inventory, and
// DiffOptions.Redact to the values a Diff reports. Nothing is redacted
// by default.
//
// # Ansible inventory
//
// WriteInventoryList and WriteInventoryHost write what an Ansible dynamic
// inventory script prints for --list and for --host NAME. The mapping:
//
//	state                            Ansible
//	-------------------------------  ---------------------------------------------
//	host                             host of the same name
//	HostState.Group "webservers"     group "webservers": {"hosts": [...], "vars": {}}
//	HostState.Groups                 the host is in each of them too, as in Group
//	no group, "all" or "ungrouped"   group "ungrouped" (Ansible's convention)
//	Group "web-servers", "1st"       group "web_servers", "_1st" (see AnsibleGroup)
//	every group                      listed in "all": {"children": [...]};
//	                                 "ungrouped" is always there, maybe empty
//	HostState.Address                hostvars ansible_host (omitted when "")
//	HostState.Port                   hostvars ansible_port (omitted when 0)
//	HostState.User                   hostvars ansible_user (omitted when "")
//	HostState.Vars                   hostvars, each key as it is
//	all host variables               "_meta": {"hostvars": {...}} in --list, so
//	                                 Ansible never calls --host
//	resources, metadata              not part of the inventory
//
// Precedence: Address, Port and User win over Vars named ansible_host,
// ansible_port and ansible_user, so that Ansible connects where Go-FTL2
// does; a field that is empty (0 for Port) leaves the var as it is. A set
// field also drops the older alias var (ansible_ssh_host,
// ansible_ssh_port, ansible_ssh_user), which Ansible would otherwise
// prefer over ansible_host.
//
// Group names: ansible-core 2.14 keeps group names with characters
// outside letters, digits and '_' (its default
// TRANSFORM_INVALID_GROUP_CHARS=never) but warns about them, and names
// with ':' or ',' cannot be used in host patterns. This package maps such
// names to safe ones (see AnsibleGroup); two groups that map to the same
// name, and a group named "_meta", are errors.
//
// # Determinism
//
// The same content always gives the same bytes.
//
//   - Diff: metadata changes first, then hosts in name order, then
//     resources in key order (byte order); within a record, fields in
//     state.json order (hosts: name, address, port, user, vars, group,
//     groups, created_at, updated_at; resources: type, id, name, data, tags,
//     created_at, updated_at), map keys in byte order, list elements by
//     index. JSON is indented by two spaces.
//   - Inventory: "all" first, then the groups in byte order, then
//     "_meta"; hosts in name order; variables in key order (byte order);
//     indented by two spaces, with a final newline.
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
//
// Ansible warns when a host and a group have the same name; this package
// does not rename either.
package export
