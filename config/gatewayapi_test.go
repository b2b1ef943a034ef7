package config

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// gatewayAPIBase is a Gateway with two HTTPS listeners sharing a port and an HTTP one, the
// Secrets they name and a Service.
func gatewayAPIBase(t *testing.T) string {
	t.Helper()
	var secrets []string
	for _, name := range []string{"a", "b"} {
		cert, err := os.ReadFile("testdata/certs/" + name + ".example.com.crt")
		if err != nil {
			t.Fatal(err)
		}
		key, err := os.ReadFile("testdata/certs/" + name + ".example.com.key")
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, `---
apiVersion: v1
kind: Secret
metadata: {name: `+name+`}
type: kubernetes.io/tls
stringData:
  tls.crt: |
`+indent(string(cert), "    ")+`  tls.key: |
`+indent(string(key), "    "))
	}
	return `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg}
spec:
  gatewayClassName: eg
  listeners:
  - {name: http, protocol: HTTP, port: 8080, hostname: "*.example.com"}
  - {name: a, protocol: HTTPS, port: 8443, hostname: a.example.com, tls: {certificateRefs: [{name: a}]}}
  - {name: b, protocol: HTTPS, port: 8443, hostname: b.example.com, tls: {certificateRefs: [{name: b}]}}
` + strings.Join(secrets, "") + `---
apiVersion: v1
kind: Service
metadata: {name: s, annotations: {portico.dev/hosts: "10.0.0.1, 10.0.0.2:9000"}}
spec: {ports: [{port: 80, targetPort: 8000}]}
`
}

func indent(s, by string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = by + l
		}
	}
	return strings.Join(lines, "")
}

func TestGatewayAPIConversion(t *testing.T) {
	route := `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: eg, sectionName: http}]
  rules:
  - backendRefs: [{name: s, port: 80}]
  - matches: [{path: {value: /a}}, {path: {type: Exact, value: /a/b}}]
    backendRefs: [{name: s, port: 80, weight: 0}]
  - matches: [{path: {value: /a/long}, method: POST}, {path: {value: /a/long}, headers: [{name: h, value: v}]}]
    backendRefs: [{name: s, port: 80}]
  - matches: [{path: {type: RegularExpression, value: /r.*}}]
    backendRefs: [{name: s, port: 80}]
`
	cfg, err := Parse("gw.yaml", []byte(gatewayAPIBase(t)+route))
	if err != nil {
		t.Fatal(err)
	}

	// One Portico Gateway per port; the listeners of 8443 share one, each certificate
	// answering its listener's hostname.
	var gateways []string
	for _, g := range cfg.Gateways {
		gateways = append(gateways, g.Metadata.Name)
	}
	if !slices.Equal(gateways, []string{"eg-8080", "eg-8443"}) {
		t.Fatalf("gateways %v", gateways)
	}
	certs := cfg.Gateways[1].Spec.TLS.Certificates
	if len(certs) != 2 || certs[0].Secret != "a" || !slices.Equal(certs[0].ServerNames, []string{"a.example.com"}) ||
		certs[1].Secret != "b" || !slices.Equal(certs[1].ServerNames, []string{"b.example.com"}) || len(certs[1].KeyPEM) == 0 {
		t.Errorf("certificates %+v", certs)
	}

	// The route takes the listener's hostname and is ordered by Gateway API precedence.
	vs := cfg.VirtualServices[0]
	if !slices.Equal(vs.Spec.Domains, []string{"*.example.com"}) || !slices.Equal(vs.Spec.Gateways, []string{"eg-8080"}) {
		t.Errorf("domains %v, gateways %v", vs.Spec.Domains, vs.Spec.Gateways)
	}
	var order []string
	for _, r := range vs.Spec.Routes {
		m := r.Match
		order = append(order, m.Exact+m.Regex+m.Prefix+strings.Join(m.Methods, "")+strings.Repeat("+h", len(m.Headers)))
	}
	want := []string{"/a/b", "/r.*", `^/a/long(/.*)?$POST`, `^/a/long(/.*)?$+h`, `^/a(/.*)?$`, "/"}
	if !slices.Equal(order, want) {
		t.Errorf("route order\n got %q\nwant %q", order, want)
	}
	// A rule whose only backend has weight 0 answers 500, as the Gateway API says.
	for _, r := range vs.Spec.Routes {
		if r.Match.Exact == "/a/b" && (r.DirectResponse == nil || r.DirectResponse.Status != 500) {
			t.Errorf("weight-0 rule: %+v", r)
		}
	}

	// Hosts without a port take the target port.
	u := cfg.Upstreams[0]
	if u.Metadata.Name != "s-80" || u.Spec.Static == nil || len(u.Spec.Static.Hosts) != 2 ||
		u.Spec.Static.Hosts[0] != (Host{Address: "10.0.0.1", Port: 8000, Weight: 1}) ||
		u.Spec.Static.Hosts[1] != (Host{Address: "10.0.0.2", Port: 9000, Weight: 1}) {
		t.Errorf("upstream %+v", u.Spec.Static)
	}

	// Status: every document and what it became.
	got := map[string][]ResourceRef{}
	for _, r := range cfg.GatewayAPI {
		got[r.Kind+" "+r.Name] = r.Produces
	}
	if p := got[KindGatewayAPIGateway+" eg"]; len(p) != 2 {
		t.Errorf("Gateway produces %v", p)
	}
	if p := got[KindGatewayAPIHTTPRoute+" r"]; len(p) != 1 || p[0] != (ResourceRef{KindVirtualService, "r"}) {
		t.Errorf("HTTPRoute produces %v", p)
	}
	if p := got[KindCoreService+" s"]; len(p) != 1 || p[0] != (ResourceRef{KindUpstream, "s-80"}) {
		t.Errorf("Service produces %v", p)
	}
}

