package config

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// RouteOptions change how a route forwards the requests it matches: rewrites, header changes,
// timeouts and retries. Absent fields keep Envoy's behaviour.
type RouteOptions struct {
	// PrefixRewrite replaces the matched prefix of the path before it goes upstream (prefix
	// matches only). Not with RegexRewrite.
	PrefixRewrite string `yaml:"prefixRewrite,omitempty"`
	// RegexRewrite rewrites the path with a regular expression. Not with PrefixRewrite.
	RegexRewrite *RegexRewrite `yaml:"regexRewrite,omitempty"`
	// HostRewrite replaces the Host header with this name. At most one of HostRewrite,
	// AutoHostRewrite and HostRewriteHeader.
	HostRewrite string `yaml:"hostRewrite,omitempty"`
	// AutoHostRewrite replaces the Host header with the host name of the chosen upstream host
	// (DNS Upstreams).
	AutoHostRewrite bool `yaml:"autoHostRewrite,omitempty"`
	// HostRewriteHeader replaces the Host header with the value of this request header.
	HostRewriteHeader string `yaml:"hostRewriteHeader,omitempty"`

	// RequestHeadersToAdd are appended to the request before it goes upstream.
	RequestHeadersToAdd []HeaderValue `yaml:"requestHeadersToAdd,omitempty"`
	// RequestHeadersToSet replace any value the request has.
	RequestHeadersToSet []HeaderValue `yaml:"requestHeadersToSet,omitempty"`
	// RequestHeadersToRemove are removed from the request before it goes upstream.
	RequestHeadersToRemove []string `yaml:"requestHeadersToRemove,omitempty"`
	// ResponseHeadersToAdd are appended to the response.
	ResponseHeadersToAdd []HeaderValue `yaml:"responseHeadersToAdd,omitempty"`
	// ResponseHeadersToSet replace any value the response has.
	ResponseHeadersToSet []HeaderValue `yaml:"responseHeadersToSet,omitempty"`
	// ResponseHeadersToRemove are removed from the response.
	ResponseHeadersToRemove []string `yaml:"responseHeadersToRemove,omitempty"`

	// Timeout bounds the whole exchange with the upstream, retries included ("15s", Envoy's
	// default).
	Timeout string `yaml:"timeout,omitempty"`
	// IdleTimeout ends a request whose stream has been silent this long.
	IdleTimeout string `yaml:"idleTimeout,omitempty"`
	// Retries retries failed requests.
	Retries *RetryPolicy `yaml:"retries,omitempty"`

	// Mirror copies requests to another Upstream and discards its answers.
	Mirror *Mirror `yaml:"mirror,omitempty"`
	// Faults delay or abort a share of the requests, to test how clients cope.
	Faults *Faults `yaml:"faults,omitempty"`
	// CORS answers cross-origin requests; it replaces the VirtualService's policy for this route.
	CORS *CORSPolicy `yaml:"cors,omitempty"`
	// WebSocket allows (true) or refuses (false) WebSocket upgrades on this route, whatever the
	// Gateway's websocket option says.
	WebSocket *bool `yaml:"websocket,omitempty"`
	// HashPolicy says what a ringHash or maglev Upstream hashes to pick a host, so that requests
	// with the same inputs reach the same host.
	HashPolicy []HashPolicy `yaml:"hashPolicy,omitempty"`
}

// Mirror sends a copy of a share of the requests to another Upstream (shadowing).
type Mirror struct {
	Upstream string `yaml:"upstream"`
	// Percentage of requests copied, above 0 and at most 100. Default 100.
	Percentage float64 `yaml:"percentage,omitempty"`
}

// Faults are injected before the request is routed: at least one of Delay and Abort.
type Faults struct {
	Delay *FaultDelay `yaml:"delay,omitempty"`
	Abort *FaultAbort `yaml:"abort,omitempty"`
}

