package controller

import (
	"fmt"
	"log/slog"
	"runtime"
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
			c := reloadingController(b, n)
			for b.Loop() {
				if got := c.Reload(b.Context()); got != ResultApplied {
					b.Fatalf("Reload = %s", got)
				}
			}
		})
	}
}

// BenchmarkRetained reports, as MB-live, the heap that stays reachable after the reloads of
// BenchmarkReload: what a running Portico holds between reloads (the served configuration, the
// decode cache, the xDS server's generations), not what each reload allocates and drops.
func BenchmarkRetained(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			c := reloadingController(b, n)
			for b.Loop() {
				if got := c.Reload(b.Context()); got != ResultApplied {
					b.Fatalf("Reload = %s", got)
				}
			}
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.HeapAlloc)/1e6, "MB-live")
			runtime.KeepAlive(c)
		})
	}
}

// reloadingController is a started Controller over a workload of n routes whose every read
// adds one more VirtualService, as the propagation benchmark does, pushing to a real xDS server.
func reloadingController(b *testing.B, n int) *Controller {
	spec := workload.Spec{Routes: n, PerService: 1000, GatewayPort: 18080, Backends: []int{9001, 9002}, UpstreamCount: 4}
	base := config.SourceFile{Name: "routes.yaml", Data: string(spec.All())}
	added := 0
	c := New(Options{
		Read: func() ([]config.SourceFile, error) {
			added++
			extra := workload.OneService(fmt.Sprintf("add-%d", added), fmt.Sprintf("add-%d.bench", added), "/added", workload.UpstreamName(0))
			return []config.SourceFile{base, {Name: "add.yaml", Data: string(extra)}}, nil
		},
		XDS:    xds.New(slog.New(slog.DiscardHandler), "bench"),
		Logger: slog.New(slog.DiscardHandler),
	})
	// The verdict followers wait for an Envoy that never comes; they end with the context.
	if _, err := c.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	return c
}
