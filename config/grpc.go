package config

// GRPCHealthCheck calls grpc.health.v1.Health/Check on every host; a host is healthy while it
// answers SERVING.
type GRPCHealthCheck struct {
	// ServiceName is the service whose status is asked for. Empty asks for the server as a whole.
	ServiceName string `yaml:"serviceName,omitempty"`
}

// checkGRPCMatch checks a route's grpc matcher.
func (v *validator) checkGRPCMatch(s subject, p string, m RouteMatch) {
	if s.src.valid(p+".grpc") && !m.GRPC {
		v.errorf(s, p+".grpc", "grpc: false is the default; remove it, or use grpc: true to match only gRPC requests")
	}
}

// checkGRPCHealthCheck checks a gRPC health check at p. Envoy speaks gRPC only over HTTP/2, and
// rejects the whole cluster when a gRPC check meets an HTTP/1.1 Upstream.
func (v *validator) checkGRPCHealthCheck(s subject, p string, o *UpstreamOptions) {
	if o.HealthCheck.GRPC == nil || !s.src.valid(p) {
		return
	}
	if !o.HTTP2 {
		v.errorf(s, p, "a gRPC health check needs HTTP/2 to the hosts; set spec.options.http2: true")
	}
}
