package config

import (
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"time"
)

// GatewayRateLimit limits a whole Gateway and chooses where global limits count.
type GatewayRateLimit struct {
	// Local is a token bucket for every request this Gateway receives, whatever its host.
	Local *LocalRateLimit `yaml:"local,omitempty"`
	// Body replaces the body of every answer this Gateway gives to a rate-limited request:
	// every global rejection, and local rejections with status 429. Default: Envoy's short
	// text.
	Body string `yaml:"body,omitempty"`
	// Redis makes global limits count in a Redis shared by several Portico instances, which
	// then enforce one combined limit. Without it counters are kept in this process. The store
	// serves the whole process, so at most one Gateway sets it; a change applies at restart.
	Redis *RedisRateLimitStore `yaml:"redis,omitempty"`
}

// RateLimitPolicy limits the requests of a VirtualService or a route.
type RateLimitPolicy struct {
	// Local is a token bucket that Envoy keeps by itself: cheap, exact per Portico instance,
	// and shared by every client. On a VirtualService one bucket serves all its routes.
	Local *LocalRateLimit `yaml:"local,omitempty"`
	// Global are counted limits decided by Portico's rate limit service, per key (client IP,
	// header, path, JWT claim). Each applies on its own; a request over any of them is rejected. On a
	// route they apply only to routes that forward to an Upstream.
	Global []GlobalRateLimit `yaml:"global,omitempty"`
}

// LocalRateLimit is a token bucket: it holds up to Burst tokens, every request takes one, and
// Requests tokens are added every Interval. A request finding the bucket empty is rejected.
type LocalRateLimit struct {
	// Requests is how many tokens are added every Interval (at least 1).
	Requests int `yaml:"requests"`
	// Interval is how often tokens are added ("1s", "1m"); at least 50ms, Envoy's minimum.
	Interval string `yaml:"interval"`
	// Burst is the bucket's size, at least Requests. Default: Requests.
	Burst int `yaml:"burst,omitempty"`
	// Status is the HTTP status of a rejected request, a 4xx or 5xx. Default 429.
	Status int `yaml:"status,omitempty"`
	// RateLimitHeaders adds x-ratelimit-limit, -remaining and -reset to responses. Default true.
	RateLimitHeaders *bool `yaml:"rateLimitHeaders,omitempty"`
}

// GlobalRateLimit is a limit counted by Portico's rate limit service: RequestsPerUnit requests
// per Unit for each distinct value of Key. Requests over it get 429 with RateLimit headers.
type GlobalRateLimit struct {
	// Name identifies the limit in metrics; unique within its list.
	Name string `yaml:"name"`
	// RequestsPerUnit is how many requests one window allows (at least 1).
	RequestsPerUnit int `yaml:"requestsPerUnit"`
	// Unit is the window: second, minute, hour or day. Windows are aligned to the clock (UTC).
	Unit string `yaml:"unit"`
	// Key says what is counted separately. Several keys combine: clientIP and header together
	// count each client IP and header value pair. Without a key all requests share one count.
	Key *RateLimitKey `yaml:"key,omitempty"`
	// Shadow counts and reports in metrics what would be limited, but never rejects.
	Shadow bool `yaml:"shadow,omitempty"`
}

// RateLimitKey chooses the parts of a request that give it its own counter.
type RateLimitKey struct {
	// ClientIP counts each client address separately (the downstream peer, or the address taken
	// from x-forwarded-for under the Gateway's useRemoteAddress and xffNumTrustedHops).
	ClientIP bool `yaml:"clientIP,omitempty"`
	// Header counts each value of this request header separately, such as x-api-key. Requests
	// without the header are not counted by this limit.
	Header string `yaml:"header,omitempty"`
	// Path counts each request path (with its query string) separately.
	Path bool `yaml:"path,omitempty"`
	// JWTClaim counts each value of this claim of the request's verified JWT separately, such
	// as sub ("org.id" for a nested claim; string claims only). Requests without a verified
	// token carrying the claim are not counted by this limit. Needs spec.security.jwt.
	JWTClaim string `yaml:"jwtClaim,omitempty"`
	// Identity counts each identity that API keys or basic auth authenticated separately (the
	// key's identity, or the user). Requests without one are not counted by this limit. Needs
	// security.apiKey or security.basicAuth where the limit applies.
	Identity bool `yaml:"identity,omitempty"`
}

// RedisRateLimitStore is a Redis that global limits count in.
type RedisRateLimitStore struct {
	// Address is Redis's host:port, plain TCP.
	Address string `yaml:"address"`
	// Window is fixed (counters restart at each window boundary) or sliding (a weighted count
	// of the current and previous window, smoother at boundaries). Default fixed.
	Window string `yaml:"window,omitempty"`
	// FailureMode is what happens when Redis cannot be reached: open allows requests, closed
	// rejects those a limit applies to. Default open.
	FailureMode string `yaml:"failureMode,omitempty"`
}

