package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// upstreamGroupConfig is a route to an UpstreamGroup of backends a and b with the given weights.
func upstreamGroupConfig(port int, a, b *backend, weightA, weightB int) string {
	return gatewayYAML(port) + fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - match: {prefix: /}
    upstreamGroup: split
---
apiVersion: portico.dev/v1
kind: UpstreamGroup
metadata: {name: split}
spec:
  destinations:
  - {upstream: a, weight: %d}
  - {upstream: b, weight: %d}
`, weightA, weightB) + a.upstreamYAML() + b.upstreamYAML()
}

// splitCounts sends n requests to url and counts the answering backends by name.
func splitCounts(n int, url string) (map[string]int, error) {
	counts := map[string]int{}
	for range n {
		code, body, err := get("", url)
		if err != nil {
			return nil, err
		}
		if code != 200 {
			return nil, fmt.Errorf("got %d %q", code, body)
		}
		counts[strings.Fields(body)[0]]++
	}
	return counts, nil
}

// TestUpstreamGroupSplitAndShift proves a route's upstreamGroup splits real traffic by the
// group's weights, and that editing only the group's weights in the file shifts the traffic of
// the route live.
func TestUpstreamGroupSplitAndShift(t *testing.T) {
	a, b := newBackend(t, "a"), newBackend(t, "b")
	port := envoytest.FreePort(t)
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, path, upstreamGroupConfig(port, a, b, 75, 25))
	startReady(t, path)
	url := fmt.Sprintf("http://127.0.0.1:%d/x", port)
	// Wait until the route is served at all before counting.
	eventually(t, 15*time.Second, "the group's route answers", func() error {
		_, err := splitCounts(1, url)
		return err
	})

	const n = 400
	counts, err := splitCounts(n, url)
	if err != nil {
		t.Fatal(err)
	}
	// a's share is Binomial(400, 0.75): mean 300, standard deviation 8.7 requests (2.2
	// percentage points). The tolerance of +-8 points (+-32 requests) is 3.7 standard
	// deviations, so a correct split fails about once in five thousand runs.
	if counts["a"]+counts["b"] != n || counts["a"] < 268 || counts["a"] > 332 {
		t.Fatalf("split %v over %d requests, want a in [268, 332] (75%% +-8 points) and the rest b", counts, n)
	}

	// Only the group changes; the route still names it. Batches of 100 until at least 95 go to
	// b: at 1/99 a batch falls short about once in three thousand, at 75/25 never.
	writeFile(t, path, upstreamGroupConfig(port, a, b, 1, 99))
	eventually(t, 20*time.Second, "traffic shifts to b after the group's weights change to 1/99", func() error {
		c, err := splitCounts(100, url)
		if err != nil {
			return err
		}
		if c["b"] < 95 {
			return fmt.Errorf("split %v", c)
		}
		return nil
	})
}
