package translator_test

import (
	"fmt"
	"testing"

	"github.com/portico-gw/portico/bench/workload"
	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/translator"
)

var benchRouteCounts = []int{1000, 10000, 50000}

func benchDoc(n int) []byte {
	return workload.Spec{Routes: n, PerService: 1000, GatewayPort: 18080, Backends: []int{19001, 19002}, UpstreamCount: 4}.All()
}

// BenchmarkTranslate measures translation alone, from a validated snapshot to Envoy resources.
func BenchmarkTranslate(b *testing.B) {
	for _, n := range benchRouteCounts {
		cfg, err := config.Parse("bench.yaml", benchDoc(n))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := translator.Translate(cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPipeline measures what one reload costs before the xDS push: decode, validate and
// translate, from the bytes of the file.
func BenchmarkPipeline(b *testing.B) {
	for _, n := range benchRouteCounts {
		doc := benchDoc(n)
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				cfg, err := config.Parse("bench.yaml", doc)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := translator.Translate(cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
