package translator

import (
	"fmt"
	"strconv"

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
// for every other name.
//
// Certificates reach Envoy over SDS (see gatewaySecrets): the listener names each one by a
// name that depends only on the Gateway and the certificate's place in its list, so a rotated
// certificate changes a Secret and leaves the listener, and its open connections, alone.
func terminateTLS(l *listenerv3.Listener, gw *config.Gateway, hcm *listenerv3.Filter) error {
	t := gw.Spec.TLS
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
	for i, c := range t.Certificates {
		dtc := &tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{sdsSecret(certificateSecretName(gw, i))},
			TlsParams:                      &tlsv3.TlsParameters{TlsMinimumProtocolVersion: minVersion, CipherSuites: t.CipherSuites},
			AlpnProtocols:                  t.ALPN,
		}}
		if err := validateClients(dtc, gw); err != nil {
			return err
		}
		ctx, err := anypb.New(dtc)
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

// gatewaySecrets are the Secrets an HTTPS Gateway's listener names: one per certificate, with
// the certificate chain and key inline, as config read and checked them at load time.
func gatewaySecrets(gw *config.Gateway) ([]*tlsv3.Secret, error) {
	t := gw.Spec.TLS
	if gw.Spec.Protocol != config.ProtocolHTTPS || t == nil {
		return nil, nil
	}
	var out []*tlsv3.Secret
	for i, c := range t.Certificates {
		if len(c.CertPEM) == 0 || len(c.KeyPEM) == 0 {
			return nil, fmt.Errorf("certificate %d was not loaded", i)
		}
		out = append(out, &tlsv3.Secret{
			Name: certificateSecretName(gw, i),
			Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: inlineBytes(c.CertPEM),
				PrivateKey:       inlineBytes(c.KeyPEM),
			}},
		})
	}
	if cv := t.ClientValidation; cv != nil {
		if len(cv.CAPEM) == 0 {
			return nil, fmt.Errorf("client CAs were not loaded")
		}
		out = append(out, &tlsv3.Secret{
			Name: clientCASecretName(gw),
			Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: inlineBytes(cv.CAPEM),
			}},
		})
	}
	return out, nil
}

// certificateSecretName names the Secret of a Gateway's i-th certificate. Names of Gateways
// cannot hold '/', so no two Gateways' Secrets share a name.
func certificateSecretName(gw *config.Gateway, i int) string {
	return gw.Metadata.Name + "/cert-" + strconv.Itoa(i)
}

// sdsSecret refers to a Secret served over the same ADS stream as the listener.
func sdsSecret(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: adsSource()}
}

var tlsVersions = map[string]tlsv3.TlsParameters_TlsProtocol{
	config.TLSVersion12: tlsv3.TlsParameters_TLSv1_2,
	config.TLSVersion13: tlsv3.TlsParameters_TLSv1_3,
}

func inlineBytes(b []byte) *corev3.DataSource {
	return &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: b}}
}
