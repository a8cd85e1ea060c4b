// Package ansible renders the hosts of a state store as an Ansible
// dynamic inventory: the documents an inventory script prints for --list
// (WriteList) and --host NAME (WriteHost), and the group names (Group).
//
// It reads a state.Viewer, so it works on any backend and on a
// *state.State, from one consistent snapshot, and imports nothing of this
// module but state: the local backends use it to serve the inventory of a
// store they hold for writing (see boltbackend's live reads), and package
// export offers it with redaction.
//
// # Mapping
//
// WriteList and WriteHost write what an Ansible dynamic
// inventory script prints for --list and for --host NAME. The mapping:
//
//	state                            Ansible
//	-------------------------------  ---------------------------------------------
//	host                             host of the same name
//	HostState.Group "webservers"     group "webservers": {"hosts": [...], "vars": {}}
//	HostState.Groups                 the host is in each of them too, as in Group
//	no group, "all" or "ungrouped"   group "ungrouped" (Ansible's convention)
//	Group "web-servers", "1st"       group "web_servers", "_1st" (see Group)
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
// names to safe ones (see Group); two groups that map to the same
// name, and a group named "_meta", are errors.
//
// # Determinism
//
// The same content always gives the same bytes: "all" first, then the
// groups in byte order, then "_meta"; hosts in name order; variables in
// key order (byte order); indented by two spaces, with a final newline.
// Nothing escapes '<', '>' or '&' (JSON allows them as they are).
//
// # Caveats
//
// Ansible warns when a host and a group have the same name; this package
// does not rename either.
package ansible
