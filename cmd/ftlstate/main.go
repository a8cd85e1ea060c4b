// Command ftlstate is the operator's tool for ftlstate stores: list and
// edit hosts and resources, export and import the documented state.json,
// diff two states, serve Ansible's dynamic inventory, check and compact a
// store, benchmark, and a demo of the main job.
//
// Run "ftlstate help" for the commands. The store is chosen with --state
// (default $FTLSTATE_PATH, else ./state.db): a path ending in .json uses
// the JSON file backend, anything else the embedded bbolt backend.
package main

import "os"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