// FaultDelay holds a share of the requests for a fixed time before they go on.
type FaultDelay struct {
	Fixed string `yaml:"fixed"`
	// Percentage of requests delayed, above 0 and at most 100. Default 100.
	Percentage float64 `yaml:"percentage,omitempty"`
}

// FaultAbort answers a share of the requests with a status instead of routing them.
type FaultAbort struct {
	Status int `yaml:"status"`
	// Percentage of requests aborted, above 0 and at most 100. Default 100.
	Percentage float64 `yaml:"percentage,omitempty"`
}

// CORSPolicy says which cross-origin requests browsers may make.
type CORSPolicy struct {
	// AllowOrigins are the origins allowed; "*" (exact) allows every origin.
	AllowOrigins []OriginMatch `yaml:"allowOrigins"`
	// AllowMethods are the methods allowed (access-control-allow-methods).
	AllowMethods []string `yaml:"allowMethods,omitempty"`
	// AllowHeaders are the request headers allowed (access-control-allow-headers).
	AllowHeaders []string `yaml:"allowHeaders,omitempty"`
	// ExposeHeaders are the response headers scripts may read (access-control-expose-headers).
	ExposeHeaders []string `yaml:"exposeHeaders,omitempty"`
	// MaxAge is how long browsers may cache a preflight answer, in whole seconds ("10m").
	MaxAge string `yaml:"maxAge,omitempty"`
	// AllowCredentials lets requests carry cookies and authorization.
	AllowCredentials bool `yaml:"allowCredentials,omitempty"`
}

// OriginMatch is one allowed origin: exactly one of Exact and Regex.
type OriginMatch struct {
	Exact string `yaml:"exact,omitempty"`
	Regex string `yaml:"regex,omitempty"`
}

// RegexRewrite rewrites every match of Pattern in the path to Substitution.
type RegexRewrite struct {
	// Pattern is an RE2 regular expression.
	Pattern string `yaml:"pattern"`
	// Substitution may refer to capture groups as \1, \2, ...
	Substitution string `yaml:"substitution"`
}

// RetryPolicy says when and how often a failed request is tried again.
type RetryPolicy struct {
	// RetryOn lists the conditions that trigger a retry, Envoy's x-envoy-retry-on values.
	RetryOn []string `yaml:"retryOn"`
	// NumRetries is the number of retries after the first attempt. Default 1.
	NumRetries int `yaml:"numRetries,omitempty"`
	// PerTryTimeout bounds each attempt.
	PerTryTimeout string `yaml:"perTryTimeout,omitempty"`
	// RetriableStatusCodes are the statuses retried under retriable-status-codes.
	RetriableStatusCodes []int `yaml:"retriableStatusCodes,omitempty"`
	// Backoff spaces the retries.
	Backoff *RetryBackoff `yaml:"backoff,omitempty"`
}

// RetryBackoff is an exponential backoff with jitter between retries.
type RetryBackoff struct {
	// BaseInterval is the first wait ("25ms", Envoy's default).
	BaseInterval string `yaml:"baseInterval"`
	// MaxInterval caps the wait. Default 10 times BaseInterval.
	MaxInterval string `yaml:"maxInterval,omitempty"`
}

// retryOnConditions are the retry conditions Envoy's router understands.
var retryOnConditions = []string{
	"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "envoy-ratelimited",
	"retriable-4xx", "refused-stream", "retriable-status-codes", "retriable-headers",
	"http3-post-connect-failure",
	// gRPC status conditions.
	"cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
}

// forwardingOptions are the route options that act on a request forwarded upstream, and so
// need an upstream or destinations action.
var forwardingOptions = []string{"prefixRewrite", "regexRewrite", "hostRewrite", "autoHostRewrite", "hostRewriteHeader",
	"timeout", "idleTimeout", "retries", "mirror", "websocket", "hashPolicy"}

