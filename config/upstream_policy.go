package config

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// UpstreamOptions tune how Envoy connects to and balances over an Upstream's hosts. Absent
// fields keep Envoy's defaults.
type UpstreamOptions struct {
	// ConnectTimeout bounds opening a connection to a host. Default 5s.
	ConnectTimeout string `yaml:"connectTimeout,omitempty"`
	// LoadBalancer picks a host for each request: roundRobin (default), leastRequest, random,
	// ringHash or maglev. ringHash and maglev hash what the route's hashPolicy names.
	LoadBalancer string `yaml:"loadBalancer,omitempty"`
	// HealthCheck probes every host and takes failing ones out of rotation.
	HealthCheck *HealthCheck `yaml:"healthCheck,omitempty"`
	// OutlierDetection ejects hosts that keep failing real requests.
	OutlierDetection *OutlierDetection `yaml:"outlierDetection,omitempty"`
	// CircuitBreakers bound what Envoy sends to the Upstream at once.
	CircuitBreakers *CircuitBreakers `yaml:"circuitBreakers,omitempty"`
	// HTTP2 speaks HTTP/2 without TLS (h2c) to the hosts, as gRPC servers expect.
	HTTP2 bool `yaml:"http2,omitempty"`
	// TLS makes Envoy speak TLS to the hosts.
	TLS *UpstreamTLS `yaml:"tls,omitempty"`
	// SlowStart ramps new hosts' share of requests up over a window (roundRobin, leastRequest).
	SlowStart *SlowStart `yaml:"slowStart,omitempty"`
	// ConnectionPool bounds how many requests and how long Envoy reuses each host connection.
	ConnectionPool *ConnectionPool `yaml:"connectionPool,omitempty"`
}

// The load balancers an Upstream can use.
const (
	LoadBalancerRoundRobin   = "roundRobin"
	LoadBalancerLeastRequest = "leastRequest"
	LoadBalancerRandom       = "random"
	LoadBalancerRingHash     = "ringHash"
	LoadBalancerMaglev       = "maglev"
)

var loadBalancers = []string{LoadBalancerRoundRobin, LoadBalancerLeastRequest, LoadBalancerRandom, LoadBalancerRingHash, LoadBalancerMaglev}

// HashesRequests reports whether the load balancer picks hosts by a hash of the request.
func (o *UpstreamOptions) HashesRequests() bool {
	return o != nil && (o.LoadBalancer == LoadBalancerRingHash || o.LoadBalancer == LoadBalancerMaglev)
}

// HealthCheck is an active health check: exactly one of HTTP, TCP and GRPC.
type HealthCheck struct {
	// HTTP sends GET Path and expects one of ExpectedStatuses.
	HTTP *HTTPHealthCheck `yaml:"http,omitempty"`
	// TCP only opens a connection.
	TCP bool `yaml:"tcp,omitempty"`
	// GRPC calls the standard gRPC health service (grpc.health.v1.Health/Check).
	GRPC *GRPCHealthCheck `yaml:"grpc,omitempty"`
	// Interval between checks of a host. Default 10s.
	Interval string `yaml:"interval,omitempty"`
	// Timeout of one check. Default 1s.
	Timeout string `yaml:"timeout,omitempty"`
	// UnhealthyThreshold is how many failed checks in a row take a host out. Default 3.
	UnhealthyThreshold int `yaml:"unhealthyThreshold,omitempty"`
	// HealthyThreshold is how many passed checks in a row bring a host back. Default 2.
	HealthyThreshold int `yaml:"healthyThreshold,omitempty"`
}

// HTTPHealthCheck probes a host with an HTTP GET.
type HTTPHealthCheck struct {
	Path string `yaml:"path"`
	// ExpectedStatuses are the statuses that count as healthy. Default [200].
	ExpectedStatuses []int `yaml:"expectedStatuses,omitempty"`
}

