package translator

import (
	"fmt"
	"sort"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/ratelimit"
)

// Output is the complete set of Envoy resources for one configuration snapshot, each list
// sorted by resource name.
type Output struct {
	Listeners []*listenerv3.Listener
	Routes    []*routev3.RouteConfiguration
	Clusters  []*clusterv3.Cluster
	Endpoints []*endpointv3.ClusterLoadAssignment
	// Secrets hold certificates, private keys and other secret values (OIDC client secrets),
	// served over SDS. They are never to be printed: whatever shows resources to a person must
	// leave them out.
	Secrets []*tlsv3.Secret
	// RateLimits are the global limits the rate limit service enforces, sorted by name.
	RateLimits []ratelimit.Limit
}

// Translate builds Envoy resources from a configuration that config.Load has validated. It
// returns an error only when the configuration breaks an invariant that validation guarantees,
// which means a bug rather than a user mistake.
func Translate(cfg *config.Config) (*Output, error) {
	out := &Output{}
	upstreams := make(map[string]bool, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		c, cla, err := upstream(u)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", u.Metadata.Name, err)
		}
		out.Clusters = append(out.Clusters, c)
		out.Secrets = append(out.Secrets, upstreamSecrets(u)...)
		if cla != nil {
			out.Endpoints = append(out.Endpoints, cla)
		}
		upstreams[u.Metadata.Name] = true
	}
	b := &routeBuilder{cfg: cfg, upstreams: upstreams, identityHeaderOwned: cfg.UsesAuthentication()}
	for _, gw := range cfg.Gateways {
		if gw.Spec.Protocol == config.ProtocolTCP {
			build := tcpListener
			if gw.Spec.TCP != nil && len(gw.Spec.TCP.Routes) > 0 {
				build = passthroughListener
			}
			l, err := build(gw)
			if err != nil {
				return nil, fmt.Errorf("gateway %q: %w", gw.Metadata.Name, err)
			}
			out.Listeners = append(out.Listeners, l)
			continue
		}
		var hosts []*routev3.VirtualHost
		if vh := gatewayRedirectHost(gw); vh != nil {
			hosts = append(hosts, vh)
		}
		var vss []*config.VirtualService // those served here, not only redirected to https
		b.rbac, b.gateway = rbacNeeds{}, gw
		for _, vs := range attached(gw, cfg.VirtualServices) {
			if redirectsToHTTPS(gw, vs) {
				o := vs.Spec.Options
				hosts = append(hosts, httpsRedirectHost(StatName(vs.Metadata.Name), vs.Spec.Domains, o.HTTPSRedirectPort))
				continue
			}
			vh, err := b.virtualHost(vs)
			if err != nil {
				return nil, fmt.Errorf("virtual service %q: %w", vs.Metadata.Name, err)
			}
			hosts = append(hosts, vh)
			vss = append(vss, vs)
		}
		resp, err := responseFilters(compressionNeedsOf(cfg, gw, vss), usesCache(cfg, vss))
		if err != nil {
			return nil, fmt.Errorf("gateway %q: %w", gw.Metadata.Name, err)
		}
		l, err := listener(gw, vss, trafficNeedsOf(cfg, vss), rateLimitNeedsOf(cfg, vss), authzNeedsOf(cfg, vss), b.rbac, resp)
		if err != nil {
			return nil, fmt.Errorf("gateway %q: %w", gw.Metadata.Name, err)
		}
		out.Listeners = append(out.Listeners, l)
		secrets, err := gatewaySecrets(gw)
		if err != nil {
			return nil, fmt.Errorf("gateway %q: tls: %w", gw.Metadata.Name, err)
		}
		out.Secrets = append(out.Secrets, secrets...)
		if gw.Spec.Tracing != nil {
			c, err := tracingCluster(gw)
			if err != nil {
				return nil, fmt.Errorf("gateway %q: tracing: %w", gw.Metadata.Name, err)
			}
			out.Clusters = append(out.Clusters, c)
		}
		out.Routes = append(out.Routes, &routev3.RouteConfiguration{
			Name:         routeConfigName(gw),
			VirtualHosts: hosts,
		})
	}
	oidc, err := oidcSecrets(cfg)
	if err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	out.Secrets = append(out.Secrets, oidc...)
	out.RateLimits = sortedLimits(b.limits)
	sortBy(out.Listeners, (*listenerv3.Listener).GetName)
	sortBy(out.Routes, (*routev3.RouteConfiguration).GetName)
	sortBy(out.Clusters, (*clusterv3.Cluster).GetName)
	sortBy(out.Endpoints, (*endpointv3.ClusterLoadAssignment).GetClusterName)
	sortBy(out.Secrets, (*tlsv3.Secret).GetName)
	return out, nil
}

// Resources returns the output keyed by xDS type URL, the shape the xDS server serves.
func (o *Output) Resources() map[resource.Type][]types.Resource {
	return map[resource.Type][]types.Resource{
		resource.ListenerType: asResources(o.Listeners),
		resource.RouteType:    asResources(o.Routes),
		resource.ClusterType:  asResources(o.Clusters),
		resource.EndpointType: asResources(o.Endpoints),
		resource.SecretType:   asResources(o.Secrets),
	}
}

// attached lists the VirtualServices gw serves (see config.Gateway.Serves), by name.
func attached(gw *config.Gateway, all []*config.VirtualService) []*config.VirtualService {
	var vss []*config.VirtualService
	for _, vs := range all {
		if gw.Serves(vs) {
			vss = append(vss, vs)
		}
	}
	sort.Slice(vss, func(i, j int) bool { return vss[i].Metadata.Name < vss[j].Metadata.Name })
	return vss
}

// adsSource makes a resource arrive over the same aggregated stream as everything else, so
// Envoy sees one consistent ordering of updates.
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ResourceApiVersion:    corev3.ApiVersion_V3,
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
	}
}

func sortBy[T any](list []T, key func(T) string) {
	sort.Slice(list, func(i, j int) bool { return key(list[i]) < key(list[j]) })
}

func asResources[T types.Resource](list []T) []types.Resource {
	res := make([]types.Resource, len(list))
	for i, r := range list {
		res[i] = r
	}
	return res
}
