package ratelimit

import (
	"context"
	"fmt"
	"testing"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
)

// BenchmarkShouldRateLimit measures one decision in memory for a request like the Envoy test
// sends: a client address and an API key, among a dozen limits. Run with
// `go test -run '^$' -bench . -benchmem ./ratelimit` for ns/op and allocs/op.
func BenchmarkShouldRateLimit(b *testing.B) {
	limits := []Limit{perIP(1<<31, Second)}
	for i := range 10 {
		limits = append(limits, Limit{
			Name:            fmt.Sprintf("route-%d", i),
			Descriptors:     []DescriptorMatch{{Key: KeyGenericKey, Value: fmt.Sprintf("route-%d", i)}, {Key: "api_key"}},
			RequestsPerUnit: 100, Unit: Minute,
		})
	}
	limits = append(limits, Limit{Name: "per-key", Descriptors: []DescriptorMatch{{Key: "api_key"}}, RequestsPerUnit: 1 << 31, Unit: Minute})
	s, _, _ := newTestService(b, Config{Limits: limits})
	// 1024 distinct clients and keys, so that the counters map is not a single hot entry.
	reqs := make([]*rlsv3.RateLimitRequest, 1024)
	for i := range reqs {
		reqs[i] = &rlsv3.RateLimitRequest{Domain: testDomain, Descriptors: []*commonrl.RateLimitDescriptor{
			desc(KeyRemoteAddress, fmt.Sprintf("192.0.2.%d", i%256)),
			desc("api_key", fmt.Sprintf("key-%d", i)),
		}}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		resp, err := s.ShouldRateLimit(ctx, reqs[i%len(reqs)])
		if err != nil || resp.OverallCode != rlsv3.RateLimitResponse_OK {
			b.Fatalf("decision %v, %v", resp.GetOverallCode(), err)
		}
	}
}