// checkRouteOptions checks the options of the route at p.
func (v *validator) checkRouteOptions(s subject, p string, r *Route) {
	o, op := r.Options, p+".options"
	if o == nil || !s.src.valid(op) {
		return
	}
	has := func(f string) bool { return s.src.has(op + "." + f) }
	if s.src.has(p + ".delegate") {
		v.errorf(s, op, "a delegating route forwards nothing itself; set options on the routes of the RouteTable it delegates to")
		return
	}
	forwards := s.src.has(p+".upstream") || s.src.has(p+".destinations") || s.src.has(p+".upstreamGroup") || s.src.has(p+".lambda")
	if !forwards {
		for _, f := range forwardingOptions {
			if has(f) {
				v.errorf(s, op+"."+f, "%s applies to requests sent upstream; this route answers itself, so use upstream or destinations, or remove it", f)
			}
		}
	}
	if has("prefixRewrite") && has("regexRewrite") {
		v.errorf(s, op, "set only one of prefixRewrite or regexRewrite")
	}
	if s.src.valid(op+".prefixRewrite") && forwards {
		if !strings.HasPrefix(o.PrefixRewrite, "/") {
			v.errorf(s, op+".prefixRewrite", "path %q must start with \"/\"", excerpt(o.PrefixRewrite))
		} else if s.src.valid(p+".match") && !s.src.has(p+".match.prefix") {
			v.errorf(s, op+".prefixRewrite", "prefixRewrite replaces the matched prefix, so the route must match by prefix; use regexRewrite instead")
		}
	}
	if rw := o.RegexRewrite; rw != nil && s.src.valid(op+".regexRewrite") {
		v.checkRegex(s, op+".regexRewrite.pattern", rw.Pattern)
	}
	var hostSet []string
	for _, f := range []string{"hostRewrite", "autoHostRewrite", "hostRewriteHeader"} {
		if has(f) {
			hostSet = append(hostSet, f)
		}
	}
	if len(hostSet) > 1 {
		v.errorf(s, op, "set only one of %s", strings.Join(hostSet, ", "))
	}
	if s.src.valid(op+".hostRewrite") && !validHostname(o.HostRewrite) {
		v.errorf(s, op+".hostRewrite", "%q is not a host name; use a name such as \"api.internal\"", excerpt(o.HostRewrite))
	}
	if s.src.valid(op+".autoHostRewrite") && !o.AutoHostRewrite {
		v.errorf(s, op+".autoHostRewrite", "autoHostRewrite: false is the default; remove it")
	}
	if s.src.valid(op+".hostRewriteHeader") && strings.HasPrefix(o.HostRewriteHeader, ":") {
		v.errorf(s, op+".hostRewriteHeader", "pseudo-header %q cannot carry a host; use an ordinary header name", excerpt(o.HostRewriteHeader))
	} else {
		v.checkHeaderName(s, op+".hostRewriteHeader", o.HostRewriteHeader)
	}
	v.checkHeadersToAdd(s, op+".requestHeadersToAdd", o.RequestHeadersToAdd)
	v.checkHeadersToAdd(s, op+".requestHeadersToSet", o.RequestHeadersToSet)
	v.checkHeadersToRemove(s, op+".requestHeadersToRemove", o.RequestHeadersToRemove)
	v.checkHeadersToAdd(s, op+".responseHeadersToAdd", o.ResponseHeadersToAdd)
	v.checkHeadersToAdd(s, op+".responseHeadersToSet", o.ResponseHeadersToSet)
	v.checkHeadersToRemove(s, op+".responseHeadersToRemove", o.ResponseHeadersToRemove)
	v.checkDuration(s, op+".timeout", o.Timeout)
	v.checkDuration(s, op+".idleTimeout", o.IdleTimeout)
	if o.Retries != nil && s.src.valid(op+".retries") {
		v.checkRetries(s, op+".retries", o.Retries)
	}
	if m := o.Mirror; m != nil && s.src.valid(op+".mirror") {
		if s.src.valid(op+".mirror.upstream") && v.upstreams[m.Upstream] == nil {
			v.errorf(s, op+".mirror.upstream", "%s", notDefined(KindUpstream, m.Upstream, v.upstreamNames))
		}
		v.checkNotLambdaUpstream(s, op+".mirror.upstream", m.Upstream)
		v.checkPercentage(s, op+".mirror.percentage", m.Percentage)
	}
	if f := o.Faults; f != nil && s.src.valid(op+".faults") {
		v.checkFaults(s, op+".faults", f)
	}
	if o.CORS != nil && s.src.valid(op+".cors") {
		v.checkCORS(s, op+".cors", o.CORS)
	}
	if forwards {
		v.checkHashPolicy(s, p, r)
	}
}

