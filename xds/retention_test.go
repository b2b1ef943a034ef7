package xds

import (
	"fmt"
	"runtime"
	"slices"
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

// TestGenerationsKeepContentWhileEnvoyMayAskForIt checks which generations keep their
// resources: without an Envoy only the served one, since the next stream is sent that first;
// with one, also every generation it may still reject and the last good one, the rollback's.
func TestGenerationsKeepContentWhileEnvoyMayAskForIt(t *testing.T) {
	s := New(testLogger(t), testNode)
	kept := func() []uint64 {
		s.mu.Lock()
		defer s.mu.Unlock()
		var out []uint64
		for n, g := range s.gens {
			if g.content != nil {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		return out
	}
	for gen := uint64(1); gen <= 3; gen++ {
		mustPush(t, s, gateway(t, 10000, "body "+strconv.FormatUint(gen, 10)), gen)
	}
	if got := kept(); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("without an Envoy, generations keeping their content = %v, want [3]", got)
	}
	f := handshake(t, s, startServer(t, s), "3")
	if err := s.WaitACK(waitCtx(t), 3); err != nil {
		t.Fatal(err)
	}
	mustPush(t, s, gateway(t, 10000, "body 4"), 4)
	mustPush(t, s, gateway(t, 10000, "body 5"), 5)
	if got := kept(); !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("with generation 3 applied and 4, 5 pending, generations keeping their content = %v, want [3 4 5]", got)
	}
	// Envoy may have been sent 4 before 5 was published: a rejection of 4 still names its
	// resources. Envoy applies 4 and 5 here; then only 5 is needed.
	for latest := map[string]string{}; latest[cds] != "5" || latest[lds] != "5" || latest[rds] != "5"; {
		resp := f.next()
		latest[resp.GetTypeUrl()] = resp.GetVersionInfo()
		f.ack(resp)
	}
	if err := s.WaitACK(waitCtx(t), 5); err != nil {
		t.Fatal(err)
	}
	if got := kept(); !slices.Equal(got, []uint64{5}) {
		t.Fatalf("with generation 5 applied, generations keeping their content = %v, want [5]", got)
	}
}
