// Package inventory holds the small inventory types that state hosts merge
// into: a Host (name, address, port, user, vars) and an Inventory of named
// groups, mirroring Go-FTL2's inventory.Host and Inventory.AddHost.
//
// # Concurrency
//
// An Inventory is safe for concurrent use. Hosts passed in are copied and
// hosts returned are copies, so neither side can change the other's data.
package inventory
