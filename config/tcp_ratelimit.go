package config

import (
	"math"
	"time"
)

// TCPRateLimit is a token bucket for the new connections of a TCP Gateway: it holds up to
// Burst tokens, every accepted connection takes one, and Connections tokens are added every
// Interval. Envoy closes a connection that finds the bucket empty before a byte is proxied.
type TCPRateLimit struct {
	// Connections is how many tokens are added every Interval (at least 1).
	Connections int `yaml:"connections"`
	// Interval is how often tokens are added ("1s", "1m"); at least 50ms, Envoy's minimum.
	Interval string `yaml:"interval"`
	// Burst is the bucket's size, at least Connections. Default: Connections.
	Burst int `yaml:"burst,omitempty"`
}

// FillInterval is r's interval; validation guarantees it parses.
func (r *TCPRateLimit) FillInterval() time.Duration {
	d, _ := time.ParseDuration(r.Interval)
	return d
}

// BucketSize applies Burst's default.
func (r *TCPRateLimit) BucketSize() int {
	if r.Burst == 0 {
		return r.Connections
	}
	return r.Burst
}

// checkTCPRateLimit checks a TCP Gateway's spec.tcp.rateLimit.
func (v *validator) checkTCPRateLimit(s subject, r *TCPRateLimit) {
	const p = "spec.tcp.rateLimit"
	if r == nil || !s.src.valid(p) {
		return
	}
	if s.src.has("spec.tcp.routes") {
		// A passthrough Gateway has a filter chain per route, each with a bucket of its own,
		// so one limit for the Gateway could not be kept.
		v.errorf(s, p, "a connection rate limit applies to a TCP Gateway with upstream only, not to one with routes; remove rateLimit")
		return
	}
	// The decoder reports a missing connections or interval: both are required fields.
	if s.src.valid(p+".connections") && (r.Connections < 1 || r.Connections > math.MaxUint32) {
		v.errorf(s, p+".connections", "%d is out of range; add at least 1 connection per interval", r.Connections)
	}
	if s.src.valid(p + ".interval") {
		d, err := time.ParseDuration(r.Interval)
		switch {
		case err != nil:
			v.errorf(s, p+".interval", "%q is not a duration; write it like \"1s\" or \"1m\"", excerpt(r.Interval))
		case d < minLocalInterval:
			v.errorf(s, p+".interval", "interval %q is shorter than Envoy's minimum of 50ms; use a longer interval and more connections", excerpt(r.Interval))
		case d%time.Millisecond != 0:
			v.errorf(s, p+".interval", "interval %q is finer than a millisecond, which Envoy does not honour; round it", excerpt(r.Interval))
		}
	}
	if s.src.valid(p+".burst") && s.src.valid(p+".connections") &&
		(r.Burst < r.Connections || r.Burst > math.MaxUint32) {
		v.errorf(s, p+".burst", "burst %d is smaller than connections %d: the bucket could never hold one interval's tokens; raise it or remove burst", r.Burst, r.Connections)
	}
}
