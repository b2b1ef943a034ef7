package translator

import (
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/portico-gw/portico/config"
)

// TestLambdaClusterVerifiesTheEndpoint: without options.tls, the cluster of an aws Upstream
// trusts the system CA bundle config found and requires the endpoint's name in the
// certificate; Envoy refuses a name check without a trust anchor, and a chain check without a
// name check would accept any public certificate.
func TestLambdaClusterVerifiesTheEndpoint(t *testing.T) {
	u := &config.Upstream{Metadata: config.Metadata{Name: "aws"}, Spec: config.UpstreamSpec{AWS: &config.AWSUpstream{
		Region: "eu-central-1", SystemCAFile: "/etc/test/ca-bundle.pem",
	}}}
	c, _, err := upstream(u)
	if err != nil {
		t.Fatal(err)
	}
	ctx := &tlsv3.UpstreamTlsContext{}
	if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(ctx); err != nil {
		t.Fatalf("no TLS transport socket: %v", err)
	}
	vc := ctx.GetCommonTlsContext().GetValidationContext()
	const host = "lambda.eu-central-1.amazonaws.com"
	if ctx.GetSni() != host || vc.GetTrustedCa().GetFilename() != "/etc/test/ca-bundle.pem" ||
		len(vc.GetMatchTypedSubjectAltNames()) != 1 || vc.GetMatchTypedSubjectAltNames()[0].GetMatcher().GetExact() != host {
		t.Errorf("tls context = %v; want SNI and SAN %s, trusted CA /etc/test/ca-bundle.pem", ctx, host)
	}
	if got := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress(); got.GetAddress() != host || got.GetPortValue() != 443 {
		t.Errorf("endpoint = %v, want %s:443", got, host)
	}
	if !c.GetMetadata().GetFilterMetadata()[lambdaClusterMetadata].GetFields()["egress_gateway"].GetBoolValue() {
		t.Errorf("cluster lacks the metadata the aws_lambda filter needs: %v", c.GetMetadata())
	}
}
