package state

import "strings"

// KeyScanner is implemented by a Snapshot that can list host names and
// resource keys starting with a prefix without reading the others' records
// (a cursor seek in an ordered store): what shell completion and name
// patterns need on a store of any size.
//
// HostNames calls fn with the name of every host that starts with prefix,
// and ResourceKeys with every such resource key, in byte order, as Hosts
// and Resources would; records are not decoded, so a damaged record's key
// is listed too. Errors of fn stop the iteration and are returned
// unchanged.
type KeyScanner interface {
	HostNames(prefix string, fn func(name string) error) error
	ResourceKeys(prefix string, fn func(key string) error) error
}

// HostNames calls fn with the name of every host of s that starts with
// prefix, in byte order: with s's own scan when s is a KeyScanner, else by
// filtering s.Hosts.
func HostNames(s Snapshot, prefix string, fn func(name string) error) error {
	if ks, ok := s.(KeyScanner); ok {
		return ks.HostNames(prefix, fn)
	}
	return s.Hosts(func(h *HostState) error {
		if !strings.HasPrefix(h.Name, prefix) {
			return nil
		}
		return fn(h.Name)
	})
}

// ResourceKeys calls fn with every resource key of s that starts with
// prefix, in byte order (see HostNames).
func ResourceKeys(s Snapshot, prefix string, fn func(key string) error) error {
	if ks, ok := s.(KeyScanner); ok {
		return ks.ResourceKeys(prefix, fn)
	}
	return s.Resources(func(key string, _ *ResourceState) error {
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		return fn(key)
	})
}
