// Package envoytest finds the real Envoy binary for tests and hands out loopback ports.
//
// It owns no behaviour of Portico itself. Tests that need Envoy call Binary: under CI=true a
// missing binary fails the test instead of skipping it.
package envoytest

import (
	"net"
	"os"
	"os/exec"
	"testing"
)

// EnvVar names the environment variable through which the Makefile hands tests the Envoy binary.
const EnvVar = "PORTICO_TEST_ENVOY"

// Binary returns the path of the Envoy binary provisioned for tests. Outside CI a missing binary
// skips the test; under CI=true it fails it, since an e2e test must never silently not run.
func Binary(t testing.TB) string {
	t.Helper()
	path := os.Getenv(EnvVar)
	if path == "" {
		if p, err := exec.LookPath("envoy"); err == nil {
			path = p
		}
	}
	if path != "" {
		if _, err := os.Stat(path); err == nil {
			return path
		}
	}
	msg := "no Envoy binary: run `make envoy` and set " + EnvVar + " (or use `make test`)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen for a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
