package translator

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/portico-gw/portico/config"
)

// terminateTLS gives an HTTPS Gateway's listener one filter chain per certificate, all running
// the same HTTP connection manager. The TLS inspector reads the client's SNI name before a chain
// is chosen; a certificate without serverNames gets the chain without a match, which Envoy uses
// for every other name. Certificates are referenced by file name, so Envoy reads the key and
// the key never passes through xDS.
func terminateTLS(l *listenerv3.Listener, t *config.GatewayTLS, hcm *listenerv3.Filter) error {
	if t == nil || len(t.Certificates) == 0 {
		return fmt.Errorf("an HTTPS Gateway needs at least one certificate")
	}
	minVersion, ok := tlsVersions[t.MinVersion]
	if !ok {
		return fmt.Errorf("TLS version %q cannot be translated", t.MinVersion)
	}
	inspector, err := anypb.New(&tlsinspectorv3.TlsInspector{})
	if err != nil {
		return err
	}
	l.ListenerFilters = []*listenerv3.ListenerFilter{{
		Name:       wellknown.TlsInspector,
		ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: inspector},
	}}
	for _, c := range t.Certificates {
		ctx, err := anypb.New(&tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificates: []*tlsv3.TlsCertificate{{
				CertificateChain: fileSource(c.CertFile),
				PrivateKey:       fileSource(c.KeyFile),
			}},
			TlsParams:     &tlsv3.TlsParameters{TlsMinimumProtocolVersion: minVersion},
			AlpnProtocols: t.ALPN,
		}})
		if err != nil {
			return err
		}
		chain := &listenerv3.FilterChain{
			Filters: []*listenerv3.Filter{hcm},
			TransportSocket: &corev3.TransportSocket{
				Name:       wellknown.TransportSocketTls,
				ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: ctx},
			},
		}
		if len(c.ServerNames) > 0 {
			chain.FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: c.ServerNames}
		}
		l.FilterChains = append(l.FilterChains, chain)
	}
	return nil
}

var tlsVersions = map[string]tlsv3.TlsParameters_TlsProtocol{
	config.TLSVersion12: tlsv3.TlsParameters_TLSv1_2,
	config.TLSVersion13: tlsv3.TlsParameters_TLSv1_3,
}

func fileSource(path string) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: path}}
}
