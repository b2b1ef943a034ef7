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

// originateTLS makes the cluster of Upstream u speak TLS to its hosts. The client certificate
// and the CAs reach Envoy over SDS (see upstreamSecrets) under names that depend only on the
// Upstream, so replacing their files changes a Secret and leaves the cluster, and its
// connection pools, alone. The SNI check stays in the cluster: it changes only with the
// configuration.
func originateTLS(u *config.Upstream, c *clusterv3.Cluster) error {
	t := u.Spec.Options.TLS
	common := &tlsv3.CommonTlsContext{AlpnProtocols: t.ALPN}
	if len(t.CAPEM) > 0 {
		// Without a validation context Envoy accepts any certificate, which is what
		// insecureSkipVerify asks for; with one it checks the chain and the SNI name.
		vc := &tlsv3.CertificateValidationContext{}
		if t.SNI != "" {
			vc.MatchTypedSubjectAltNames = []*tlsv3.SubjectAltNameMatcher{{
				SanType: tlsv3.SubjectAltNameMatcher_DNS,
				Matcher: stringMatcher(t.SNI, ""),
			}}
		}
		common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext:         vc,
				ValidationContextSdsSecretConfig: sdsSecret(upstreamCASecretName(u)),
			},
		}
	}
	if len(t.KeyPEM) > 0 {
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{sdsSecret(upstreamCertSecretName(u))}
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

// upstreamSecrets are the Secrets the cluster of Upstream u names: its CAs and its client
// certificate, as config read and checked them at load time.
func upstreamSecrets(u *config.Upstream) []*tlsv3.Secret {
	if u.Spec.Options == nil || u.Spec.Options.TLS == nil {
		return nil
	}
	t := u.Spec.Options.TLS
	var out []*tlsv3.Secret
	if len(t.CAPEM) > 0 {
		out = append(out, &tlsv3.Secret{
			Name: upstreamCASecretName(u),
			Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: inlineBytes(t.CAPEM),
			}},
		})
	}
	if len(t.KeyPEM) > 0 {
		out = append(out, &tlsv3.Secret{
			Name: upstreamCertSecretName(u),
			Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: inlineBytes(t.CertPEM),
				PrivateKey:       inlineBytes(t.KeyPEM),
			}},
		})
	}
	return out
}

// upstreamCASecretName and upstreamCertSecretName name an Upstream's Secrets. Gateways'
// Secrets have one '/' in their names and these two, so the two kinds never share a name.
func upstreamCASecretName(u *config.Upstream) string {
	return "upstream/" + u.Metadata.Name + "/ca"
}

func upstreamCertSecretName(u *config.Upstream) string {
	return "upstream/" + u.Metadata.Name + "/client-cert"
}
