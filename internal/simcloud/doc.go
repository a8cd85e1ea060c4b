// Package simcloud is a simulated cloud provider for the demo and the
// crash tests: instances created with a client token (as AWS's
// ClientToken, GCP's requestId), looked up by it, and a random latency
// per call. Its state is a file of its own, one JSON line per instance,
// appended and fsync'ed before a create answers, and locked (flock) while
// a call reads or appends it, so several processes may share one
// provider. It is the "outside world" of a provisioning run: a process
// killed during Create may have created an instance without learning
// its ID, which is what state's pending operations and FindByToken are
// for.
package simcloud
