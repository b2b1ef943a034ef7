package config

import (
	"fmt"
	"strings"
	"time"
)

// The failure modes of external authorization.
const (
	ExtAuthFailureDeny  = "deny"
	ExtAuthFailureAllow = "allow"
)

// DefaultExtAuthTimeout bounds each check when extAuth.timeout is left out.
const DefaultExtAuthTimeout = "1s"

// ExtAuth asks the user's own authorization server about every request of a VirtualService:
// exactly one of GRPC and HTTP is set. The server's answer is final: an allowed request goes
// upstream (with any headers the server adds), a denied one gets the server's answer.
type ExtAuth struct {
	// GRPC asks a server implementing Envoy's envoy.service.auth.v3 Authorization/Check.
	GRPC *ExtAuthGRPC `yaml:"grpc,omitempty"`
	// HTTP asks a plain HTTP server: a 2xx answer allows the request, any other answer is
	// sent to the client as it is.
	HTTP *ExtAuthHTTP `yaml:"http,omitempty"`
	// Timeout bounds each check ("500ms"). Default 1s.
	Timeout string `yaml:"timeout,omitempty"`
	// FailureMode is what happens when the server cannot answer in time: deny (default, 403)
	// or allow (the request goes upstream, marked with x-envoy-auth-failure-mode-allowed).
	FailureMode string `yaml:"failureMode,omitempty"`
}

// ExtAuthGRPC is a gRPC authorization server.
type ExtAuthGRPC struct {
	// Upstream is the server; it must speak HTTP/2 (options.http2: true).
	Upstream string `yaml:"upstream"`
}

// ExtAuthHTTP is an HTTP authorization server. It receives the client's method and path
// (after PathPrefix), Host, Authorization, Content-Length and RequestHeaders, without the body.
type ExtAuthHTTP struct {
	// Upstream is the server.
	Upstream string `yaml:"upstream"`
	// PathPrefix is put before the client's path in the check request ("/auth").
	PathPrefix string `yaml:"pathPrefix,omitempty"`
	// RequestHeaders are the client's request headers sent to the server besides those above.
	RequestHeaders []string `yaml:"requestHeaders,omitempty"`
	// UpstreamHeaders are the headers of the server's allowing answer that are set on the
	// request to the upstream, such as x-user.
	UpstreamHeaders []string `yaml:"upstreamHeaders,omitempty"`
}

// RouteExtAuth changes the VirtualService's external authorization for one route.
type RouteExtAuth struct {
	// Disabled must be true: the route is not sent to the authorization server.
	Disabled bool `yaml:"disabled"`
}

// FailsOpen applies FailureMode's default.
func (e *ExtAuth) FailsOpen() bool { return e.FailureMode == ExtAuthFailureAllow }

// TimeoutDuration applies Timeout's default; validation has rejected values that do not parse.
func (e *ExtAuth) TimeoutDuration() time.Duration {
	t := e.Timeout
	if t == "" {
		t = DefaultExtAuthTimeout
	}
	d, _ := time.ParseDuration(t)
	return d
}

// RouteUsesExtAuth reports whether requests of a route with security route (may be nil), of
// a VirtualService with policy vs (may be nil), go to the external authorization server.
func RouteUsesExtAuth(vs *SecurityPolicy, route *RouteSecurity) bool {
	if vs == nil || vs.ExtAuth == nil {
		return false
	}
	return route == nil || (!route.Disabled && route.ExtAuth == nil)
}

// checkExtAuth checks a VirtualService's spec.security.extAuth.
func (v *validator) checkExtAuth(s subject, e *ExtAuth) {
	const p = "spec.security.extAuth"
	if e == nil || !s.src.valid(p) {
		return
	}
	switch {
	case e.GRPC == nil && e.HTTP == nil:
		v.errorf(s, p, "set grpc or http: which kind of authorization server to ask")
	case e.GRPC != nil && e.HTTP != nil:
		v.errorf(s, p, "set grpc or http, not both")
	}
	if g := e.GRPC; g != nil && s.src.valid(p+".grpc.upstream") {
		if u := v.checkExtAuthUpstream(s, p+".grpc.upstream", g.Upstream); u != nil && (u.Spec.Options == nil || !u.Spec.Options.HTTP2) {
			v.errorf(s, p+".grpc.upstream", "a gRPC authorization server needs HTTP/2; set spec.options.http2: true on Upstream %q (%s)",
				g.Upstream, u.Source.Doc)
		}
	}
	if h := e.HTTP; h != nil && s.src.valid(p+".http") {
		if s.src.valid(p + ".http.upstream") {
			v.checkExtAuthUpstream(s, p+".http.upstream", h.Upstream)
		}
		if s.src.valid(p+".http.pathPrefix") && (!strings.HasPrefix(h.PathPrefix, "/") || strings.ContainsAny(h.PathPrefix, "?# \t")) {
			v.errorf(s, p+".http.pathPrefix", "%q is not a path prefix; start it with / and leave out query and fragment", excerpt(h.PathPrefix))
		}
		for _, list := range []struct {
			field string
			names []string
		}{{"requestHeaders", h.RequestHeaders}, {"upstreamHeaders", h.UpstreamHeaders}} {
			for i, name := range list.names {
				hp := fmt.Sprintf("%s.http.%s[%d]", p, list.field, i)
				if s.src.valid(hp) && strings.HasPrefix(name, ":") {
					v.errorf(s, hp, "pseudo-header %q cannot be listed; use an ordinary header name", excerpt(name))
					continue
				}
				v.checkHeaderName(s, hp, name)
			}
		}
	}
	v.checkDuration(s, p+".timeout", e.Timeout)
	if s.src.valid(p+".failureMode") && e.FailureMode != ExtAuthFailureDeny && e.FailureMode != ExtAuthFailureAllow {
		v.errorf(s, p+".failureMode", "failure mode %q is not %s (answer 403 while the server cannot answer) or %s (let requests through)",
			excerpt(e.FailureMode), ExtAuthFailureDeny, ExtAuthFailureAllow)
	}
}

// checkExtAuthUpstream resolves an authorization server's Upstream.
func (v *validator) checkExtAuthUpstream(s subject, p, name string) *Upstream {
	u := v.upstreams[name]
	if u == nil {
		v.errorf(s, p, "%s", notDefined(KindUpstream, name, v.upstreamNames))
	}
	v.checkNotLambdaUpstream(s, p, name)
	return u
}

// checkRouteExtAuth checks a route's security.extAuth at p.
func (v *validator) checkRouteExtAuth(s subject, p string, rs *RouteSecurity) {
	if rs.ExtAuth == nil || !s.src.valid(p+".extAuth") {
		return
	}
	switch {
	case rs.Disabled:
		v.errorf(s, p+".extAuth", "the route opts out of all security (disabled: true); remove extAuth, or remove disabled")
	case s.src.valid(p+".extAuth.disabled") && !rs.ExtAuth.Disabled:
		v.errorf(s, p+".extAuth.disabled", "a route can only turn extAuth off (disabled: true); remove extAuth to keep the VirtualService's")
	}
}
