package etcdbackend

// WriteTxns returns the number of write transactions b has committed.
func WriteTxns(b *Backend) uint64 { return b.writeTxns.Load() }
