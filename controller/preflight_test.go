package controller

import (
	"errors"
	"strings"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/portico-gw/portico/config"
)

// A reload that only adds a route to an Upstream Envoy already has needs no make-before-break
// step: it must cost Envoy exactly one generation, so propagation waits for one ACK, not three.
func TestRouteOnlyReloadPushesOneGeneration(t *testing.T) {
	base := gatewayYAML + upstreamYAML("a", 9001) + vsYAML("shop", "shop.example.com", "a")
	h := newHarness(t, base, false)
	if _, err := h.ctrl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first generation ready", func() bool { return h.ctrl.Status().Ready })
	before := h.xds.pushCount()
	h.set(base + `  - match: {prefix: /api}
    upstream: a
`)
	if got := h.ctrl.Reload(t.Context()); got != ResultApplied {
		t.Fatalf("Reload = %s, want %s", got, ResultApplied)
	}
	if n := h.xds.pushCount() - before; n != 1 {
		t.Fatalf("a route-only reload pushed %d generations, want 1", n)
	}
	h.xds.mu.Lock()
	last := h.xds.pushes[len(h.xds.pushes)-1]
	h.xds.mu.Unlock()
	routes := 0
	for _, r := range last[resource.RouteType] {
		for _, vh := range r.(*routev3.RouteConfiguration).GetVirtualHosts() {
			routes += len(vh.GetRoutes())
		}
	}
	if routes != 2 {
		t.Errorf("the pushed generation has %d routes, want 2", routes)
	}
}

// A failing Preflight rejects the whole change like invalid files: nothing is pushed, the
// resource it names is shown rejected with the reason, and the result is invalid.
func TestPreflightRejectsTheChange(t *testing.T) {
	h := newHarness(t, validConfig(), false)
	var gotPrev, gotNext *config.Config
	h.ctrl.o.Preflight = func(prev, next *config.Config) error {
		gotPrev, gotNext = prev, next
		if len(next.Gateways) < 2 {
			return nil
		}
		g := next.Gateways[1]
		return config.Diagnostics{{Pos: g.Source.At("spec.bindPort"), Severity: config.SeverityError,
			Kind: config.KindGateway, Name: g.Metadata.Name, Field: "spec.bindPort", Message: "port 18081 is already in use"}}
	}
	if _, err := h.ctrl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first generation ready", func() bool { return h.ctrl.Status().Ready })
	before := h.xds.pushCount()

	h.set(validConfig() + `---
apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: admin}
spec: {bindAddress: 127.0.0.1, bindPort: 18081}
`)
	if got := h.ctrl.Reload(t.Context()); got != ResultInvalid {
		t.Fatalf("Reload = %s, want %s", got, ResultInvalid)
	}
	if gotPrev == nil || len(gotPrev.Gateways) != 1 || len(gotNext.Gateways) != 2 {
		t.Fatalf("Preflight saw prev %v, next %v; want the served configuration and the change", gotPrev, gotNext)
	}
	if n := h.xds.pushCount() - before; n != 0 {
		t.Errorf("a change that failed Preflight pushed %d generations", n)
	}
	st := h.resource(config.KindGateway, "admin")
	if st.State != StateRejected || len(st.Reasons) == 0 || !strings.Contains(st.Reasons[0], "portico.yaml:") || !strings.Contains(st.Reasons[0], "port 18081 is already in use") {
		t.Errorf("gateway admin status = %+v, want rejected with the port and file", st)
	}
	if web := h.resource(config.KindGateway, "web"); web.State != StateAccepted {
		t.Errorf("gateway web status = %+v, want accepted: it keeps serving", web)
	}
	if !strings.Contains(h.logText(), "port 18081 is already in use") {
		t.Errorf("log does not name the problem:\n%s", h.logText())
	}

	// A Preflight error that is not a configuration error is reported as it is.
	h.ctrl.o.Preflight = func(_, _ *config.Config) error { return errors.New("cannot check ports") }
	if got := h.ctrl.Reload(t.Context()); got != ResultInvalid {
		t.Fatalf("Reload = %s, want %s", got, ResultInvalid)
	}
	if lr := h.ctrl.Status().LastReload; lr == nil || len(lr.Problems) != 1 || lr.Problems[0].Message != "cannot check ports" {
		t.Errorf("last reload = %+v, want the Preflight error", lr)
	}
}
