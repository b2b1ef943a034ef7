package translator

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/portico-gw/portico/config"
)

// applySlowStart sets an Upstream's slow start on its cluster. Envoy keeps the setting in the
// load balancer's own config, so it goes where the chosen balancer (roundRobin by default)
// reads it.
func applySlowStart(o *config.UpstreamOptions, c *clusterv3.Cluster) error {
	if o == nil || o.SlowStart == nil {
		return nil
	}
	ss := o.SlowStart
	window, err := requiredDuration("window", ss.Window)
	if err != nil {
		return fmt.Errorf("slowStart: %w", err)
	}
	cfg := &clusterv3.Cluster_SlowStartConfig{SlowStartWindow: window}
	if ss.Aggression != 0 {
		// Envoy reads the value through the runtime; the key is unique per cluster so that an
		// operator could override one Upstream without touching others.
		cfg.Aggression = &corev3.RuntimeDouble{DefaultValue: ss.Aggression, RuntimeKey: "portico.slow_start." + c.Name + ".aggression"}
	}
	if m := ss.MinWeightPercent; m != nil {
		cfg.MinWeightPercent = &typev3.Percent{Value: *m}
	}
	switch o.LoadBalancer {
	case "", config.LoadBalancerRoundRobin:
		c.LbConfig = &clusterv3.Cluster_RoundRobinLbConfig_{RoundRobinLbConfig: &clusterv3.Cluster_RoundRobinLbConfig{SlowStartConfig: cfg}}
	case config.LoadBalancerLeastRequest:
		c.LbConfig = &clusterv3.Cluster_LeastRequestLbConfig_{LeastRequestLbConfig: &clusterv3.Cluster_LeastRequestLbConfig{SlowStartConfig: cfg}}
	default:
		return fmt.Errorf("slowStart: load balancer %q has no slow start", o.LoadBalancer)
	}
	return nil
}
