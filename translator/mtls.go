package translator

import (
	"fmt"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-gw/portico/config"
)

// validateClients makes a Gateway's TLS context ask for and verify client certificates, when
// the Gateway has clientValidation. The CAs come over SDS as their own Secret, like the
// certificates, so replacing the CA file changes that Secret only; the SAN matchers stay in the
// listener, since they change only with the configuration.
func validateClients(dtc *tlsv3.DownstreamTlsContext, gw *config.Gateway) error {
	cv := gw.Spec.TLS.ClientValidation
	if cv == nil {
		return nil
	}
	var sans []*tlsv3.SubjectAltNameMatcher
	for _, m := range cv.SubjectAltNames {
		typ, ok := sanTypes[m.Type]
		if !ok {
			return fmt.Errorf("subject alternative name type %q cannot be translated", m.Type)
		}
		sm := &matcherv3.StringMatcher{}
		switch {
		case m.Exact != "":
			sm.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: m.Exact}
		case m.Prefix != "":
			sm.MatchPattern = &matcherv3.StringMatcher_Prefix{Prefix: m.Prefix}
		case m.Suffix != "":
			sm.MatchPattern = &matcherv3.StringMatcher_Suffix{Suffix: m.Suffix}
		default:
			return fmt.Errorf("subject alternative name matcher without exact, prefix or suffix")
		}
		sans = append(sans, &tlsv3.SubjectAltNameMatcher{SanType: typ, Matcher: sm})
	}
	dtc.RequireClientCertificate = wrapperspb.Bool(cv.Mode == config.ClientCertRequired)
	dtc.CommonTlsContext.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{
		CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sans},
			ValidationContextSdsSecretConfig: sdsSecret(clientCASecretName(gw)),
		},
	}
	return nil
}

var sanTypes = map[string]tlsv3.SubjectAltNameMatcher_SanType{
	config.SANTypeDNS:   tlsv3.SubjectAltNameMatcher_DNS,
	config.SANTypeURI:   tlsv3.SubjectAltNameMatcher_URI,
	config.SANTypeEmail: tlsv3.SubjectAltNameMatcher_EMAIL,
	config.SANTypeIP:    tlsv3.SubjectAltNameMatcher_IP_ADDRESS,
}

// clientCASecretName names the Secret of a Gateway's client CAs.
func clientCASecretName(gw *config.Gateway) string { return gw.Metadata.Name + "/client-ca" }

// forwardClientCert tells the upstream who the verified client is: on a Gateway that validates
// clients, x-forwarded-client-cert is replaced with the verified certificate's subject and
// names (SANITIZE_SET), and removed on connections without one. Every other Gateway keeps
// Envoy's default, SANITIZE, which removes the header: a client can never forge an identity.
func forwardClientCert(gw *config.Gateway, hcm *hcmv3.HttpConnectionManager) {
	if gw.Spec.Protocol != config.ProtocolHTTPS || gw.Spec.TLS == nil || gw.Spec.TLS.ClientValidation == nil {
		return
	}
	hcm.ForwardClientCertDetails = hcmv3.HttpConnectionManager_SANITIZE_SET
	hcm.SetCurrentClientCertDetails = &hcmv3.HttpConnectionManager_SetCurrentClientCertDetails{
		Subject: wrapperspb.Bool(true),
		Uri:     true,
		Dns:     true,
	}
}
