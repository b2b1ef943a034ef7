package controller

import (
	"context"
	"slices"
	"sync"
	"testing"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/xds"
)

// fakeDiscoverer knows hosts by etcd prefix and records the configurations it is told to follow.
type fakeDiscoverer struct {
	mu       sync.Mutex
	hosts    map[string][]config.Host
	followed [][]string // per Discover call, the prefixes of the configurations given
}

var _ Discoverer = (*fakeDiscoverer)(nil)

func (f *fakeDiscoverer) Discover(_ context.Context, cfgs ...*config.Config) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var prefixes []string
	for _, cfg := range cfgs {
		if cfg == nil {
			continue
		}
		for _, u := range cfg.Upstreams {
			if u.Spec.Etcd != nil {
				prefixes = append(prefixes, u.Spec.Etcd.Prefix)
			}
		}
	}
	f.followed = append(f.followed, prefixes)
}

func (f *fakeDiscoverer) Hosts(u *config.Upstream) ([]config.Host, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.hosts[u.Spec.Etcd.Prefix]
	return slices.Clone(h), ok
}

func (f *fakeDiscoverer) set(prefix string, hosts ...config.Host) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts[prefix] = hosts
}

func etcdUpstreamYAML(prefix string) string {
	return `---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: web}
spec: {etcd: {endpoints: ["http://127.0.0.1:2379"], prefix: ` + prefix + `}}
` + vsYAML("web", "web.example.com", "web")
}

// endpointsOf returns the addresses of cluster's load assignment in res.
func endpointsOf(t *testing.T, res xds.Resources, cluster string) []string {
	t.Helper()
	for _, r := range res[resource.EndpointType] {
		cla := r.(*endpointv3.ClusterLoadAssignment)
		if cla.GetClusterName() != cluster {
			continue
		}
		var out []string
		for _, l := range cla.GetEndpoints() {
			for _, ep := range l.GetLbEndpoints() {
				out = append(out, ep.GetEndpoint().GetAddress().GetSocketAddress().GetAddress())
			}
		}
		return out
	}
	t.Fatalf("no load assignment for %s", cluster)
	return nil
}

// TestDiscoveredHosts: the first push already carries the hosts discovery knows; a change of
// them is pushed by PushDiscovered as a new generation in which only that load assignment
// differs; a reload keeps the discovered hosts instead of falling back to the translator's
// empty assignment; a changed prefix is followed before the push, next to the one served.
func TestDiscoveredHosts(t *testing.T) {
	h := newHarness(t, validConfig()+etcdUpstreamYAML("/services/web/"), false)
	disc := &fakeDiscoverer{hosts: map[string][]config.Host{}}
	disc.set("/services/web/", config.Host{Address: "10.0.0.1", Port: 80, Weight: 1})
	h.ctrl.o.Discovery = disc
	gen, err := h.ctrl.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	first := h.xds.pushes[0]
	if got := endpointsOf(t, first, "web"); !slices.Equal(got, []string{"10.0.0.1"}) {
		t.Fatalf("first push: web endpoints %v", got)
	}

	disc.set("/services/web/", config.Host{Address: "10.0.0.1", Port: 80, Weight: 1}, config.Host{Address: "10.0.0.2", Port: 80, Weight: 1})
	h.ctrl.PushDiscovered(t.Context())
	if n := h.xds.pushCount(); n != 2 {
		t.Fatalf("pushes after a host change: %d, want 2", n)
	}
	second := h.xds.pushes[1]
	if got := endpointsOf(t, second, "web"); !slices.Equal(got, []string{"10.0.0.1", "10.0.0.2"}) {
		t.Fatalf("pushed web endpoints %v", got)
	}
	for _, typeURL := range []string{resource.ListenerType, resource.RouteType, resource.ClusterType} {
		if !sameTyped(first[typeURL], second[typeURL]) {
			t.Errorf("%s changed by a host change", typeURL)
		}
	}
	if !proto.Equal(findCLA(first, "a"), findCLA(second, "a")) {
		t.Error("a static Upstream's endpoints changed by a host change")
	}
	st := h.ctrl.Status()
	if st.Generation.Current <= gen || st.Generation.Current != h.xds.Status().PushedGeneration {
		t.Errorf("generation after the host change: %+v (first %d)", st.Generation, gen)
	}

	h.ctrl.PushDiscovered(t.Context())
	if n := h.xds.pushCount(); n != 2 {
		t.Errorf("unchanged hosts pushed again: %d pushes", n)
	}
	if got := h.ctrl.Reload(t.Context()); got != ResultUnchanged {
		t.Errorf("reload of unchanged files = %s, want %s (the discovered hosts kept)", got, ResultUnchanged)
	}

	h.set(validConfig() + etcdUpstreamYAML("/services/web2/"))
	if got := h.ctrl.Reload(t.Context()); got != ResultApplied {
		t.Fatalf("reload with a new prefix = %s", got)
	}
	last := h.xds.pushes[h.xds.pushCount()-1]
	if got := endpointsOf(t, last, "web"); len(got) != 0 {
		t.Errorf("a prefix not read yet has endpoints %v", got)
	}
	disc.mu.Lock()
	followed := disc.followed[len(disc.followed)-1]
	disc.mu.Unlock()
	if !slices.Equal(followed, []string{"/services/web/", "/services/web2/"}) {
		t.Errorf("followed %v during the change, want the served prefix and the new one", followed)
	}
}

func findCLA(res xds.Resources, cluster string) *endpointv3.ClusterLoadAssignment {
	for _, r := range res[resource.EndpointType] {
		if cla := r.(*endpointv3.ClusterLoadAssignment); cla.GetClusterName() == cluster {
			return cla
		}
	}
	return nil
}

func sameTyped(a, b []types.Resource) bool {
	return slices.EqualFunc(a, b, func(x, y types.Resource) bool { return proto.Equal(x, y) })
}
