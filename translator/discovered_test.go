package translator_test

import (
	"testing"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/translator"
)

// TestDiscoveredEndpoints: discovered hosts become endpoints in the order given, a weight above
// the default is carried, and no hosts is an assignment without endpoints (Envoy's 503).
func TestDiscoveredEndpoints(t *testing.T) {
	cla := translator.DiscoveredEndpoints("web", []config.Host{
		{Address: "10.0.0.2", Port: 8080, Weight: 1},
		{Address: "::1", Port: 9090, Weight: 5},
	})
	if err := cla.ValidateAll(); err != nil {
		t.Fatalf("invalid load assignment: %v", err)
	}
	if cla.GetClusterName() != "web" || len(cla.GetEndpoints()) != 1 {
		t.Fatalf("want one locality of cluster web, got %v", cla)
	}
	eps := cla.GetEndpoints()[0].GetLbEndpoints()
	if len(eps) != 2 {
		t.Fatalf("want 2 endpoints, got %d", len(eps))
	}
	first := eps[0].GetEndpoint().GetAddress().GetSocketAddress()
	if first.GetAddress() != "10.0.0.2" || first.GetPortValue() != 8080 || eps[0].GetLoadBalancingWeight() != nil {
		t.Errorf("first endpoint: got %v weight %v", first, eps[0].GetLoadBalancingWeight())
	}
	second := eps[1].GetEndpoint().GetAddress().GetSocketAddress()
	if second.GetAddress() != "::1" || second.GetPortValue() != 9090 || eps[1].GetLoadBalancingWeight().GetValue() != 5 {
		t.Errorf("second endpoint: got %v weight %v", second, eps[1].GetLoadBalancingWeight())
	}

	empty := translator.DiscoveredEndpoints("web", nil)
	if err := empty.ValidateAll(); err != nil {
		t.Fatalf("invalid empty load assignment: %v", err)
	}
	if n := len(empty.GetEndpoints()[0].GetLbEndpoints()); n != 0 {
		t.Errorf("no hosts: want no endpoints, got %d", n)
	}
}
