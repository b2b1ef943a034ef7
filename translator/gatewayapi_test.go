package translator_test

import (
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"google.golang.org/protobuf/proto"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/translator"
)

// TestGatewayAPIMatchesPortico proves that Gateway API documents are only another way to write
// Portico's configuration: testdata/in/gateway-api.yaml (Gateway, HTTPRoute, Service, Secret)
// and its hand-written Portico equivalent translate to identical Envoy resources of every type.
func TestGatewayAPIMatchesPortico(t *testing.T) {
	translate := func(path string) map[string][]types.Resource {
		t.Helper()
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatalf("load %s: %v", path, err)
		}
		out, err := translator.Translate(cfg)
		if err != nil {
			t.Fatalf("translate %s: %v", path, err)
		}
		byType := map[string][]types.Resource{}
		for typ, rs := range out.Resources() {
			byType[string(typ)] = rs
		}
		return byType
	}
	k8s := translate("testdata/in/gateway-api.yaml")
	portico := translate("testdata/gatewayapi/portico.yaml")
	if len(k8s) == 0 {
		t.Fatal("no resources")
	}
	for typ, want := range portico {
		got := k8s[typ]
		if len(got) != len(want) {
			t.Errorf("%s: %d resources from the Gateway API, %d from Portico's kinds", typ, len(got), len(want))
			continue
		}
		for i := range want {
			if !proto.Equal(got[i], want[i]) {
				t.Errorf("%s[%d] differs:\ngateway api: %v\nportico:     %v", typ, i, got[i], want[i])
			}
		}
	}
	for typ := range k8s {
		if _, ok := portico[typ]; !ok {
			t.Errorf("%s: only the Gateway API input produced these", typ)
		}
	}
}
