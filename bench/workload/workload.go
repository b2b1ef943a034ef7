// Package workload generates the configurations Portico's benchmarks run against: N routes in
// Portico's YAML, spread over VirtualServices with distinct domains, pointing at a few Upstreams.
// It owns only text generation, so the Go benchmarks and the process harness measure the same
// shape of configuration; it must not start processes or touch files.
package workload

import (
	"fmt"
	"strings"
)

// Spec describes a generated configuration.
type Spec struct {
	// Routes is the total number of routes.
	Routes int
	// PerService is the number of routes in each VirtualService; the last may hold fewer.
	PerService int
	// GatewayPort is the Gateway's port on 127.0.0.1.
	GatewayPort int
	// Backends are the ports of the backends on 127.0.0.1. Upstream i points at
	// Backends[i%len(Backends)]; there are UpstreamCount upstreams.
	Backends []int
	// UpstreamCount is the number of Upstreams the routes are spread over.
	UpstreamCount int
}

// Domain is the Host header that reaches VirtualService s.
func Domain(s int) string { return fmt.Sprintf("vs-%d.bench", s) }

// Path is the exact path of route r within its VirtualService.
func Path(r int) string { return fmt.Sprintf("/r/%d", r) }

// UpstreamName names Upstream i.
func UpstreamName(i int) string { return fmt.Sprintf("u%d", i) }

// Locate returns the VirtualService index and the path that route r of the whole
// configuration is served at.
func (s Spec) Locate(r int) (service int, path string) { return r / s.PerService, Path(r) }

// Services is the number of VirtualServices the routes need.
func (s Spec) Services() int { return (s.Routes + s.PerService - 1) / s.PerService }

// Base is the Gateway and the Upstreams: everything but the routes.
func (s Spec) Base() []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: portico.dev/v1\nkind: Gateway\nmetadata: {name: bench}\nspec: {bindAddress: 127.0.0.1, bindPort: %d}\n", s.GatewayPort)
	for i := 0; i < s.UpstreamCount; i++ {
		fmt.Fprintf(&b, "---\napiVersion: portico.dev/v1\nkind: Upstream\nmetadata: {name: %s}\nspec:\n  static:\n    hosts: [{address: 127.0.0.1, port: %d}]\n",
			UpstreamName(i), s.Backends[i%len(s.Backends)])
	}
	return []byte(b.String())
}

// RoutesYAML is the VirtualServices holding all the routes.
func (s Spec) RoutesYAML() []byte {
	var b strings.Builder
	b.Grow(s.Routes * 64)
	for svc := 0; svc < s.Services(); svc++ {
		fmt.Fprintf(&b, "---\napiVersion: portico.dev/v1\nkind: VirtualService\nmetadata: {name: vs-%d}\nspec:\n  domains: [%q]\n  routes:\n", svc, Domain(svc))
		for r := svc * s.PerService; r < min((svc+1)*s.PerService, s.Routes); r++ {
			fmt.Fprintf(&b, "  - match: {exact: %s}\n    upstream: %s\n", Path(r), UpstreamName(r%s.UpstreamCount))
		}
	}
	return []byte(b.String())
}

// All is Base and RoutesYAML in one multi-document file.
func (s Spec) All() []byte {
	return append(append(s.Base(), "---\n"...), s.RoutesYAML()...)
}

// OneService is a VirtualService named name answering domain with a single exact route to
// upstream: the unit the propagation benchmark adds and edits.
func OneService(name, domain, path, upstream string) []byte {
	return []byte(fmt.Sprintf("apiVersion: portico.dev/v1\nkind: VirtualService\nmetadata: {name: %s}\nspec:\n  domains: [%q]\n  routes:\n  - match: {exact: %s}\n    upstream: %s\n",
		name, domain, path, upstream))
}
