package xds

import (
	"fmt"
	"maps"
	"slices"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	oauth2v3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/oauth2/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// checkSecretRefs reports a listener, cluster or route configuration that names a Secret (over
// SDS from this server) that c does not hold. go-control-plane's consistency check covers
// routes and endpoints only; Envoy would keep such a listener or cluster warming forever,
// waiting for a Secret that never comes, and a login (an oauth2 filter's per-route
// configuration) would fail every callback.
func checkSecretRefs(c content) error {
	for _, kind := range []struct {
		typeURL, what string
	}{{resource.ListenerType, "listener"}, {resource.ClusterType, "cluster"}, {resource.RouteType, "route configuration"}} {
		for _, name := range c.names(kind.typeURL) {
			refs, err := secretRefs(c[kind.typeURL][name])
			if err != nil {
				return fmt.Errorf("%s %q: %w", kind.what, name, err)
			}
			for _, ref := range refs {
				if _, ok := c[resource.SecretType][ref]; !ok {
					return fmt.Errorf("%s %q names secret %q, which is not served (served: %v)", kind.what, name, ref, c.names(resource.SecretType))
				}
			}
		}
	}
	return nil
}

// secretRefs lists the names of the SDS Secrets that the TLS contexts of a listener's filter
// chains, or of a cluster's transport socket, or the oauth2 configurations of a route
// configuration refer to.
func secretRefs(r types.Resource) ([]string, error) {
	var sockets []*corev3.TransportSocket
	switch r := r.(type) {
	case *routev3.RouteConfiguration:
		return oauth2SecretRefs(r)
	case *listenerv3.Listener:
		for _, fc := range append(slices.Clone(r.GetFilterChains()), r.GetDefaultFilterChain()) {
			sockets = append(sockets, fc.GetTransportSocket())
		}
	case *clusterv3.Cluster:
		sockets = append(sockets, r.GetTransportSocket())
	}
	var out []string
	for _, ts := range sockets {
		var common *tlsv3.CommonTlsContext
		switch tc := ts.GetTypedConfig(); {
		case tc == nil:
			continue
		case tc.MessageIs(&tlsv3.DownstreamTlsContext{}):
			ctx := &tlsv3.DownstreamTlsContext{}
			if err := tc.UnmarshalTo(ctx); err != nil {
				return nil, fmt.Errorf("tls context: %w", err)
			}
			common = ctx.GetCommonTlsContext()
		case tc.MessageIs(&tlsv3.UpstreamTlsContext{}):
			ctx := &tlsv3.UpstreamTlsContext{}
			if err := tc.UnmarshalTo(ctx); err != nil {
				return nil, fmt.Errorf("tls context: %w", err)
			}
			common = ctx.GetCommonTlsContext()
		default:
			continue
		}
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

// oauth2SecretRefs lists the client and cookie Secrets that the oauth2 per-route
// configurations of a route configuration's virtual hosts and routes name.
func oauth2SecretRefs(rc *routev3.RouteConfiguration) ([]string, error) {
	var perFilter []map[string]*anypb.Any
	for _, vh := range rc.GetVirtualHosts() {
		perFilter = append(perFilter, vh.GetTypedPerFilterConfig())
		for _, r := range vh.GetRoutes() {
			perFilter = append(perFilter, r.GetTypedPerFilterConfig())
		}
	}
	var out []string
	for _, m := range perFilter {
		for _, name := range slices.Sorted(maps.Keys(m)) {
			a := m[name]
			if a.MessageIs(&routev3.FilterConfig{}) {
				fc := &routev3.FilterConfig{}
				if err := a.UnmarshalTo(fc); err != nil {
					return nil, fmt.Errorf("per-filter configuration %q: %w", name, err)
				}
				a = fc.GetConfig()
			}
			if a == nil || !a.MessageIs(&oauth2v3.OAuth2PerRoute{}) {
				continue
			}
			pr := &oauth2v3.OAuth2PerRoute{}
			if err := a.UnmarshalTo(pr); err != nil {
				return nil, fmt.Errorf("per-filter configuration %q: %w", name, err)
			}
			creds := pr.GetConfig().GetCredentials()
			for _, sds := range []*tlsv3.SdsSecretConfig{creds.GetTokenSecret(), creds.GetHmacSecret()} {
				if sds.GetName() != "" && sds.GetSdsConfig() != nil {
					out = append(out, sds.GetName())
				}
			}
		}
	}
	return out, nil
}