// The windows and failure modes a Redis store accepts.
const (
	RateLimitWindowFixed   = "fixed"
	RateLimitWindowSliding = "sliding"
	FailureModeOpen        = "open"
	FailureModeClosed      = "closed"
)

// RateLimitUnits are the units a global limit can be written in.
var RateLimitUnits = []string{"second", "minute", "hour", "day"}

// limitedStatuses are the 4xx and 5xx statuses Envoy's HttpStatus can carry.
var limitedStatuses = []int{400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417,
	421, 422, 423, 424, 426, 428, 429, 431, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511}

// minLocalInterval is the shortest token bucket fill interval Envoy accepts.
const minLocalInterval = 50 * time.Millisecond

// LocalInterval is l's interval; validation guarantees it parses.
func (l *LocalRateLimit) LocalInterval() time.Duration {
	d, _ := time.ParseDuration(l.Interval)
	return d
}

// BucketSize applies Burst's default.
func (l *LocalRateLimit) BucketSize() int {
	if l.Burst == 0 {
		return l.Requests
	}
	return l.Burst
}

// LimitedStatus applies Status's default.
func (l *LocalRateLimit) LimitedStatus() int {
	if l.Status == 0 {
		return 429
	}
	return l.Status
}

// HeadersEnabled applies RateLimitHeaders's default.
func (l *LocalRateLimit) HeadersEnabled() bool {
	return l.RateLimitHeaders == nil || *l.RateLimitHeaders
}

// FailsClosed applies FailureMode's default.
func (r *RedisRateLimitStore) FailsClosed() bool { return r.FailureMode == FailureModeClosed }

// IsSliding applies Window's default.
func (r *RedisRateLimitStore) IsSliding() bool { return r.Window == RateLimitWindowSliding }

// RateLimitStore returns the Redis store the configuration asks for, nil for counting in memory.
func (c *Config) RateLimitStore() *RedisRateLimitStore {
	for _, g := range c.Gateways {
		if rl := g.Spec.RateLimit; rl != nil && rl.Redis != nil {
			return rl.Redis
		}
	}
	return nil
}

// checkGatewayRateLimit checks a Gateway's spec.rateLimit; redisOwner is the Gateway that set
// a Redis store first, if any.
func (v *validator) checkGatewayRateLimit(s subject, rl *GatewayRateLimit, redisOwner *Gateway) {
	const p = "spec.rateLimit"
	if rl == nil || !s.src.valid(p) {
		return
	}
	if rl.Local != nil {
		v.checkLocalRateLimit(s, p+".local", rl.Local)
	}
	if s.src.valid(p+".body") && len(rl.Body) > maxDirectResponseBody {
		v.errorf(s, p+".body", "body is %d bytes; Envoy allows at most %d", len(rl.Body), maxDirectResponseBody)
	}
	r := rl.Redis
	if r == nil || !s.src.valid(p+".redis") {
		return
	}
	if redisOwner != nil && redisOwner.Metadata.Name != s.name {
		v.errorf(s, p+".redis", "Gateway %q sets the rate limit store already (%s); one store serves every Gateway, set it once",
			redisOwner.Metadata.Name, redisOwner.Source.At(p+".redis"))
	}
	if s.src.valid(p + ".redis.address") {
		if host, port, err := net.SplitHostPort(r.Address); err != nil || host == "" || port == "" {
			v.errorf(s, p+".redis.address", "%q is not host:port; write it like \"127.0.0.1:6379\"", excerpt(r.Address))
		}
	}
	if s.src.valid(p+".redis.window") && r.Window != RateLimitWindowFixed && r.Window != RateLimitWindowSliding {
		v.errorf(s, p+".redis.window", "window %q is not %s or %s", excerpt(r.Window), RateLimitWindowFixed, RateLimitWindowSliding)
	}
	if s.src.valid(p+".redis.failureMode") && r.FailureMode != FailureModeOpen && r.FailureMode != FailureModeClosed {
		v.errorf(s, p+".redis.failureMode", "failure mode %q is not %s (allow requests while Redis is unreachable) or %s (reject them)",
			excerpt(r.FailureMode), FailureModeOpen, FailureModeClosed)
	}
}

// firstRedisOwner is the first Gateway that sets a Redis store.
func firstRedisOwner(gateways []*Gateway) *Gateway {
	for _, g := range gateways {
		if rl := g.Spec.RateLimit; rl != nil && rl.Redis != nil && g.Source.valid("spec.rateLimit.redis") {
			return g
		}
	}
	return nil
}

