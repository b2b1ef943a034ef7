package workload_test

import (
	"testing"

	"github.com/portico-gw/portico/bench/workload"
	"github.com/portico-gw/portico/config"
)

// The generated configuration must be valid Portico config with the requested shape, or every
// benchmark built on it measures an error path.
func TestGeneratedConfigIsValid(t *testing.T) {
	for _, tc := range []struct {
		name             string
		routes, per, ups int
		wantServices     int
	}{
		{"one service", 10, 1000, 2, 1},
		{"partial last service", 2500, 1000, 4, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := workload.Spec{Routes: tc.routes, PerService: tc.per, GatewayPort: 18080, Backends: []int{19001, 19002}, UpstreamCount: tc.ups}
			doc := append(s.All(), "---\n"...)
			doc = append(doc, workload.OneService("extra", "extra.bench", "/new", workload.UpstreamName(0))...)
			cfg, err := config.Parse("bench.yaml", doc)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Warnings) != 0 {
				t.Errorf("warnings: %v", cfg.Warnings)
			}
			if got := len(cfg.VirtualServices); got != tc.wantServices+1 {
				t.Errorf("virtual services = %d, want %d", got, tc.wantServices+1)
			}
			routes := 0
			for _, vs := range cfg.VirtualServices {
				routes += len(vs.Spec.Routes)
			}
			if routes != tc.routes+1 {
				t.Errorf("routes = %d, want %d", routes, tc.routes+1)
			}
			if len(cfg.Upstreams) != tc.ups {
				t.Errorf("upstreams = %d, want %d", len(cfg.Upstreams), tc.ups)
			}
			svc, path := s.Locate(tc.routes - 1)
			last := cfg.VirtualServices[svc]
			if last.Spec.Domains[0] != workload.Domain(svc) || last.Spec.Routes[len(last.Spec.Routes)-1].Match.Exact != path {
				t.Errorf("Locate(%d) = %d %s, not the last route of %s", tc.routes-1, svc, path, last.Metadata.Name)
			}
		})
	}
}
