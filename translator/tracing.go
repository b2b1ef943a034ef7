package translator

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tracev3 "github.com/envoyproxy/go-control-plane/envoy/config/trace/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	tracingv3 "github.com/envoyproxy/go-control-plane/envoy/type/tracing/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portico-gw/portico/config"
)

// TracingClusterName is the cluster that carries a Gateway's spans to its collector. The '_'
// keeps it apart from every Upstream, whose names cannot contain one.
func TracingClusterName(gw *config.Gateway) string { return "portico_tracing_" + gw.Metadata.Name }

// tracing builds a Gateway's HTTP connection manager tracing: OpenTelemetry over gRPC through
// the Gateway's tracing cluster. Envoy propagates the W3C trace context to the upstream.
func tracing(gw *config.Gateway) (*hcmv3.HttpConnectionManager_Tracing, error) {
	t := gw.Spec.Tracing
	serviceName := t.ServiceName
	if serviceName == "" {
		serviceName = config.DefaultTracingServiceName
	}
	provider, err := anypb.New(&tracev3.OpenTelemetryConfig{
		GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: TracingClusterName(gw)}},
			Timeout:         durationpb.New(connectTimeout),
		},
		ServiceName: serviceName,
	})
	if err != nil {
		return nil, err
	}
	sampling := 100.0
	if t.SamplingPercent != nil {
		sampling = *t.SamplingPercent
	}
	tags := []*tracingv3.CustomTag{{
		Tag:  config.RouteTagName,
		Type: &tracingv3.CustomTag_Value{Value: "%ROUTE_NAME%"},
	}}
	for _, k := range slices.Sorted(maps.Keys(t.Tags)) {
		tags = append(tags, &tracingv3.CustomTag{Tag: k, Type: &tracingv3.CustomTag_Literal_{
			Literal: &tracingv3.CustomTag_Literal{Value: t.Tags[k]}}})
	}
	return &hcmv3.HttpConnectionManager_Tracing{
		Provider:       &tracev3.Tracing_Http{Name: "envoy.tracers.opentelemetry", ConfigType: &tracev3.Tracing_Http_TypedConfig{TypedConfig: provider}},
		RandomSampling: &typev3.Percent{Value: sampling},
		CustomTags:     tags,
	}, nil
}

// tracingCluster is the HTTP/2 cluster of a Gateway's collector, resolved by Envoy.
func tracingCluster(gw *config.Gateway) (*clusterv3.Cluster, error) {
	host, portText, err := net.SplitHostPort(gw.Spec.Tracing.Collector)
	if err != nil {
		return nil, fmt.Errorf("collector: %w", err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("collector port: %w", err)
	}
	h2, err := anypb.New(&httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
		}},
	})
	if err != nil {
		return nil, err
	}
	name := TracingClusterName(gw)
	c := &clusterv3.Cluster{
		Name:                          name,
		ConnectTimeout:                durationpb.New(connectTimeout),
		ClusterDiscoveryType:          &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
		LoadAssignment:                loadAssignment(name, []*endpointv3.LbEndpoint{lbEndpoint(&endpointv3.Endpoint{Address: socketAddress(host, port)}, 0)}),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{httpProtocolOptions: h2},
	}
	if sn := StatName(name); sn != name {
		c.AltStatName = sn
	}
	return c, nil
}
