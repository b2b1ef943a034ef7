package admin

import (
	"slices"
	"testing"

	"github.com/portico-gw/portico/config"
)

func TestParseUpstreamHealth(t *testing.T) {
	cfg, err := config.LoadFiles([]config.SourceFile{{Name: "routes.yaml", Data: routesYAML}})
	if err != nil {
		t.Fatal(err)
	}
	// The shape of Envoy's /clusters?format=json, trimmed to what is read.
	body := `{"cluster_statuses": [
	  {"name": "portico_xds", "host_statuses": [{"address": {"pipe": {"path": "/run/xds.sock"}}, "health_status": {"eds_health_status": "HEALTHY"}}]},
	  {"name": "canary", "host_statuses": [
	    {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9002}}, "health_status": {"failed_outlier_check": true, "eds_health_status": "HEALTHY"}}]},
	  {"name": "api", "host_statuses": [
	    {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9001}}, "health_status": {"eds_health_status": "HEALTHY"}},
	    {"address": {"socket_address": {"address": "10.0.0.2", "port_value": 9001}}, "health_status": {"failed_active_health_check": true}},
	    {"address": {"socket_address": {"address": "10.0.0.3", "port_value": 9001}}, "health_status": {"eds_health_status": "DRAINING"}}]}
	]}`
	got, err := parseUpstreamHealth([]byte(body), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := []Upstream{
		{Name: "api", Hosts: []UpstreamHost{{"127.0.0.1:9001", "healthy"}, {"10.0.0.2:9001", "failed health check"}, {"10.0.0.3:9001", "eds DRAINING"}}},
		{Name: "canary", Hosts: []UpstreamHost{{"127.0.0.1:9002", "ejected (outlier detection)"}}},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Name != want[i].Name || !slices.Equal(got[i].Hosts, want[i].Hosts) {
			t.Errorf("upstream %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if ls := Listeners(cfg); len(ls) != 1 || ls[0] != (Listener{Gateway: "web", Address: "127.0.0.1:8080"}) {
		t.Errorf("Listeners = %+v, want web on 127.0.0.1:8080", ls)
	}
}