func (v *validator) checkFaults(s subject, p string, f *Faults) {
	if !s.src.has(p+".delay") && !s.src.has(p+".abort") {
		v.errorf(s, p, "no fault; set delay, abort or both")
	}
	if d := f.Delay; d != nil && s.src.valid(p+".delay") {
		v.checkDuration(s, p+".delay.fixed", d.Fixed)
		v.checkPercentage(s, p+".delay.percentage", d.Percentage)
	}
	if a := f.Abort; a != nil && s.src.valid(p+".abort") {
		if s.src.valid(p+".abort.status") && (a.Status < 200 || a.Status > 599) {
			v.errorf(s, p+".abort.status", "status %d is out of range; use 200-599", a.Status)
		}
		v.checkPercentage(s, p+".abort.percentage", a.Percentage)
	}
}

// checkPercentage checks a share of requests; Envoy counts it in millionths.
func (v *validator) checkPercentage(s subject, field string, pct float64) {
	// Written so that NaN (YAML's .nan) fails too.
	if s.src.valid(field) && !(pct > 0 && pct <= 100) {
		v.errorf(s, field, "percentage %v is out of range; use more than 0 and at most 100 (remove the field for 100)", pct)
	}
}

func (v *validator) checkCORS(s subject, p string, c *CORSPolicy) {
	if s.src.valid(p+".allowOrigins") && len(c.AllowOrigins) == 0 {
		v.errorf(s, p+".allowOrigins", "no origins; list at least one {exact: https://app.example.com} or {regex: ...}, or {exact: \"*\"} for any")
	}
	for i, o := range c.AllowOrigins {
		op := fmt.Sprintf("%s.allowOrigins[%d]", p, i)
		if !s.src.valid(op) {
			continue
		}
		switch has, hasRE := s.src.has(op+".exact"), s.src.has(op+".regex"); {
		case has && hasRE:
			v.errorf(s, op, "set only one of exact, regex")
		case !has && !hasRE:
			v.errorf(s, op, "no origin; set exact or regex")
		case hasRE:
			v.checkRegex(s, op+".regex", o.Regex)
		}
	}
	for i, m := range c.AllowMethods {
		if mp := fmt.Sprintf("%s.allowMethods[%d]", p, i); s.src.valid(mp) && !slices.Contains(httpMethods, m) {
			v.errorf(s, mp, "unknown method %q; use one of %s%s", excerpt(m), strings.Join(httpMethods, ", "), didYouMean(m, httpMethods))
		}
	}
	for _, list := range []struct {
		field string
		names []string
	}{{p + ".allowHeaders", c.AllowHeaders}, {p + ".exposeHeaders", c.ExposeHeaders}} {
		for i, h := range list.names {
			v.checkHeaderName(s, fmt.Sprintf("%s[%d]", list.field, i), h)
		}
	}
	v.checkDuration(s, p+".maxAge", c.MaxAge)
	if d, err := time.ParseDuration(c.MaxAge); err == nil && s.src.valid(p+".maxAge") && d%time.Second != 0 {
		v.errorf(s, p+".maxAge", "maxAge %q is not whole seconds, which is all browsers read; round it", excerpt(c.MaxAge))
	}
	if s.src.valid(p+".allowCredentials") && !c.AllowCredentials {
		v.errorf(s, p+".allowCredentials", "allowCredentials: false is the default; remove it")
	}
}

