package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestSlowStart proves an Upstream's slowStart ramps a host added to a settled Upstream up
// over the window: right after it joins and passes its health check it gets clearly less than
// its even share of round robin, and after the window it gets about half.
func TestSlowStart(t *testing.T) {
	const window = 4 * time.Second
	host := func(name string) int {
		return serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" {
				fmt.Fprint(w, name)
			}
		}))
	}
	aPort, bPort := host("a"), host("b")
	port := envoytest.FreePort(t)
	cfg := func(hosts string) string {
		return gatewayYAML(port) + fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - match: {prefix: /}
    upstream: api
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: api}
spec:
  static:
    hosts: [%s]
  options:
    healthCheck: {http: {path: /healthz}, interval: 100ms, timeout: 1s, healthyThreshold: 1, unhealthyThreshold: 1}
    slowStart: {window: %s}
`, hosts, window)
	}
	hostA := fmt.Sprintf("{address: 127.0.0.1, port: %d}", aPort)
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, path, cfg(hostA))
	started := time.Now()
	startReady(t, path)
	url := fmt.Sprintf("http://127.0.0.1:%d/x", port)
	// count sends requests until n are done or the deadline passes, and counts b's answers.
	count := func(n int, until time.Time) (total, b int) {
		t.Helper()
		for total < n && time.Now().Before(until) {
			code, body, err := get("", url)
			if err != nil || code != 200 {
				t.Fatalf("got %d %q, %v", code, body, err)
			}
			total++
			if body == "b" {
				b++
			}
		}
		return total, b
	}
	// Only a is in the Upstream: every answer is a's.
	eventually(t, 15*time.Second, "a serves alone", func() error {
		if total, b := count(50, time.Now().Add(5*time.Second)); total != 50 || b != 0 {
			return fmt.Errorf("%d of %d answers from b", b, total)
		}
		return nil
	})

	// A host is in slow start for a window after it joins, a too: only once a has left its own
	// window does b's ramp show against a full-weight peer.
	waitUntil(started.Add(window + 500*time.Millisecond))
	writeFile(t, path, cfg(hostA+fmt.Sprintf(", {address: 127.0.0.1, port: %d}", bPort)))
	// b joins on reload and takes traffic once it passes a health check (every 100ms); its
	// first answer starts the clock.
	var t0 time.Time
	eventually(t, 10*time.Second, "b answers once healthy", func() error {
		if _, b := count(1, time.Now().Add(time.Second)); b == 0 {
			return fmt.Errorf("not yet")
		}
		t0 = time.Now()
		return nil
	})
	// In the first second of a 4s window b's weight is at most a quarter of a's (linear ramp),
	// so its share is at most 20% instead of 50%.
	total, b := count(1000, t0.Add(time.Second))
	if total < 50 {
		t.Fatalf("only %d requests in the first second; too few to measure", total)
	}
	if share := 100 * b / total; share >= 35 {
		t.Fatalf("b got %d%% (%d of %d) in the first second of its slow start, want < 35%%", share, b, total)
	} else {
		t.Logf("first second: b got %d%% (%d of %d)", share, b, total)
	}

	// After the window b is a full peer again.
	waitUntil(t0.Add(window + 500*time.Millisecond))
	total, b = count(400, time.Now().Add(20*time.Second))
	if total != 400 {
		t.Fatalf("only %d of 400 requests after the window", total)
	}
	if share := 100 * b / total; share < 38 || share > 62 {
		t.Fatalf("b got %d%% (%d of %d) after the window, want 50%% +-12 points", share, b, total)
	} else {
		t.Logf("after the window: b got %d%% (%d of %d)", share, b, total)
	}
}

// waitUntil sleeps until the wall clock reaches at, for load balancer windows that only time
// can end.
func waitUntil(at time.Time) {
	time.Sleep(time.Until(at))
}
