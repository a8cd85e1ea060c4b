package etcdbackend

import "google.golang.org/grpc"

// WriteTxns returns the number of write transactions b has committed.
func WriteTxns(b *Backend) uint64 { return b.writeTxns.Load() }

// WithDialOptions returns cfg with gRPC dial options added (tests
// intercept and count requests).
func WithDialOptions(cfg Config, opts ...grpc.DialOption) Config {
	cfg.dialOptions = append(cfg.dialOptions, opts...)
	return cfg
}