// checkRateLimitPolicy checks the rateLimit of a VirtualService or route at p. forwards tells
// whether the route sends requests to an Upstream; Envoy's rate limit filter ignores the
// others, so a global limit there would silently do nothing.
func (v *validator) checkRateLimitPolicy(s subject, p string, rl *RateLimitPolicy, forwards bool) {
	if rl == nil || !s.src.valid(p) {
		return
	}
	if rl.Local != nil {
		v.checkLocalRateLimit(s, p+".local", rl.Local)
	}
	if len(rl.Global) > 0 && !forwards && s.src.valid(p+".global") {
		v.errorf(s, p+".global", "global rate limits apply only to routes that forward to an upstream; use a local rate limit here, or move the limit to the VirtualService")
	}
	names := map[string]string{}
	for i, g := range rl.Global {
		gp := fmt.Sprintf("%s.global[%d]", p, i)
		if !s.src.valid(gp) {
			continue
		}
		if s.src.valid(gp + ".name") {
			if !nameRE.MatchString(g.Name) || len(g.Name) > 63 {
				v.errorf(s, gp+".name", "invalid name %q: use at most 63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit", excerpt(g.Name))
			} else if prev, dup := names[g.Name]; dup {
				v.errorf(s, gp+".name", "limit name %q is already used by %s; rename one", g.Name, prev)
			} else {
				names[g.Name] = gp
			}
		}
		if s.src.valid(gp+".requestsPerUnit") && (g.RequestsPerUnit < 1 || g.RequestsPerUnit > math.MaxUint32) {
			v.errorf(s, gp+".requestsPerUnit", "%d is out of range; allow at least 1 request per unit", g.RequestsPerUnit)
		}
		if s.src.valid(gp+".unit") && !slices.Contains(RateLimitUnits, g.Unit) {
			v.errorf(s, gp+".unit", "unit %q is not one of %s%s", excerpt(g.Unit), strings.Join(RateLimitUnits, ", "), didYouMean(g.Unit, RateLimitUnits))
		}
		if k := g.Key; k != nil && s.src.valid(gp+".key") {
			if !k.ClientIP && !k.Path && k.Header == "" && k.JWTClaim == "" && !k.Identity {
				v.errorf(s, gp+".key", "no key is set; set clientIP, header, path, jwtClaim or identity, or remove key to count all requests together")
			}
			if s.src.valid(gp+".key.jwtClaim") && !validClaimName(k.JWTClaim) {
				v.errorf(s, gp+".key.jwtClaim", "claim %q has an empty part; write a name such as \"sub\", or \"org.id\" for a nested claim", excerpt(k.JWTClaim))
			}
			if s.src.has(gp + ".key.header") {
				if strings.HasPrefix(k.Header, ":") {
					v.errorf(s, gp+".key.header", "pseudo-header %q cannot be a key; use path: true for the path", excerpt(k.Header))
				} else {
					v.checkHeaderName(s, gp+".key.header", k.Header)
				}
			}
		}
	}
}

// checkLocalRateLimit checks a token bucket at p.
func (v *validator) checkLocalRateLimit(s subject, p string, l *LocalRateLimit) {
	if !s.src.valid(p) {
		return
	}
	if s.src.valid(p+".requests") && (l.Requests < 1 || l.Requests > math.MaxUint32) {
		v.errorf(s, p+".requests", "%d is out of range; add at least 1 token per interval", l.Requests)
	}
	if s.src.valid(p + ".interval") {
		d, err := time.ParseDuration(l.Interval)
		switch {
		case err != nil:
			v.errorf(s, p+".interval", "%q is not a duration; write it like \"1s\" or \"1m\"", excerpt(l.Interval))
		case d < minLocalInterval:
			v.errorf(s, p+".interval", "interval %q is shorter than Envoy's minimum of 50ms; use a longer interval and more requests", excerpt(l.Interval))
		case d%time.Millisecond != 0:
			v.errorf(s, p+".interval", "interval %q is finer than a millisecond, which Envoy does not honour; round it", excerpt(l.Interval))
		}
	}
	if s.src.valid(p+".burst") && s.src.valid(p+".requests") && (l.Burst < l.Requests || l.Burst > math.MaxUint32) {
		v.errorf(s, p+".burst", "burst %d is smaller than requests %d: the bucket could never hold one interval's tokens; raise it or remove burst", l.Burst, l.Requests)
	}
	if s.src.valid(p+".status") && !slices.Contains(limitedStatuses, l.Status) {
		v.errorf(s, p+".status", "status %d is not an HTTP error status Envoy can answer; use 429 (the default), 503 or another 4xx or 5xx status", l.Status)
	}
}

// checkRoutesRateLimits checks the rateLimit of each route in a route list at spec.routes.
func (v *validator) checkRoutesRateLimits(s subject, routes []Route) {
	for i := range routes {
		r := &routes[i]
		p := fmt.Sprintf("spec.routes[%d]", i)
		if r.RateLimit == nil || !s.src.valid(p) {
			continue
		}
		if r.Delegate != nil {
			v.errorf(s, p+".rateLimit", "a delegating route cannot have rate limits; put them on the routes of the RouteTable, or on the VirtualService")
			continue
		}
		v.checkRateLimitPolicy(s, p+".rateLimit", r.RateLimit, r.Upstream != "" || len(r.Destinations) > 0 || r.UpstreamGroup != "" || r.Lambda != nil)
	}
}
