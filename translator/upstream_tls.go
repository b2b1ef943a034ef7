package translator

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/portico-gw/portico/config"
)

// originateTLS makes the cluster speak TLS to its hosts. Files are referenced by name, not
// inlined, so keys never travel through xDS and Envoy reads them itself.
func originateTLS(t *config.UpstreamTLS, c *clusterv3.Cluster) error {
	if t == nil {
		return nil
	}
	common := &tlsv3.CommonTlsContext{AlpnProtocols: t.ALPN}
	if t.CAFile != "" {
		// Without a validation context Envoy accepts any certificate, which is what
		// insecureSkipVerify asks for; with one it checks the chain and the SNI name.
		vc := &tlsv3.CertificateValidationContext{TrustedCa: fileSource(t.CAFile)}
		if t.SNI != "" {
			vc.MatchTypedSubjectAltNames = []*tlsv3.SubjectAltNameMatcher{{
				SanType: tlsv3.SubjectAltNameMatcher_DNS,
				Matcher: stringMatcher(t.SNI, ""),
			}}
		}
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: vc}
	}
	if t.CertFile != "" {
		common.TlsCertificates = []*tlsv3.TlsCertificate{{
			CertificateChain: fileSource(t.CertFile),
			PrivateKey:       fileSource(t.KeyFile),
		}}
	}
	ctx, err := anypb.New(&tlsv3.UpstreamTlsContext{Sni: t.SNI, CommonTlsContext: common})
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	c.TransportSocket = &corev3.TransportSocket{
		Name:       wellknown.TransportSocketTls,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: ctx},
	}
	return nil
}

// fileSource makes Envoy read a file itself, when it builds the cluster.
func fileSource(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}
