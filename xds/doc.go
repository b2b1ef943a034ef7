// Package xds owns Portico's in-process xDS control plane: a go-control-plane snapshot cache
// served to one Envoy over aggregated (ADS), state-of-the-world gRPC on a Unix socket, and the
// bookkeeping of what that Envoy accepted or rejected.
//
// Every Push publishes a complete, internally consistent set of resources as a new generation;
// the snapshot version string is the decimal generation, so versions only go up. ACKs and NACKs
// are read from the ADS stream through server callbacks, which lets callers wait for Envoy to
// apply a generation (WaitACK) and report it (Status).
//
// A rejected generation is never re-sent in a loop. go-control-plane answers any request whose
// version differs from the snapshot's, and Envoy's NACK carries its last accepted version, so
// left alone the cache would answer every NACK with the same rejected resources. On a NACK this
// package tells the cache that Envoy has already seen the rejected version, then re-publishes
// the last fully ACKed content as a new generation (a rollback) so Envoy keeps, and a restarted
// Envoy gets, the last good configuration. With nothing ACKed yet there is nothing good to roll
// back to: the rejected generation stays published but is not re-sent on that stream, and Envoy
// keeps whatever it had until the next Push. When the rejected generation named routes or
// endpoints that Envoy never asked for (they belong to the listener or cluster it rejected),
// the cache has dropped Envoy's open request for that type and Envoy will not ask again; the
// server then resets the stream after the rollback, and the reconnected Envoy asks afresh.
//
// Push refuses to publish content equal to the last rejected generation: Envoy would only
// reject it again. Check runs Push's validation without a server, for `portico validate`.
//
// The package must not translate user configuration (that is the translator's job), start or
// watch Envoy (the supervisor's), or listen on anything but the Unix socket it is given.
package xds
