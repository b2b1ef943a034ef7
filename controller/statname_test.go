package controller

import (
	"slices"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/xds"
)

// TestNACKedDottedVirtualService: Envoy's messages name a dotted VirtualService's virtual host
// in its escaped statistics form, which still points at the VirtualService.
func TestNACKedDottedVirtualService(t *testing.T) {
	p, err := Build(nil, []config.SourceFile{{Name: "c.yaml", Data: `apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: web}
spec: {bindAddress: 127.0.0.1, bindPort: 8080}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop.v2}
spec:
  domains: [shop.example.com]
  routes: [{match: {prefix: /}, directResponse: {status: 200}}]
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: blog}
spec:
  domains: [blog.example.com]
  routes: [{match: {prefix: /}, directResponse: {status: 200}}]
`}})
	if err != nil {
		t.Fatal(err)
	}
	nack := &xds.NACKError{TypeURL: resource.RouteType, Names: []string{"web"}, Message: "duplicate domain in virtual host shop%2Ev2."}
	if got, want := refNames(nackedResources(nack, p.Config)), []string{"VirtualService/shop.v2"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
