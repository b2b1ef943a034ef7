package xds

import (
	"fmt"
	"slices"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// checkSecretRefs reports a listener that names a Secret (over SDS from this server) that c
// does not hold. go-control-plane's consistency check covers routes and endpoints only; Envoy
// would keep such a listener warming forever, waiting for a Secret that never comes.
func checkSecretRefs(c content) error {
	for _, name := range c.names(resource.ListenerType) {
		l, ok := c[resource.ListenerType][name].(*listenerv3.Listener)
		if !ok {
			continue
		}
		refs, err := listenerSecretRefs(l)
		if err != nil {
			return fmt.Errorf("listener %q: %w", name, err)
		}
		for _, ref := range refs {
			if _, ok := c[resource.SecretType][ref]; !ok {
				return fmt.Errorf("listener %q names secret %q, which is not served (served: %v)", name, ref, c.names(resource.SecretType))
			}
		}
	}
	return nil
}

// listenerSecretRefs lists the names of the SDS Secrets the TLS contexts of l's filter chains
// refer to.
func listenerSecretRefs(l *listenerv3.Listener) ([]string, error) {
	var out []string
	for _, fc := range append(slices.Clone(l.GetFilterChains()), l.GetDefaultFilterChain()) {
		tc := fc.GetTransportSocket().GetTypedConfig()
		if tc == nil || !tc.MessageIs(&tlsv3.DownstreamTlsContext{}) {
			continue
		}
		ctx := &tlsv3.DownstreamTlsContext{}
		if err := tc.UnmarshalTo(ctx); err != nil {
			return nil, fmt.Errorf("tls context: %w", err)
		}
		common := ctx.GetCommonTlsContext()
		sds := slices.Clone(common.GetTlsCertificateSdsSecretConfigs())
		sds = append(sds, common.GetValidationContextSdsSecretConfig(),
			common.GetCombinedValidationContext().GetValidationContextSdsSecretConfig())
		for _, s := range sds {
			if s.GetName() != "" && s.GetSdsConfig() != nil {
				out = append(out, s.GetName())
			}
		}
	}
	return out, nil
}
