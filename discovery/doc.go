// Package discovery finds the hosts of Upstreams that discover them at run time, from etcd:
// every key under an Upstream's prefix is one host. It reads the prefix, then follows it with
// an etcd v3 watch, over the JSON gateway etcd serves on its client port (plain net/http, no
// etcd or gRPC client). It keeps each source's last known hosts, the keys it skipped and why,
// and its health: while etcd cannot be reached the last known hosts stay in force and the
// source is marked degraded, and it retries with backoff.
//
// It owns the watches and what they found. It does not build Envoy resources (translator) or
// push them (controller and xds): it signals on Changed that some host set changed, and the
// controller reads Hosts and pushes the new endpoints. It reads no configuration files.
package discovery
