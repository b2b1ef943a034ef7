package translator

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/portico-gw/portico/config"
)

// listener builds the Envoy listener for an HTTP or HTTPS Gateway serving vss. Its routes come
// over RDS under a route configuration of the same name, so a route change touches the listener
// (and drains its connections) only when it makes the Gateway start or stop using one of the
// HTTP filters that are present only while used (faults, CORS, rate limits, security,
// compression, cache).
func listener(gw *config.Gateway, vss []*config.VirtualService, tn trafficNeeds, rl rateLimitNeeds, az authzNeeds, rbac rbacNeeds, resp []*hcmv3.HttpFilter) (*listenerv3.Listener, error) {
	if gw.Spec.Protocol != config.ProtocolHTTP && gw.Spec.Protocol != config.ProtocolHTTPS {
		return nil, fmt.Errorf("protocol %q cannot be translated", gw.Spec.Protocol)
	}
	router, err := anypb.New(&routerv3.Router{})
	if err != nil {
		return nil, err
	}
	manager := &hcmv3.HttpConnectionManager{
		StatPrefix: StatName(gw.Metadata.Name),
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{
			RouteConfigName: routeConfigName(gw),
			ConfigSource:    adsSource(),
		}},
		HttpFilters: []*hcmv3.HttpFilter{{
			Name:       wellknown.Router,
			ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: router},
		}},
	}
	traffic, err := trafficFilters(tn)
	if err != nil {
		return nil, err
	}
	manager.HttpFilters = append(append(traffic, resp...), manager.HttpFilters...)
	if err := applyLambda(tn, manager); err != nil {
		return nil, fmt.Errorf("lambda: %w", err)
	}
	manager.UpgradeConfigs = upgradeConfigs(gw)
	if manager.AccessLog, err = accessLogs(gw.Spec.AccessLog); err != nil {
		return nil, fmt.Errorf("access log: %w", err)
	}
	if gw.Spec.Tracing != nil {
		if manager.Tracing, err = tracing(gw); err != nil {
			return nil, fmt.Errorf("tracing: %w", err)
		}
	}
	forwardClientCert(gw, manager)
	l := &listenerv3.Listener{
		Name:    gw.Metadata.Name,
		Address: socketAddress(gw.Spec.BindAddress, gw.Spec.BindPort),
	}
	if err := applyGatewayOptions(gw, l, manager); err != nil {
		return nil, err
	}
	if err := applyRateLimitFilters(gw, rl, manager); err != nil {
		return nil, fmt.Errorf("rate limits: %w", err)
	}
	if err := applyExtAuthz(az, manager); err != nil {
		return nil, fmt.Errorf("authorization: %w", err)
	}
	if err := applyJWT(vss, manager); err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	if err := applyOIDC(vss, manager); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	if err := applyRBAC(rbac, manager); err != nil {
		return nil, fmt.Errorf("authorization: %w", err)
	}
	if err := applyHSTS(gw, manager); err != nil {
		return nil, fmt.Errorf("hsts: %w", err)
	}
	hcm, err := anypb.New(manager)
	if err != nil {
		return nil, err
	}
	filter := &listenerv3.Filter{
		Name:       wellknown.HTTPConnectionManager,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: hcm},
	}
	if gw.Spec.Protocol == config.ProtocolHTTPS {
		if err := terminateTLS(l, gw, filter); err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
	} else {
		l.FilterChains = []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{filter}}}
	}
	if err := limitConnections(gw, l); err != nil {
		return nil, fmt.Errorf("connection limit: %w", err)
	}
	return l, nil
}

func routeConfigName(gw *config.Gateway) string { return gw.Metadata.Name }

func socketAddress(host string, port int) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}
