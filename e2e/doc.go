// Package e2e runs the built portico binary against the real Envoy and real Go backends on
// loopback, and asserts on what comes back through the gateway. It has only tests.
package e2e
