// Package envoytest finds the real Envoy binary for tests and hands out loopback ports.
//
// It owns no behaviour of Portico itself. Tests that need Envoy call Binary: under CI=true a
// missing binary fails the test instead of skipping it.
package envoytest

import (
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
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

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and that no other caller
// in this process has been given. It picks below the kernel's ephemeral range: a port from that
// range (what listening on port 0 returns) can be taken, between the check and the bind, as the
// local port of any outgoing connection, and the tests make thousands of those.
func FreePort(t testing.TB) int {
	t.Helper()
	low := ephemeralLow()
	ports.Lock()
	defer ports.Unlock()
	for range 1000 {
		p := freePortMin + rand.IntN(low-freePortMin)
		if ports.given[p] {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		ports.given[p] = true
		return p
	}
	t.Fatalf("no free port between %d and %d on 127.0.0.1", freePortMin, low)
	return 0
}

// freePortMin keeps FreePort above the ports well-known services use.
const freePortMin = 20000

var ports = struct {
	sync.Mutex
	given map[int]bool
}{given: map[int]bool{}}

// ephemeralLow is the first port of the kernel's ephemeral range (32768 by default).
func ephemeralLow() int {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(raw))
	if len(f) != 2 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= freePortMin+1000 {
		return 32768
	}
	return low
}
