package config_test

import (
	"fmt"
	"testing"

	"github.com/portico-gw/portico/bench/workload"
	"github.com/portico-gw/portico/config"
)

// benchRouteCounts are the configuration sizes the control-plane benchmarks cover; make bench
// reports them beside the propagation figures.
var benchRouteCounts = []int{1000, 10000, 50000}

// BenchmarkParse measures decode and validation of a whole configuration: what every reload
// pays before translation.
func BenchmarkParse(b *testing.B) {
	for _, n := range benchRouteCounts {
		doc := workload.Spec{Routes: n, PerService: 1000, GatewayPort: 18080, Backends: []int{19001, 19002}, UpstreamCount: 4}.All()
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if _, err := config.Parse("bench.yaml", doc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
