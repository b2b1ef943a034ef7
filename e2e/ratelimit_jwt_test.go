package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestRateLimitByJWTClaim counts a global limit per sub claim of the verified token, through
// real Envoy and Portico's rate limit service: two users are limited independently, and
// requests without a token (the route accepts them) are not counted under any claim value,
// whatever headers they carry.
func TestRateLimitByJWTClaim(t *testing.T) {
	envoytest.Binary(t)
	dir := t.TempDir()
	key := newRSASigner(t, "rsa-1")
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), jwks(t, key), 0o644); err != nil {
		t.Fatal(err)
	}
	app := newBackend(t, "app")
	port := envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+app.upstreamYAML()+`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: api}
spec:
  security:
    jwt:
      required: false
      providers:
      - {name: local, issuer: "https://issuer.test", jwks: {file: jwks.json}}
  routes:
  - match: {prefix: /}
    upstream: app
    rateLimit:
      global:
      - {name: per-user, requestsPerUnit: 2, unit: minute, key: {jwtClaim: sub}}
`)
	admin, flag := adminAddr(t)
	startReady(t, cfg, flag...)
	url := fmt.Sprintf("http://127.0.0.1:%d/orders", port)
	tokenOf := func(sub string) string {
		return bearer(key.token(t, claims("https://issuer.test", "api", map[string]any{"sub": sub})))
	}
	eventually(t, 15*time.Second, "envoy asks the rate limit service", func() error {
		if r := sendTo(t, "GET", url, "api.test", tokenOf("warm-up")); r.header.Get("x-ratelimit-limit") == "" {
			return fmt.Errorf("got %d without x-ratelimit-limit", r.status)
		}
		return nil
	})
	clearOfMinuteBoundary(t)

	statuses := func(headers ...string) []int {
		var out []int
		for range 3 {
			out = append(out, sendTo(t, "GET", url, "api.test", headers...).status)
		}
		return out
	}
	t.Run("each sub has its own count", func(t *testing.T) {
		if got := statuses(tokenOf("alice")); fmt.Sprint(got) != "[200 200 429]" {
			t.Errorf("alice: %v, want [200 200 429]", got)
		}
		if got := statuses(tokenOf("bob")); fmt.Sprint(got) != "[200 200 429]" {
			t.Errorf("bob after alice: %v, want [200 200 429]", got)
		}
	})
	t.Run("requests without the claim are not counted", func(t *testing.T) {
		before := decisions(t, admin)
		if before < 6 {
			t.Fatalf("metrics show %d decisions on api/route-0/per-user, want at least alice's and bob's 6", before)
		}
		// No token at all (the route lets it through), also with headers that try to name a
		// claim value: only jwt_authn's metadata can.
		for _, h := range [][]string{nil, {"x-jwt-sub: alice"}, {"sub: alice"}} {
			r := sendTo(t, "GET", url, "api.test", h...)
			if r.status != 200 || r.header.Get("x-ratelimit-limit") != "" {
				t.Errorf("headers %q: got %d, x-ratelimit-limit %q; want 200 and no limit applied", h, r.status, r.header.Get("x-ratelimit-limit"))
			}
		}
		noSub := bearer(key.token(t, claims("https://issuer.test", "api", nil)))
		if r := sendTo(t, "GET", url, "api.test", noSub); r.status != 200 || r.header.Get("x-ratelimit-limit") != "" {
			t.Errorf("a token without sub: got %d, x-ratelimit-limit %q; want 200 and no limit applied", r.status, r.header.Get("x-ratelimit-limit"))
		}
		if after := decisions(t, admin); after != before {
			t.Errorf("the rate limit service decided %d times for requests without a sub claim", after-before)
		}
		if got := statuses(tokenOf("alice")); fmt.Sprint(got) != "[429 429 429]" {
			t.Errorf("alice still: %v, want [429 429 429]", got)
		}
	})
}

var perUserDecision = regexp.MustCompile(`(?m)^portico_ratelimit_decisions_total\{decision="[a-z]+",limit="api/route-0/per-user"\} (\d+)$`)

// decisions sums the rate limit service's decisions on api/route-0/per-user, from portico's metrics.
func decisions(t *testing.T, admin string) int {
	t.Helper()
	_, body, err := get("", "http://"+admin+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range perUserDecision.FindAllStringSubmatch(body, -1) {
		v, _ := strconv.Atoi(m[1])
		n += v
	}
	return n
}
