package controller

import (
	"strings"
	"testing"

	"github.com/portico-gw/portico/config"
)

// TestGatewayAPIStatus shows each Gateway API document in status with the state of what it
// became: accepted, or rejected with the reasons of the Portico resource held back.
func TestGatewayAPIStatus(t *testing.T) {
	files := []config.SourceFile{{Name: "gw.yaml", Data: `apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg}
spec:
  gatewayClassName: eg
  listeners: [{name: http, protocol: HTTP, port: 8080}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: good}
spec:
  parentRefs: [{name: eg}]
  hostnames: [good.example.com]
  rules: [{backendRefs: [{name: s, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad}
spec:
  parentRefs: [{name: eg}]
  hostnames: [bad.example.com]
  rules: [{matches: [{path: {type: RegularExpression, value: "/x["}}], backendRefs: [{name: s, port: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: s, annotations: {portico.dev/hosts: 127.0.0.1:9000}}
spec: {ports: [{port: 80}]}
`}}
	iso, err := config.LoadIsolated(nil, files)
	if err != nil {
		t.Fatal(err)
	}
	states := map[config.ResourceRef]ResourceStatus{}
	for _, st := range resourceStatuses(iso.Config, iso.Rejected, nil, nil, "") {
		states[config.ResourceRef{Kind: st.Kind, Name: st.Name}] = st
	}
	for _, tc := range []struct {
		kind, name, state, reason string
	}{
		{config.KindGatewayAPIGateway, "eg", StateAccepted, ""},
		{config.KindGatewayAPIHTTPRoute, "good", StateAccepted, ""},
		{config.KindGatewayAPIHTTPRoute, "bad", StateRejected, `HTTPRoute "bad" spec.rules[0].matches[0].path.value: invalid RE2 regex`},
		{config.KindCoreService, "s", StateAccepted, ""},
	} {
		st, ok := states[config.ResourceRef{Kind: tc.kind, Name: tc.name}]
		if !ok {
			t.Errorf("no status for %s %s", tc.kind, tc.name)
			continue
		}
		if st.State != tc.state || !strings.Contains(strings.Join(st.Reasons, "\n"), tc.reason) || st.File == "" {
			t.Errorf("%s %s: %s %q (file %q), want %s with %q", tc.kind, tc.name, st.State, st.Reasons, st.File, tc.state, tc.reason)
		}
	}
}
