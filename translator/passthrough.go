package translator

import (
	"fmt"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspectorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portico-gw/portico/config"
)

// passthroughListener builds the listener of a TCP Gateway with routes: the TLS inspector reads
// the SNI name from the client's hello without terminating TLS, and one filter chain per route
// matches its server names and proxies the still-encrypted bytes to the route's Upstream. The
// route without serverNames gets the chain without a match, which Envoy picks for every other
// name and for connections without SNI.
func passthroughListener(gw *config.Gateway) (*listenerv3.Listener, error) {
	t := gw.Spec.TCP
	if t == nil || len(t.Routes) == 0 {
		return nil, fmt.Errorf("TLS passthrough gateway has no routes")
	}
	var idle *durationpb.Duration
	if t.IdleTimeout != "" {
		d, err := time.ParseDuration(t.IdleTimeout)
		if err != nil {
			return nil, fmt.Errorf("tcp idleTimeout: %w", err)
		}
		idle = durationpb.New(d)
	}
	inspector, err := anypb.New(&tlsinspectorv3.TlsInspector{})
	if err != nil {
		return nil, err
	}
	l := &listenerv3.Listener{
		Name:    gw.Metadata.Name,
		Address: socketAddress(gw.Spec.BindAddress, gw.Spec.BindPort),
		ListenerFilters: []*listenerv3.ListenerFilter{{
			Name:       wellknown.TlsInspector,
			ConfigType: &listenerv3.ListenerFilter_TypedConfig{TypedConfig: inspector},
		}},
	}
	for i, r := range t.Routes {
		proxy := &tcpproxyv3.TcpProxy{
			StatPrefix:       StatName(gw.Metadata.Name),
			ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: r.Upstream},
			IdleTimeout:      idle,
		}
		if proxy.AccessLog, err = accessLogs(gw.Spec.AccessLog); err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		typed, err := anypb.New(proxy)
		if err != nil {
			return nil, fmt.Errorf("route %d: %w", i, err)
		}
		chain := &listenerv3.FilterChain{
			Filters: []*listenerv3.Filter{{
				Name:       wellknown.TCPProxy,
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typed},
			}},
		}
		if len(r.ServerNames) > 0 {
			chain.FilterChainMatch = &listenerv3.FilterChainMatch{ServerNames: r.ServerNames}
		}
		l.FilterChains = append(l.FilterChains, chain)
	}
	return l, nil
}
