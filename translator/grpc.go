package translator

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/portico-gw/portico/config"
)

// grpcMatch restricts a route to gRPC requests: Envoy then also requires a content-type that
// starts with application/grpc.
func grpcMatch() *routev3.RouteMatch_GrpcRouteMatchOptions {
	return &routev3.RouteMatch_GrpcRouteMatchOptions{}
}

// grpcHealthCheck asks each host's grpc.health.v1.Health service for ServiceName's status.
func grpcHealthCheck(g *config.GRPCHealthCheck) *corev3.HealthCheck_GrpcHealthCheck_ {
	return &corev3.HealthCheck_GrpcHealthCheck_{GrpcHealthCheck: &corev3.HealthCheck_GrpcHealthCheck{ServiceName: g.ServiceName}}
}
