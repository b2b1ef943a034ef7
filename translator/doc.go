// Package translator turns one validated configuration snapshot into Envoy resources.
//
// Translate is a pure function: no I/O, no clocks, no logging, no goroutines. The same input
// always produces the same output, in the same order, so unchanged configuration produces
// identical resources and the xDS server can skip the push. Names of Envoy resources are the
// user's names (listener and route configuration = Gateway, virtual host = VirtualService,
// cluster = Upstream), so Envoy's statistics and errors read in the user's vocabulary.
package translator
