package admin

import (
	"strings"
	"testing"
)

// TestListenLoopbackOnly proves portico's admin API, which has no authentication, refuses any
// address another host could reach.
func TestListenLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", ":0", "192.0.2.1:0"} {
		if l, err := Listen(addr); err == nil {
			l.Close()
			t.Errorf("Listen(%q) succeeded, want a refusal", addr)
		} else if !strings.Contains(err.Error(), "only loopback addresses") {
			t.Errorf("Listen(%q): %v, want it to say only loopback addresses are allowed", addr, err)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		l, err := Listen(addr)
		if err != nil {
			if strings.Contains(addr, "::1") {
				t.Logf("no IPv6 loopback here: %v", err)
				continue
			}
			t.Fatalf("Listen(%q): %v", addr, err)
		}
		l.Close()
	}
}
