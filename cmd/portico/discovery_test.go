package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/controller"
	"github.com/portico-gw/portico/discovery"
)

// TestDiscoveryStatus: what goes wrong with an Upstream's discovery becomes the Upstream's
// Warning with reasons (an Upstream that is fine stays Accepted), and `portico status` prints
// each source, its hosts, the degradation and the skipped keys.
func TestDiscoveryStatus(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	st := controller.Status{Resources: []controller.ResourceStatus{
		{Kind: config.KindUpstream, Name: "web", State: controller.StateAccepted},
		{Kind: config.KindUpstream, Name: "api", State: controller.StateAccepted},
		{Kind: config.KindUpstream, Name: "empty", State: controller.StateAccepted},
		{Kind: config.KindVirtualService, Name: "web", State: controller.StateAccepted},
	}}
	addDiscoveryStatus(&st, []discovery.Status{
		{Upstream: "api", Endpoints: []string{"http://127.0.0.1:2379"}, Prefix: "/api/", Known: true,
			Hosts: []config.Host{{Address: "10.0.0.1", Port: 80, Weight: 1}}},
		{Upstream: "empty", Endpoints: []string{"http://127.0.0.1:2379"}, Prefix: "/empty/", Known: true},
		{Upstream: "web", Endpoints: []string{"http://127.0.0.1:2379", "http://127.0.0.2:2379"}, Prefix: "/web/", Known: true,
			Hosts:    []config.Host{{Address: "10.0.0.2", Port: 80, Weight: 1}, {Address: "::1", Port: 81, Weight: 3}},
			Skipped:  []discovery.Skipped{{Key: "/web/x", Reason: "no port"}},
			Degraded: true, DegradedSince: since, LastError: "connection refused", Errors: 4},
	})
	want := map[string]struct {
		state   string
		reasons []string
	}{
		"web":   {controller.StateWarning, []string{"etcd key /web/x skipped: no port", "etcd unreachable since", "the last known 2 hosts keep serving: connection refused"}},
		"api":   {controller.StateAccepted, nil},
		"empty": {controller.StateWarning, []string{"no hosts under /empty/: requests get 503"}},
	}
	for _, r := range st.Resources {
		if r.Kind != config.KindUpstream {
			if r.State != controller.StateAccepted || len(r.Reasons) != 0 {
				t.Errorf("%s %s changed: %+v", r.Kind, r.Name, r)
			}
			continue
		}
		w := want[r.Name]
		if r.State != w.state {
			t.Errorf("%s: state %s, want %s", r.Name, r.State, w.state)
		}
		joined := strings.Join(r.Reasons, "\n")
		for _, reason := range w.reasons {
			if !strings.Contains(joined, reason) {
				t.Errorf("%s: reasons %q lack %q", r.Name, r.Reasons, reason)
			}
		}
		if len(w.reasons) == 0 && len(r.Reasons) != 0 {
			t.Errorf("%s: unexpected reasons %q", r.Name, r.Reasons)
		}
	}

	var out bytes.Buffer
	printDiscovery(&out, st.Discovery)
	for _, line := range []string{
		"discovery:\n",
		"  api: etcd http://127.0.0.1:2379 prefix /api/: 1 host (10.0.0.1:80)\n",
		"  empty: etcd http://127.0.0.1:2379 prefix /empty/: no hosts (503)\n",
		"  web: etcd http://127.0.0.1:2379,http://127.0.0.2:2379 prefix /web/: 2 hosts (10.0.0.2:80, [::1]:81 weight 3); DEGRADED since ",
		"    skipped /web/x: no port\n",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("status output lacks %q:\n%s", line, out.String())
		}
	}
}
