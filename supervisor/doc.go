// Package supervisor owns Envoy as a process: it acquires the Envoy binary (cache, verified and
// locked downloads through func-e, PATH) and runs it as a child of Portico, waits for it to
// become ready, restarts it with backoff when it dies, replaces it by hot restart when its
// process settings change, drains and stops it gracefully on shutdown, and forwards its output
// to Portico's log and a per-run log file.
//
// Two guarantees shape the code. Envoy never outlives Portico: the child is killed by the kernel
// when Portico dies (Pdeathsig), Run never returns while an Envoy it started is still running,
// and an Envoy a crashed run left behind is found by its pid file and killed. And a crash loop is
// not hidden: after repeated exits Run gives up with an error that names how Envoy exited and
// what it last printed.
//
// The supervisor must not translate configuration or serve xDS: it starts Envoy from a
// bootstrap file someone else wrote and talks to Envoy only through its admin endpoint and
// process signals.
package supervisor
