package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/controller"
)

const routesYAML = `apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: web}
spec: {bindAddress: 127.0.0.1, bindPort: 8080}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop.v2}
spec:
  domains: [shop.example.com, www.example.com]
  routes:
  - name: orders
    match: {prefix: /orders, methods: [GET, POST], headers: [{name: x-beta, exact: "1"}]}
    upstream: api
  - name: split
    match: {exact: /checkout, queryParameters: [{name: debug, present: true}]}
    destinations: [{upstream: api, weight: 90}, {upstream: canary, weight: 10}]
  - name: old
    match: {prefix: /old}
    redirect: {pathRedirect: /new, responseCode: 308}
  - match: {regex: "/static/.*"}
    directResponse: {status: 404}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: api}
spec: {static: {hosts: [{address: 127.0.0.1, port: 9001}]}}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: canary}
spec: {static: {hosts: [{address: 127.0.0.1, port: 9002}]}}
`

func TestRouteTable(t *testing.T) {
	cfg, err := config.LoadFiles([]config.SourceFile{{Name: "routes.yaml", Data: routesYAML}})
	if err != nil {
		t.Fatal(err)
	}
	st := controller.Status{Resources: []controller.ResourceStatus{{Kind: config.KindVirtualService, Name: "shop.v2", State: controller.StateWarning}}}
	srv := httptest.NewServer(New(Options{Status: func() controller.Status { return st }, Config: func() *config.Config { return cfg }}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/routes")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got []Route
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	domains := []string{"shop.example.com", "www.example.com"}
	want := []Route{
		{Gateway: "web", Domains: domains, VirtualService: "shop.v2", Name: "orders", Match: "prefix /orders, header x-beta=1, method GET|POST", Action: "forward", Upstream: "api", Status: "Warning"},
		{Gateway: "web", Domains: domains, VirtualService: "shop.v2", Name: "split", Match: "exact /checkout, query debug present", Action: "split", Upstream: "api 90%, canary 10%", Status: "Warning"},
		{Gateway: "web", Domains: domains, VirtualService: "shop.v2", Name: "old", Match: "prefix /old", Action: "redirect 308 to path /new", Status: "Warning"},
		{Gateway: "web", Domains: domains, VirtualService: "shop.v2", Name: "route-3", Match: "regex /static/.*", Action: "respond 404", Status: "Warning"},
	}
	if len(got) != len(want) {
		t.Fatalf("GET /routes = %d routes, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if !routeEqual(got[i], want[i]) {
			t.Errorf("route %d = %+v\nwant      %+v", i, got[i], want[i])
		}
	}
}

func routeEqual(a, b Route) bool {
	return a.Gateway == b.Gateway && slices.Equal(a.Domains, b.Domains) && a.VirtualService == b.VirtualService &&
		a.Name == b.Name && a.Match == b.Match && a.Action == b.Action && a.Upstream == b.Upstream && a.Status == b.Status
}

func TestRedactConfigDump(t *testing.T) {
	raw := `{"configs": [
	  {"@type": "type.googleapis.com/envoy.admin.v3.SecretsConfigDump",
	   "dynamic_active_secrets": [{"name": "tls", "secret": {"tls_certificate": {
	     "certificate_chain": {"inline_string": "CERT"},
	     "private_key": {"inline_string": "KEY"},
	     "password": {"inline_string": "PW"}}}}],
	   "static_secrets": [{"name": "hmac", "secret": {"generic_secret": {"secret": {"inline_bytes": "SECRETBYTES"}}}}]},
	  {"@type": "type.googleapis.com/envoy.admin.v3.RoutesConfigDump",
	   "dynamic_route_configs": [{"route_config": {"virtual_hosts": [{"routes": [
	     {"direct_response": {"status": 200, "body": {"inline_string": "hello body"}}}]}]}}]}
	]}`
	out, err := RedactConfigDump([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"KEY", "PW", "SECRETBYTES", "CERT", "private_key", "password"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("redacted dump still contains %q:\n%s", secret, out)
		}
	}
	for _, kept := range []string{"hello body", `"name": "tls"`, `"certificate_chain"`} {
		if !strings.Contains(string(out), kept) {
			t.Errorf("redacted dump lost %q:\n%s", kept, out)
		}
	}
	if _, err := RedactConfigDump([]byte("not json")); err == nil {
		t.Error("RedactConfigDump of a non-JSON body succeeded")
	}
}

func TestConfigDumpWithoutEnvoy(t *testing.T) {
	srv := httptest.NewServer(New(Options{Status: func() controller.Status { return controller.Status{} }, EnvoyAdmin: func() string { return "" }}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/config_dump")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("GET /config_dump without envoy = %d, want 503", resp.StatusCode)
	}
}
