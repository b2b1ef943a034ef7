package translator

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-gw/portico/config"
)

// Health check defaults: Envoy requires every one of these, and has no defaults of its own.
const (
	defaultHealthCheckInterval = "10s"
	defaultHealthCheckTimeout  = "1s"
	defaultUnhealthyThreshold  = 3
	defaultHealthyThreshold    = 2
)

var lbPolicies = map[string]clusterv3.Cluster_LbPolicy{
	config.LoadBalancerRoundRobin:   clusterv3.Cluster_ROUND_ROBIN,
	config.LoadBalancerLeastRequest: clusterv3.Cluster_LEAST_REQUEST,
	config.LoadBalancerRandom:       clusterv3.Cluster_RANDOM,
	config.LoadBalancerRingHash:     clusterv3.Cluster_RING_HASH,
	config.LoadBalancerMaglev:       clusterv3.Cluster_MAGLEV,
}

// httpProtocolOptions is the extension name under which a cluster takes its HTTP options.
const httpProtocolOptions = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// applyUpstreamOptions sets what an Upstream's options ask for on its cluster.
func applyUpstreamOptions(o *config.UpstreamOptions, c *clusterv3.Cluster) error {
	if o == nil {
		return nil
	}
	if o.ConnectTimeout != "" {
		d, err := optionalDuration("connectTimeout", o.ConnectTimeout)
		if err != nil {
			return err
		}
		c.ConnectTimeout = d
	}
	if o.LoadBalancer != "" {
		lb, ok := lbPolicies[o.LoadBalancer]
		if !ok {
			return fmt.Errorf("unknown load balancer %q", o.LoadBalancer)
		}
		c.LbPolicy = lb
	}
	if o.HealthCheck != nil {
		hc, err := healthCheck(o.HealthCheck)
		if err != nil {
			return fmt.Errorf("healthCheck: %w", err)
		}
		c.HealthChecks = []*corev3.HealthCheck{hc}
	}
	if od := o.OutlierDetection; od != nil {
		out := &clusterv3.OutlierDetection{}
		if od.Consecutive5xx > 0 {
			out.Consecutive_5Xx = wrapperspb.UInt32(uint32(od.Consecutive5xx))
		}
		if od.MaxEjectionPercent > 0 {
			out.MaxEjectionPercent = wrapperspb.UInt32(uint32(od.MaxEjectionPercent))
		}
		var err error
		if out.Interval, err = optionalDuration("outlierDetection.interval", od.Interval); err != nil {
			return err
		}
		if out.BaseEjectionTime, err = optionalDuration("outlierDetection.baseEjectionTime", od.BaseEjectionTime); err != nil {
			return err
		}
		c.OutlierDetection = out
	}
	if cb := o.CircuitBreakers; cb != nil {
		c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
			MaxConnections:     optionalCount(cb.MaxConnections),
			MaxPendingRequests: optionalCount(cb.MaxPendingRequests),
			MaxRequests:        optionalCount(cb.MaxRequests),
			MaxRetries:         optionalCount(cb.MaxRetries),
		}}}
	}
	if o.HTTP2 {
		opts, err := anypb.New(&httpv3.HttpProtocolOptions{
			UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}},
			}},
		})
		if err != nil {
			return fmt.Errorf("http2: %w", err)
		}
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpProtocolOptions: opts}
	}
	return nil
}

func healthCheck(h *config.HealthCheck) (*corev3.HealthCheck, error) {
	interval, timeout := h.Interval, h.Timeout
	if interval == "" {
		interval = defaultHealthCheckInterval
	}
	if timeout == "" {
		timeout = defaultHealthCheckTimeout
	}
	unhealthy, healthy := h.UnhealthyThreshold, h.HealthyThreshold
	if unhealthy == 0 {
		unhealthy = defaultUnhealthyThreshold
	}
	if healthy == 0 {
		healthy = defaultHealthyThreshold
	}
	out := &corev3.HealthCheck{
		UnhealthyThreshold: wrapperspb.UInt32(uint32(unhealthy)),
		HealthyThreshold:   wrapperspb.UInt32(uint32(healthy)),
	}
	var err error
	if out.Interval, err = requiredDuration("interval", interval); err != nil {
		return nil, err
	}
	// Envoy checks a cluster that has not carried traffic yet only every minute by default, and
	// keeps that pace until the next check even once traffic starts; the user's interval is
	// meant to hold from the start.
	out.NoTrafficInterval = out.Interval
	if out.Timeout, err = requiredDuration("timeout", timeout); err != nil {
		return nil, err
	}
	switch {
	case h.HTTP != nil:
		statuses := h.HTTP.ExpectedStatuses
		if len(statuses) == 0 {
			statuses = []int{200}
		}
		check := &corev3.HealthCheck_HttpHealthCheck{Path: h.HTTP.Path}
		for _, s := range statuses {
			// Envoy's ranges are half-open.
			check.ExpectedStatuses = append(check.ExpectedStatuses, &typev3.Int64Range{Start: int64(s), End: int64(s) + 1})
		}
		out.HealthChecker = &corev3.HealthCheck_HttpHealthCheck_{HttpHealthCheck: check}
	case h.GRPC != nil:
		out.HealthChecker = grpcHealthCheck(h.GRPC)
	case h.TCP:
		// No payload: a connection that opens is a healthy host.
		out.HealthChecker = &corev3.HealthCheck_TcpHealthCheck_{TcpHealthCheck: &corev3.HealthCheck_TcpHealthCheck{}}
	default:
		return nil, fmt.Errorf("no check set")
	}
	return out, nil
}

func requiredDuration(field, d string) (*durationpb.Duration, error) {
	out, err := optionalDuration(field, d)
	if err == nil && out == nil {
		err = fmt.Errorf("%s: empty duration", field)
	}
	return out, err
}

func optionalCount(n int) *wrapperspb.UInt32Value {
	if n == 0 {
		return nil
	}
	return wrapperspb.UInt32(uint32(n))
}

// hashPolicies are the inputs a ringHash or maglev cluster hashes for a route's requests.
func hashPolicies(hs []config.HashPolicy) []*routev3.RouteAction_HashPolicy {
	var out []*routev3.RouteAction_HashPolicy
	for _, h := range hs {
		hp := &routev3.RouteAction_HashPolicy{}
		switch {
		case h.Header != "":
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_Header_{Header: &routev3.RouteAction_HashPolicy_Header{HeaderName: h.Header}}
		case h.Cookie != "":
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_Cookie_{Cookie: &routev3.RouteAction_HashPolicy_Cookie{Name: h.Cookie}}
		case h.SourceIP:
			hp.PolicySpecifier = &routev3.RouteAction_HashPolicy_ConnectionProperties_{ConnectionProperties: &routev3.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true}}
		}
		out = append(out, hp)
	}
	return out
}
