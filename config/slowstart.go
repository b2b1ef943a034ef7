package config

// SlowStart ramps a newly added (or newly healthy) host's share of requests up over Window
// instead of sending it a full share at once, so a cold host is not swamped. Envoy supports it
// only for the roundRobin and leastRequest load balancers.
type SlowStart struct {
	// Window is how long a new host's weight takes to grow to its full value.
	Window string `yaml:"window"`
	// Aggression shapes the ramp: 1.0 (default) grows linearly, larger values keep the weight
	// low for longer and rise late.
	Aggression float64 `yaml:"aggression,omitempty"`
	// MinWeightPercent is the share of its full weight a new host starts with, 0-100. Default 10.
	MinWeightPercent *float64 `yaml:"minWeightPercent,omitempty"`
}

// checkSlowStart checks spec.options.slowStart; load balancers other than roundRobin and
// leastRequest would ignore it silently.
func (v *validator) checkSlowStart(s subject, o *UpstreamOptions) {
	const p = "spec.options.slowStart"
	ss := o.SlowStart
	if ss == nil || !s.src.valid(p) {
		return
	}
	if lb := o.LoadBalancer; lb != "" && lb != LoadBalancerRoundRobin && lb != LoadBalancerLeastRequest {
		v.errorf(s, p, "slow start needs loadBalancer roundRobin or leastRequest, not %q", excerpt(lb))
	}
	v.checkDuration(s, p+".window", ss.Window)
	if s.src.valid(p+".aggression") && !(ss.Aggression > 0) {
		v.errorf(s, p+".aggression", "%v is out of range; use a number above 0 (1.0 is linear)", ss.Aggression)
	}
	if m := ss.MinWeightPercent; m != nil && s.src.valid(p+".minWeightPercent") && !(*m >= 0 && *m <= 100) {
		v.errorf(s, p+".minWeightPercent", "%v is out of range; use 0-100", *m)
	}
}
