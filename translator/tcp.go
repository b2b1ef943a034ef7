package translator

import (
	"fmt"
	"time"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxyv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portico-gw/portico/config"
)

// tcpListener builds the Envoy listener for a TCP Gateway: a tcp_proxy filter that sends
// every connection to the Gateway's Upstream, behind the connection rate limit if it has one.
// It has no route configuration, so a TCP Gateway contributes nothing to RDS.
func tcpListener(gw *config.Gateway) (*listenerv3.Listener, error) {
	t := gw.Spec.TCP
	if t == nil {
		return nil, fmt.Errorf("TCP gateway has no tcp section")
	}
	proxy := &tcpproxyv3.TcpProxy{
		StatPrefix:       StatName(gw.Metadata.Name),
		ClusterSpecifier: &tcpproxyv3.TcpProxy_Cluster{Cluster: t.Upstream},
	}
	if t.IdleTimeout != "" {
		d, err := time.ParseDuration(t.IdleTimeout)
		if err != nil {
			return nil, fmt.Errorf("tcp idleTimeout: %w", err)
		}
		proxy.IdleTimeout = durationpb.New(d)
	}
	var err error
	if proxy.AccessLog, err = accessLogs(gw.Spec.AccessLog); err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	typed, err := anypb.New(proxy)
	if err != nil {
		return nil, err
	}
	var filters []*listenerv3.Filter
	limit, err := tcpRateLimitFilter(gw, t.RateLimit)
	if err != nil {
		return nil, err
	}
	if limit != nil {
		filters = append(filters, limit)
	}
	filters = append(filters, &listenerv3.Filter{
		Name:       wellknown.TCPProxy,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typed},
	})
	return &listenerv3.Listener{
		Name:         gw.Metadata.Name,
		Address:      socketAddress(gw.Spec.BindAddress, gw.Spec.BindPort),
		FilterChains: []*listenerv3.FilterChain{{Filters: filters}},
	}, nil
}