// OutlierDetection ejects a host after consecutive 5xx answers, for a time that grows each
// time it is ejected again.
type OutlierDetection struct {
	// Consecutive5xx is how many 5xx answers in a row eject a host. Default 5.
	Consecutive5xx int `yaml:"consecutive5xx,omitempty"`
	// Interval between ejection sweeps, which also bring ejected hosts back. Default 10s.
	Interval string `yaml:"interval,omitempty"`
	// BaseEjectionTime is how long a first ejection lasts. Default 30s.
	BaseEjectionTime string `yaml:"baseEjectionTime,omitempty"`
	// MaxEjectionPercent caps the share of hosts ejected at once (at least one host can always
	// be ejected). Default 10.
	MaxEjectionPercent int `yaml:"maxEjectionPercent,omitempty"`
}

// CircuitBreakers bound the connections and requests to an Upstream; what exceeds them fails
// at once with 503 instead of queueing.
type CircuitBreakers struct {
	MaxConnections     int `yaml:"maxConnections,omitempty"`
	MaxPendingRequests int `yaml:"maxPendingRequests,omitempty"`
	MaxRequests        int `yaml:"maxRequests,omitempty"`
	MaxRetries         int `yaml:"maxRetries,omitempty"`
}

// HashPolicy is one input of a ringHash or maglev Upstream's hash: exactly one field.
type HashPolicy struct {
	// Header hashes the value of this request header.
	Header string `yaml:"header,omitempty"`
	// Cookie hashes the value of this cookie.
	Cookie string `yaml:"cookie,omitempty"`
	// SourceIP hashes the client's address.
	SourceIP bool `yaml:"sourceIP,omitempty"`
}

// upstreamSettings are the fields of UpstreamSpec that are not discovery types.
var upstreamSettings = []string{"options"}

func (v *validator) checkUpstreamOptions(s subject, o *UpstreamOptions) {
	const p = "spec.options"
	if o == nil || !s.src.valid(p) {
		return
	}
	v.checkDuration(s, p+".connectTimeout", o.ConnectTimeout)
	if s.src.valid(p+".loadBalancer") && !slices.Contains(loadBalancers, o.LoadBalancer) {
		v.errorf(s, p+".loadBalancer", "unknown load balancer %q; use one of %s%s", excerpt(o.LoadBalancer), strings.Join(loadBalancers, ", "), didYouMean(o.LoadBalancer, loadBalancers))
	}
	if hc := o.HealthCheck; hc != nil && s.src.valid(p+".healthCheck") {
		hp := p + ".healthCheck"
		var set []string
		for _, f := range []string{"http", "tcp", "grpc"} {
			if s.src.has(hp + "." + f) {
				set = append(set, f)
			}
		}
		switch len(set) {
		case 0:
			v.errorf(s, hp, "no check; set http: {path: /healthz}, tcp: true or grpc: {}")
		case 1:
		default:
			v.errorf(s, hp, "set only one of %s", strings.Join(set, ", "))
		}
		v.checkGRPCHealthCheck(s, hp+".grpc", o)
		if s.src.valid(hp+".tcp") && !hc.TCP {
			v.errorf(s, hp+".tcp", "tcp: false checks nothing; use tcp: true or an http check")
		}
		if h := hc.HTTP; h != nil && s.src.valid(hp+".http") {
			if s.src.valid(hp+".http.path") && !strings.HasPrefix(h.Path, "/") {
				v.errorf(s, hp+".http.path", "path %q must start with \"/\"", excerpt(h.Path))
			}
			if s.src.valid(hp+".http.expectedStatuses") && len(h.ExpectedStatuses) == 0 {
				v.errorf(s, hp+".http.expectedStatuses", "no statuses; list at least one, or remove the field for [200]")
			}
			for i, st := range h.ExpectedStatuses {
				if sp := fmt.Sprintf("%s.http.expectedStatuses[%d]", hp, i); s.src.valid(sp) && (st < 100 || st > 599) {
					v.errorf(s, sp, "status %d is out of range; use 100-599", st)
				}
			}
		}
		v.checkDuration(s, hp+".interval", hc.Interval)
		v.checkDuration(s, hp+".timeout", hc.Timeout)
		v.checkCount(s, hp+".unhealthyThreshold", hc.UnhealthyThreshold)
		v.checkCount(s, hp+".healthyThreshold", hc.HealthyThreshold)
	}
	if od := o.OutlierDetection; od != nil && s.src.valid(p+".outlierDetection") {
		op := p + ".outlierDetection"
		v.checkCount(s, op+".consecutive5xx", od.Consecutive5xx)
		v.checkDuration(s, op+".interval", od.Interval)
		v.checkDuration(s, op+".baseEjectionTime", od.BaseEjectionTime)
		if s.src.valid(op+".maxEjectionPercent") && (od.MaxEjectionPercent < 1 || od.MaxEjectionPercent > 100) {
			v.errorf(s, op+".maxEjectionPercent", "%d is out of range; use 1-100", od.MaxEjectionPercent)
		}
	}
	if cb := o.CircuitBreakers; cb != nil && s.src.valid(p+".circuitBreakers") {
		cp := p + ".circuitBreakers"
		if !s.src.has(cp+".maxConnections") && !s.src.has(cp+".maxPendingRequests") && !s.src.has(cp+".maxRequests") && !s.src.has(cp+".maxRetries") {
			v.errorf(s, cp, "no limit; set maxConnections, maxPendingRequests, maxRequests or maxRetries")
		}
		v.checkCount(s, cp+".maxConnections", cb.MaxConnections)
		v.checkCount(s, cp+".maxPendingRequests", cb.MaxPendingRequests)
		v.checkCount(s, cp+".maxRequests", cb.MaxRequests)
		v.checkCount(s, cp+".maxRetries", cb.MaxRetries)
	}
	if s.src.valid(p+".http2") && !o.HTTP2 {
		v.errorf(s, p+".http2", "http2: false is the default; remove it")
	}
	v.checkSlowStart(s, o)
	v.checkConnectionPool(s, o)
}

