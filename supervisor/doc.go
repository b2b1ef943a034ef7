// Package supervisor owns Envoy as a process: it acquires the Envoy binary and runs it as a
// child of Portico, waits for it to become ready, restarts it with backoff when it dies, drains
// and stops it gracefully on shutdown, and forwards its output to Portico's log.
//
// Two guarantees shape the code. Envoy never outlives Portico: the child is killed by the kernel
// when Portico dies (Pdeathsig), and Run never returns while Envoy is still running. And a
// crash loop is not hidden: after repeated exits Run gives up with an error that names how Envoy
// exited and what it last printed.
//
// The supervisor must not translate configuration or serve xDS: it starts Envoy from a
// bootstrap file someone else wrote and talks to Envoy only through its admin endpoint and
// process signals.
package supervisor
