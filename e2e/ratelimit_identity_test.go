package e2e

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/portico-gw/portico/internal/envoytest"
)

const (
	keyA1   = "KEY-A1-0123456789abcdef"
	keyA2   = "KEY-A2-0123456789abcdef"
	keyB    = "KEY-B-0123456789abcdef"
	keyWarm = "KEY-W-0123456789abcdef"
)

const identityLimitConfig = `---
apiVersion: portico.dev/v1
kind: Secret
metadata: {name: partners}
spec: {type: apiKeys, file: keys.txt}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  security:
    apiKey: {secrets: [partners]}
  routes:
  - name: limited
    match: {prefix: /limited}
    upstream: api
    rateLimit:
      global:
      - {name: per-partner, requestsPerUnit: 3, unit: minute, key: {identity: true}}
`

// TestRateLimitByIdentity: a limit keyed by identity counts each authenticated identity on its
// own, whichever of its keys it uses, and the identity header a client sends changes nothing.
func TestRateLimitByIdentity(t *testing.T) {
	api := newBackend(t, "api")
	dir := t.TempDir()
	port := envoytest.FreePort(t)
	writeFile(t, filepath.Join(dir, "keys.txt"), "a:"+keyA1+"\na:"+keyA2+"\nb:"+keyB+"\nwarm:"+keyWarm+"\n")
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+identityLimitConfig+api.upstreamYAML())
	startReady(t, cfg)
	url := fmt.Sprintf("http://127.0.0.1:%d/limited", port)
	awaitRateLimitService(t, url, keyWarm)
	clearOfMinuteBoundary(t)

	expectStatuses(t, url, keyA1, 200, 200)
	// a's second key counts against the same identity.
	expectStatuses(t, url, keyA2, 200, 429)
	// b is limited independently of a.
	expectStatuses(t, url, keyB, 200, 200, 200, 429)
	// A request claiming another identity in the header is still counted as b.
	if r := getWith(t, url, map[string]string{"x-api-key": keyB, "x-portico-identity": "fresh"}); r.status != 429 {
		t.Errorf("b claiming identity %q: %d, want 429", "fresh", r.status)
	}
	// Without a key there is no identity: 401 from authentication, before any counting.
	expectStatuses(t, url, "", 401)
}