// checkCount checks a count Envoy holds in 32 bits that must be at least 1.
func (v *validator) checkCount(s subject, field string, n int) {
	if s.src.valid(field) && (n < 1 || n > math.MaxUint32) {
		v.errorf(s, field, "%d is out of range; use 1 or more", n)
	}
}

// checkHashPolicy checks a route's hash policy and that every Upstream the route sends to
// hashes requests; with any other load balancer the policy would silently do nothing.
func (v *validator) checkHashPolicy(s subject, p string, r *Route) {
	op := p + ".options.hashPolicy"
	if r.Options == nil || !s.src.valid(op) {
		return
	}
	if len(r.Options.HashPolicy) == 0 {
		v.errorf(s, op, "no hash inputs; list at least one {header: <name>}, {cookie: <name>} or {sourceIP: true}")
	}
	for i, h := range r.Options.HashPolicy {
		hp := fmt.Sprintf("%s[%d]", op, i)
		if !s.src.valid(hp) {
			continue
		}
		var set []string
		for _, f := range []string{"header", "cookie", "sourceIP"} {
			if s.src.has(hp + "." + f) {
				set = append(set, f)
			}
		}
		switch {
		case len(set) == 0:
			v.errorf(s, hp, "no hash input; set header, cookie or sourceIP: true")
		case len(set) > 1:
			v.errorf(s, hp, "set only one of %s", strings.Join(set, ", "))
		}
		v.checkHeaderName(s, hp+".header", h.Header)
		if s.src.valid(hp+".cookie") && !headerNameRE.MatchString(h.Cookie) {
			v.errorf(s, hp+".cookie", "%q is not a cookie name; use letters, digits and '-' or '_'", excerpt(h.Cookie))
		}
		if s.src.valid(hp+".sourceIP") && !h.SourceIP {
			v.errorf(s, hp+".sourceIP", "sourceIP: false hashes nothing; use sourceIP: true or remove it")
		}
	}
	names := []string{r.Upstream}
	if dests := v.cfg.RouteDestinations(r); len(dests) > 0 {
		names = names[:0]
		for _, d := range dests {
			names = append(names, d.Upstream)
		}
	}
	reported := map[string]bool{} // an Upstream listed twice is already an error of its own
	for _, name := range names {
		if u := v.upstreams[name]; u != nil && !u.Spec.Options.HashesRequests() && !reported[name] {
			reported[name] = true
			v.errorf(s, op, "Upstream %q does not balance by hash, so hashPolicy would do nothing; set its options.loadBalancer to ringHash or maglev", name)
		}
	}
}