func (v *validator) checkRetries(s subject, p string, rp *RetryPolicy) {
	if s.src.valid(p+".retryOn") && len(rp.RetryOn) == 0 {
		v.errorf(s, p+".retryOn", "no conditions; list at least one, such as 5xx or connect-failure")
	}
	seen := map[string]bool{}
	for i, c := range rp.RetryOn {
		cp := fmt.Sprintf("%s.retryOn[%d]", p, i)
		switch {
		case !s.src.valid(cp):
		case !slices.Contains(retryOnConditions, c):
			v.errorf(s, cp, "unknown retry condition %q; use one of %s%s", excerpt(c), strings.Join(retryOnConditions, ", "), didYouMean(c, retryOnConditions))
		case seen[c]:
			v.errorf(s, cp, "condition %q is listed more than once; remove the repeat", c)
		}
		seen[c] = true
	}
	if s.src.valid(p+".numRetries") && (rp.NumRetries < 1 || rp.NumRetries > math.MaxUint32) {
		v.errorf(s, p+".numRetries", "%d is out of range; use 1 or more (remove retries to turn them off)", rp.NumRetries)
	}
	v.checkDuration(s, p+".perTryTimeout", rp.PerTryTimeout)
	if s.src.valid(p+".retriableStatusCodes") && s.src.valid(p+".retryOn") && !seen["retriable-status-codes"] {
		v.errorf(s, p+".retriableStatusCodes", "the codes are retried only under the retriable-status-codes condition; add it to retryOn")
	}
	for i, c := range rp.RetriableStatusCodes {
		if cp := fmt.Sprintf("%s.retriableStatusCodes[%d]", p, i); s.src.valid(cp) && (c < 100 || c > 599) {
			v.errorf(s, cp, "status %d is out of range; use 100-599", c)
		}
	}
	if b := rp.Backoff; b != nil && s.src.valid(p+".backoff") {
		v.checkDuration(s, p+".backoff.baseInterval", b.BaseInterval)
		v.checkDuration(s, p+".backoff.maxInterval", b.MaxInterval)
		base, errB := time.ParseDuration(b.BaseInterval)
		limit, errM := time.ParseDuration(b.MaxInterval)
		if errB == nil && errM == nil && s.src.valid(p+".backoff.maxInterval") && limit < base {
			v.errorf(s, p+".backoff.maxInterval", "maxInterval %s is shorter than baseInterval %s; raise it", b.MaxInterval, b.BaseInterval)
		}
	}
}

// checkHeadersToAdd checks headers a route or VirtualService adds or sets.
func (v *validator) checkHeadersToAdd(s subject, field string, headers []HeaderValue) {
	for i, h := range headers {
		p := fmt.Sprintf("%s[%d]", field, i)
		if s.src.valid(p+".name") && strings.HasPrefix(h.Name, ":") {
			v.errorf(s, p+".name", "pseudo-header %q cannot be added; use an ordinary header name", excerpt(h.Name))
		} else {
			v.checkHeaderName(s, p+".name", h.Name)
		}
		if s.src.valid(p+".value") && strings.ContainsAny(h.Value, "\r\n\x00") {
			v.errorf(s, p+".value", "header value contains a line break or NUL; remove it")
		}
	}
}

// checkHeadersToRemove checks header names a route or VirtualService removes.
func (v *validator) checkHeadersToRemove(s subject, field string, names []string) {
	for i, name := range names {
		p := fmt.Sprintf("%s[%d]", field, i)
		if s.src.valid(p) && (strings.HasPrefix(name, ":") || strings.EqualFold(name, "host")) {
			v.errorf(s, p, "header %q cannot be removed; Envoy needs it to route", excerpt(name))
			continue
		}
		v.checkHeaderName(s, p, name)
	}
}
