package e2e

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestMirrorPercentage proves a route's mirror.percentage copies only that share of real
// requests to the mirror Upstream, while the client always gets the primary's answer.
func TestMirrorPercentage(t *testing.T) {
	var primary, mirrored atomic.Int64
	primaryPort := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		primary.Add(1)
		fmt.Fprint(w, "primary")
	}))
	shadowPort := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mirrored.Add(1)
		fmt.Fprint(w, "shadow")
	}))
	port := envoytest.FreePort(t)
	startConfig(t, gatewayYAML(port)+`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - match: {prefix: /}
    upstream: api
    options:
      mirror: {upstream: shadow, percentage: 25}
`+staticUpstreamYAML("api", primaryPort)+staticUpstreamYAML("shadow", shadowPort))
	url := fmt.Sprintf("http://127.0.0.1:%d/x", port)
	eventually(t, 15*time.Second, "the route answers", func() error {
		code, body, err := get("", url)
		if err != nil {
			return err
		}
		if code != 200 || body != "primary" {
			return fmt.Errorf("got %d %q", code, body)
		}
		return nil
	})
	// Mirrored copies are sent asynchronously: let the warm-up's copies (if any) land, then
	// count from a settled baseline.
	settled := func() int64 {
		t.Helper()
		last, stableSince := mirrored.Load(), time.Now()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			if n := mirrored.Load(); n != last {
				last, stableSince = n, time.Now()
			} else if time.Since(stableSince) >= 500*time.Millisecond {
				return n
			}
		}
		t.Fatalf("mirrored count still changing after 10s (at %d)", last)
		return 0
	}
	base := settled()
	basePrimary := primary.Load()

	const n = 400
	for i := range n {
		code, body, err := get("", url)
		if err != nil {
			t.Fatal(err)
		}
		if code != 200 || body != "primary" {
			t.Fatalf("request %d: got %d %q, want the primary's 200", i, code, body)
		}
	}
	if got := primary.Load() - basePrimary; got != n {
		t.Fatalf("primary served %d requests, want %d", got, n)
	}
	got := settled() - base
	// The mirrored count is Binomial(400, 0.25): mean 100, standard deviation 8.7 requests
	// (2.2 points). +-7 points (+-28 requests) is 3.2 standard deviations.
	if got < 72 || got > 128 {
		t.Fatalf("mirror received %d of %d requests, want 25%% +-7 points (72..128)", got, n)
	}
	t.Logf("mirror received %d of %d requests", got, n)
}
