package main

import (
	"context"
	"log/slog"
	"testing"

	commonrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/ratelimit"
	"github.com/portico-gw/portico/translator"
)

// rateLimitYAML is a configuration with global limits per-ip and, when both, all, counted in
// Redis when redis is not empty.
func rateLimitYAML(redis string, both bool) string {
	gw := "apiVersion: portico.dev/v1\nkind: Gateway\nmetadata: {name: web}\nspec:\n  bindPort: 8080\n"
	if redis != "" {
		gw += "  rateLimit: {redis: " + redis + "}\n"
	}
	limits := "    - {name: per-ip, requestsPerUnit: 10, unit: second, key: {clientIP: true}}\n"
	if both {
		limits += "    - {name: all, requestsPerUnit: 1000, unit: hour}\n"
	}
	return gw + `---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  rateLimit:
    global:
` + limits + `  routes:
  - match: {prefix: /}
    upstream: api
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: api}
spec:
  static:
    hosts: [{address: 127.0.0.1, port: 9000}]
`
}

// TestRateLimiterFollowsReloads applies configurations in turn and checks that the limits and
// the store the status reports are those of the configuration applied last.
func TestRateLimiterFollowsReloads(t *testing.T) {
	load := func(yaml string) *config.Config {
		t.Helper()
		cfg, err := config.LoadFiles([]config.SourceFile{{Name: "limits.yaml", Data: yaml}})
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	r, err := newRateLimiter(slog.New(slog.DiscardHandler), prometheus.NewRegistry(), load(rateLimitYAML("", true)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	steps := []struct {
		name, redis        string
		both               bool
		store, failureMode string
		limits             int
		// One check under per-ip: its answer, and whether the store failed. Nothing listens
		// on ports 1 and 2 of loopback, so those Redis stores fail.
		code     rlsv3.RateLimitResponse_Code
		degraded bool
	}{
		{"memory at start", "", true, "memory", "open", 2, rlsv3.RateLimitResponse_OK, false},
		{"redis, failing closed", `{address: "127.0.0.1:1", failureMode: closed}`, true, "redis 127.0.0.1:1", "closed", 2, rlsv3.RateLimitResponse_OVER_LIMIT, true},
		{"another redis, one limit", `{address: "127.0.0.1:2", window: sliding}`, false, "redis 127.0.0.1:2", "open", 1, rlsv3.RateLimitResponse_OK, true},
		{"back to memory", "", true, "memory", "open", 2, rlsv3.RateLimitResponse_OK, false},
	}
	for i, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if i > 0 {
				r.reload(load(rateLimitYAML(s.redis, s.both)))
			}
			resp, err := r.svc.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{
				Domain: translator.RateLimitDomain,
				Descriptors: []*commonrlv3.RateLimitDescriptor{{Entries: []*commonrlv3.RateLimitDescriptor_Entry{
					{Key: ratelimit.KeyGenericKey, Value: "shop/per-ip"}, {Key: ratelimit.KeyRemoteAddress, Value: "192.0.2.1"},
				}}},
			})
			if err != nil || resp.GetOverallCode() != s.code {
				t.Errorf("check under per-ip: %v, %v; want %v", resp.GetOverallCode(), err, s.code)
			}
			st := r.status()
			if st.Store != s.store || st.FailureMode != s.failureMode || st.Limits != s.limits || st.Degraded != s.degraded {
				t.Errorf("status %+v, want store %q, failure mode %q, %d limits, degraded %t", st, s.store, s.failureMode, s.limits, s.degraded)
			}
		})
	}
}