// TestGatewayAPIIsolation shows that an HTTPRoute that converts but does not validate is held
// back alone, like a VirtualService, with reasons naming the HTTPRoute's field.
func TestGatewayAPIIsolation(t *testing.T) {
	routes := `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: good}
spec:
  parentRefs: [{name: eg, sectionName: http}]
  hostnames: [good.example.com]
  rules: [{backendRefs: [{name: s, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad}
spec:
  parentRefs: [{name: eg, sectionName: http}]
  hostnames: [bad.example.com]
  rules:
  - matches: [{path: {type: RegularExpression, value: "/x["}}]
    backendRefs: [{name: s, port: 80}]
`
	iso, err := LoadIsolated(nil, []SourceFile{{Name: "gw.yaml", Data: gatewayAPIBase(t)}, {Name: "routes.yaml", Data: routes}})
	if err != nil {
		t.Fatal(err)
	}
	if len(iso.Config.VirtualServices) != 1 || iso.Config.VirtualServices[0].Metadata.Name != "good" {
		t.Errorf("served %d VirtualServices, want good alone", len(iso.Config.VirtualServices))
	}
	if len(iso.Rejected) != 1 || iso.Rejected[0].ResourceRef != (ResourceRef{KindVirtualService, "bad"}) {
		t.Fatalf("rejected %+v", iso.Rejected)
	}
	msg := iso.Rejected[0].Problems.Error()
	for _, want := range []string{`routes.yaml:17:`, `gateway.networking.k8s.io/v1/HTTPRoute "bad" spec.rules[0].matches[0].path.value: invalid RE2 regex`} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems %q do not contain %q", msg, want)
		}
	}
}

// TestGatewayAPIMergedRoutes shows HTTPRoutes with the same hostnames on the same listener
// becoming one VirtualService, their rules ordered by precedence across them, and a finding
// about one rule naming the HTTPRoute it came from.
func TestGatewayAPIMergedRoutes(t *testing.T) {
	route := func(name, path string) string {
		return `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ` + name + `}
spec:
  parentRefs: [{name: eg, sectionName: http}]
  rules:
  - matches: [{path: {type: RegularExpression, value: "` + path + `"}}]
    backendRefs: [{name: s, port: 80}]
`
	}
	cfg, err := Parse("gw.yaml", []byte(gatewayAPIBase(t)+route("b", "/b.*")+route("a", "/a.*")))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.VirtualServices) != 1 || cfg.VirtualServices[0].Metadata.Name != "a" {
		t.Fatalf("%d VirtualServices, want one named after the first HTTPRoute by name", len(cfg.VirtualServices))
	}
	var paths []string
	for _, r := range cfg.VirtualServices[0].Spec.Routes {
		paths = append(paths, r.Match.Regex)
	}
	// Equal precedence: the HTTPRoutes' name order decides.
	if !slices.Equal(paths, []string{"/a.*", "/b.*"}) {
		t.Errorf("routes %q", paths)
	}
	for _, r := range cfg.GatewayAPI {
		if r.Kind == KindGatewayAPIHTTPRoute && (len(r.Produces) != 1 || r.Produces[0].Name != "a") {
			t.Errorf("HTTPRoute %s produces %v", r.Name, r.Produces)
		}
	}

	_, err = Parse("gw.yaml", []byte(gatewayAPIBase(t)+route("b", "/b[")+route("a", "/a")))
	if err == nil || !strings.Contains(err.Error(), `HTTPRoute "b" spec.rules[0].matches[0].path.value: invalid RE2 regex`) {
		t.Errorf("a broken rule of the second HTTPRoute: %v", err)
	}
}

// TestGatewayAPIAttachment shows a parentRef without sectionName attaching to the listeners
// whose hostname the route's hostnames match, and a route that no listener accepts refused.
func TestGatewayAPIAttachment(t *testing.T) {
	route := func(hostname string) string {
		return `---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  parentRefs: [{name: eg}]
  hostnames: [` + hostname + `]
  rules: [{backendRefs: [{name: s, port: 80}]}]
`
	}
	cfg, err := Parse("gw.yaml", []byte(gatewayAPIBase(t)+route("b.example.com")))
	if err != nil {
		t.Fatal(err)
	}
	// *.example.com (HTTP) and b.example.com (HTTPS) accept it; a.example.com does not, which
	// only keeps it off that listener: the HTTPS port's Gateway is shared.
	if gws := cfg.VirtualServices[0].Spec.Gateways; !slices.Equal(gws, []string{"eg-8080", "eg-8443"}) {
		t.Errorf("gateways %v", gws)
	}
	_, err = Parse("gw.yaml", []byte(gatewayAPIBase(t)+route("other.test")))
	if err == nil || !strings.Contains(err.Error(), `spec.hostnames: no hostname matches listener "http"'s hostname "*.example.com"`) {
		t.Errorf("a route no listener accepts: %v", err)
	}
}
