package xds

import (
	"fmt"
	"runtime"
	"strconv"
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// manyRoutes is a gateway whose route configuration has n routes to cluster "app", with one
// more route named extra: a configuration the size of a large Portico one, changed by a route.
func manyRoutes(t *testing.T, n int, extra string) Resources {
	vh := &route.VirtualHost{Name: "app", Domains: []string{"*"}}
	for i := range n + 1 {
		name := fmt.Sprintf("app/route-%d", i)
		if i == n {
			name = extra
		}
		vh.Routes = append(vh.Routes, &route.Route{
			Name:  name,
			Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/" + name}},
			Action: &route.Route_Route{Route: &route.RouteAction{
				ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "app"},
			}},
		})
	}
	return Resources{
		resource.ListenerType: {httpListener(t, "ingress", 10000, "routes")},
		resource.RouteType:    {&route.RouteConfiguration{Name: "routes", VirtualHosts: []*route.VirtualHost{vh}}},
		resource.ClusterType:  {staticCluster("app")},
	}
}

// liveHeap is the heap in use by reachable objects.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestAppliedGenerationsReleaseTheirResources pushes generations of a 10,000-route
// configuration that Envoy applies one after the other, as reloads do: the live heap must hold
// about one configuration, not one per remembered generation.
func TestAppliedGenerationsReleaseTheirResources(t *testing.T) {
	const routes, reloads = 10000, 20
	s := New(testLogger(t), testNode)
	before := liveHeap()
	mustPush(t, s, manyRoutes(t, routes, "added-1"), 1)
	f := handshake(t, s, startServer(t, s), "1")
	if err := s.WaitACK(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	one := liveHeap() - before
	for gen := uint64(2); gen <= reloads+1; gen++ {
		mustPush(t, s, manyRoutes(t, routes, "added-"+strconv.FormatUint(gen, 10)), gen)
		v := strconv.FormatUint(gen, 10)
		f.ackAll(map[string]string{lds: v, rds: v, cds: v})
		if err := s.WaitACK(waitCtx(t), gen); err != nil {
			t.Fatal(err)
		}
	}
	after := liveHeap() - before
	t.Logf("live heap: %.1f MB after the first generation, %.1f MB after %d more", float64(one)/1e6, float64(after)/1e6, reloads)
	// The served generation is also the last good one; a response of the previous one may
	// still be referenced by the library's stream state.
	if after > 3*one {
		t.Errorf("live heap after %d applied generations is %.1f MB, %.1fx the first generation's %.1f MB: older generations' resources are kept",
			reloads, float64(after)/1e6, float64(after)/float64(one), float64(one)/1e6)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for n, g := range s.gens {
		if kept := g.content != nil; kept != (n == s.served.number) {
			t.Errorf("generation %d keeps its content: %v, want only the served generation %d to", n, kept, s.served.number)
		}
	}
}
