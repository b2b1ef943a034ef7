// Package controller owns the configuration loop: it reads the user's files, builds and checks
// the Envoy resources (Build, shared with `portico validate`), hands them to the xDS server and
// watches the files for changes.
//
// It holds the only mutable view of "what is configured now" and of how it got there: the
// reload results, the resources held back by isolation or rejected by Envoy, readiness, and
// the last known good configuration in the state directory. A change is pushed make before
// break, in steps when it adds or removes clusters, so no route ever names a cluster Envoy does
// not have. Hosts discovered at run time (Options.Discovery) go into every push; PushDiscovered
// pushes their changes as generations that change only load assignments.
//
// It does not decode YAML itself (package config), build Envoy resources (package translator),
// speak xDS (package xds), serve HTTP (package admin) or manage processes (package supervisor).
package controller
