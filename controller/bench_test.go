package controller

import (
	"fmt"
	"log/slog"
	"testing"

	"github.com/portico-gw/portico/bench/workload"
	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/xds"
)

// BenchmarkReload measures one reload as the propagation benchmark causes it: the files are
// read again with one route added, built against the served configuration, and pushed to the
// real xDS server. Profile it with -cpuprofile to see where a route addition's time goes.
func BenchmarkReload(b *testing.B) {
	for _, n := range []int{3000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			spec := workload.Spec{Routes: n, PerService: 1000, GatewayPort: 18080, Backends: []int{9001, 9002}, UpstreamCount: 4}
			base := config.SourceFile{Name: "routes.yaml", Data: string(spec.All())}
			added := 0
			c := New(Options{
				Read: func() ([]config.SourceFile, error) {
					extra := workload.OneService(fmt.Sprintf("add-%d", added), fmt.Sprintf("add-%d.bench", added), "/added", workload.UpstreamName(0))
					return []config.SourceFile{base, {Name: "add.yaml", Data: string(extra)}}, nil
				},
				XDS:    xds.New(slog.New(slog.DiscardHandler), "bench"),
				Logger: slog.New(slog.DiscardHandler),
			})
			// The verdict followers wait for an Envoy that never comes; they end with the context.
			ctx := b.Context()
			if _, err := c.Start(ctx); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				added++
				if got := c.Reload(ctx); got != ResultApplied {
					b.Fatalf("Reload = %s", got)
				}
			}
		})
	}
}
