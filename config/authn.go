package config

import (
	"fmt"
	"strings"
)

// IdentityHeader carries the identity Portico authenticated (the API key's identity or the
// basic-auth user) to the upstream. Portico sets it on every request it authenticates and
// removes it from every other request, so an upstream can trust it.
const IdentityHeader = "x-portico-identity"

// Defaults of API key and basic authentication.
const (
	DefaultAPIKeyHeader = "x-api-key"
	DefaultRealm        = "portico"
)

// APIKeyAuth requires an API key: requests without a key of one of the Secrets get 401.
type APIKeyAuth struct {
	// Secrets name the apiKeys Secrets whose keys are accepted. Required unless disabled.
	Secrets []string `yaml:"secrets,omitempty"`
	// Header is the request header that carries the key. Default x-api-key, unless
	// queryParameter is set.
	Header string `yaml:"header,omitempty"`
	// QueryParameter reads the key from this query parameter instead of a header.
	QueryParameter string `yaml:"queryParameter,omitempty"`
	// Disabled, on a route, turns the VirtualService's apiKey off for that route.
	Disabled bool `yaml:"disabled,omitempty"`
}

// BasicAuth requires HTTP basic authentication: requests without the credentials of a user of
// the Secret get 401 with a www-authenticate challenge.
type BasicAuth struct {
	// Secret names the htpasswd Secret of the users. Required unless disabled.
	Secret string `yaml:"secret,omitempty"`
	// Realm is named in the challenge; browsers show it. Default "portico".
	Realm string `yaml:"realm,omitempty"`
	// Disabled, on a route, turns the VirtualService's basicAuth off for that route.
	Disabled bool `yaml:"disabled,omitempty"`
}

// KeyHeader is the header that carries the key, "" when the key is a query parameter.
func (a *APIKeyAuth) KeyHeader() string {
	switch {
	case a.Header != "":
		return strings.ToLower(a.Header)
	case a.QueryParameter != "":
		return ""
	default:
		return DefaultAPIKeyHeader
	}
}

// RealmName applies Realm's default.
func (b *BasicAuth) RealmName() string {
	if b.Realm == "" {
		return DefaultRealm
	}
	return b.Realm
}

// Authentication is what Portico's own authentication asks of requests on one route: the
// VirtualService's apiKey and basicAuth as the route changes them. A nil field is not asked;
// with both set, either credential is enough.
type Authentication struct {
	APIKey    *APIKeyAuth
	BasicAuth *BasicAuth
}

// Required reports whether the route needs a credential at all.
func (a Authentication) Required() bool { return a.APIKey != nil || a.BasicAuth != nil }

// RouteAuthentication is the authentication a route of a VirtualService with policy vs (may be
// nil) asks for, given the route's own security (may be nil).
func RouteAuthentication(vs *SecurityPolicy, route *RouteSecurity) Authentication {
	var a Authentication
	if vs != nil {
		a = Authentication{APIKey: vs.APIKey, BasicAuth: vs.BasicAuth}
	}
	if route == nil {
		return a
	}
	if route.Disabled {
		return Authentication{}
	}
	if k := route.APIKey; k != nil {
		a.APIKey = k
		if k.Disabled {
			a.APIKey = nil
		}
	}
	if b := route.BasicAuth; b != nil {
		a.BasicAuth = b
		if b.Disabled {
			a.BasicAuth = nil
		}
	}
	return a
}

// checkVirtualServiceSecurity checks the apiKey and basicAuth of a VirtualService's
// spec.security.
func (v *validator) checkVirtualServiceSecurity(s subject, sp *SecurityPolicy) {
	const p = "spec.security"
	if sp.APIKey != nil {
		v.checkAPIKeyAuth(s, p+".apiKey", sp.APIKey, false)
	}
	if sp.BasicAuth != nil {
		v.checkBasicAuth(s, p+".basicAuth", sp.BasicAuth, false)
	}
}

// checkRouteAuthn checks the apiKey and basicAuth of a route's security block at p.
func (v *validator) checkRouteAuthn(s subject, p string, rs *RouteSecurity) {
	if rs.Disabled {
		if rs.APIKey != nil || rs.BasicAuth != nil {
			v.errorf(s, p, "the route opts out of all security (disabled: true); remove apiKey and basicAuth, or remove disabled")
		}
		return
	}
	if rs.APIKey != nil {
		v.checkAPIKeyAuth(s, p+".apiKey", rs.APIKey, true)
	}
	if rs.BasicAuth != nil {
		v.checkBasicAuth(s, p+".basicAuth", rs.BasicAuth, true)
	}
}

// checkAPIKeyAuth checks an apiKey policy at p; onRoute allows disabled.
func (v *validator) checkAPIKeyAuth(s subject, p string, a *APIKeyAuth, onRoute bool) {
	if !s.src.valid(p) {
		return
	}
	if a.Disabled {
		switch {
		case !onRoute:
			v.errorf(s, p+".disabled", "disabled is for routes; to require no API key here, remove apiKey")
		case len(a.Secrets) > 0 || a.Header != "" || a.QueryParameter != "":
			v.errorf(s, p, "disabled turns apiKey off for the route; remove the other settings, or remove disabled")
		}
		return
	}
	if len(a.Secrets) == 0 && !s.src.has(p+".secrets") {
		v.errorf(s, p, "missing secrets: name at least one Secret of type %s", SecretTypeAPIKeys)
	} else if len(a.Secrets) == 0 {
		v.errorf(s, p+".secrets", "no secrets; name at least one Secret of type %s", SecretTypeAPIKeys)
	}
	seen := map[string]bool{}
	for i, name := range a.Secrets {
		sp := fmt.Sprintf("%s.secrets[%d]", p, i)
		if seen[name] {
			v.errorf(s, sp, "Secret %q is listed more than once; remove the repeat", excerpt(name))
			continue
		}
		seen[name] = true
		v.checkSecretRef(s, sp, name, SecretTypeAPIKeys)
	}
	if a.Header != "" && a.QueryParameter != "" {
		v.errorf(s, p, "set header or queryParameter, not both: the key is read from one place")
	}
	if s.src.valid(p + ".header") {
		switch {
		case strings.HasPrefix(a.Header, ":"):
			v.errorf(s, p+".header", "pseudo-header %q cannot carry a key; use an ordinary header such as %s", excerpt(a.Header), DefaultAPIKeyHeader)
		case strings.EqualFold(a.Header, IdentityHeader):
			v.errorf(s, p+".header", "%s is where Portico puts the authenticated identity; read the key from another header", IdentityHeader)
		default:
			v.checkHeaderName(s, p+".header", a.Header)
		}
	}
	if s.src.valid(p+".queryParameter") && (len(a.QueryParameter) > 128 || !queryParamRE.MatchString(a.QueryParameter)) {
		v.errorf(s, p+".queryParameter", "%q is not a plain query parameter name; use 1-128 letters, digits and . _ ~ -", excerpt(a.QueryParameter))
	}
}

// checkBasicAuth checks a basicAuth policy at p; onRoute allows disabled.
func (v *validator) checkBasicAuth(s subject, p string, b *BasicAuth, onRoute bool) {
	if !s.src.valid(p) {
		return
	}
	if b.Disabled {
		switch {
		case !onRoute:
			v.errorf(s, p+".disabled", "disabled is for routes; to require no basic credentials here, remove basicAuth")
		case b.Secret != "" || b.Realm != "":
			v.errorf(s, p, "disabled turns basicAuth off for the route; remove the other settings, or remove disabled")
		}
		return
	}
	if b.Secret == "" && !s.src.has(p+".secret") {
		v.errorf(s, p, "missing secret: name a Secret of type %s", SecretTypeHtpasswd)
	}
	v.checkSecretRef(s, p+".secret", b.Secret, SecretTypeHtpasswd)
	if s.src.valid(p+".realm") && (b.Realm == "" || len(b.Realm) > 128 || strings.ContainsAny(b.Realm, "\"\\") || !printable(b.Realm)) {
		v.errorf(s, p+".realm", "a realm is 1-128 printable characters without quotes or backslashes, such as \"shop\"")
	}
}

func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// identityKeys returns the field paths of the global limits of a rateLimit at p that are keyed
// by identity.
func identityKeys(src Source, p string, rl *RateLimitPolicy) []string {
	if rl == nil {
		return nil
	}
	var out []string
	for i, g := range rl.Global {
		kp := fmt.Sprintf("%s.global[%d].key.identity", p, i)
		if g.Key != nil && g.Key.Identity && src.valid(kp) {
			out = append(out, kp)
		}
	}
	return out
}

// checkIdentityKeys checks the global limits of a VirtualService (its own, and its routes')
// that are keyed by identity: an identity exists only where API keys or basic auth are asked
// for, and elsewhere the limit would silently count nothing.
func (v *validator) checkIdentityKeys(s subject, vs *VirtualService) {
	sp := vs.Spec.Security
	for _, kp := range identityKeys(*s.src, "spec.rateLimit", vs.Spec.RateLimit) {
		if !RouteAuthentication(sp, nil).Required() {
			v.errorf(s, kp, "the VirtualService authenticates nobody, so no request has an identity and the limit would count nothing; add spec.security.apiKey or basicAuth, or key the limit by header or clientIP")
		}
	}
	for i := range vs.Spec.Routes {
		r := &vs.Spec.Routes[i]
		for _, kp := range identityKeys(*s.src, fmt.Sprintf("spec.routes[%d].rateLimit", i), r.RateLimit) {
			if !RouteAuthentication(sp, r.Security).Required() {
				v.errorf(s, kp, "the route authenticates nobody (no apiKey or basicAuth applies to it), so no request has an identity and the limit would count nothing; add one, or key the limit by header or clientIP")
			}
		}
	}
}

// checkRouteTableIdentityKeys checks the identity-keyed limits of a RouteTable's routes that
// turn every credential off themselves; the others depend on the VirtualService that delegates.
func (v *validator) checkRouteTableIdentityKeys(s subject, routes []Route) {
	for i := range routes {
		r := &routes[i]
		rs := r.Security
		if rs == nil {
			continue
		}
		off := rs.Disabled || (rs.APIKey != nil && rs.APIKey.Disabled && rs.BasicAuth != nil && rs.BasicAuth.Disabled)
		if !off {
			continue
		}
		for _, kp := range identityKeys(*s.src, fmt.Sprintf("spec.routes[%d].rateLimit", i), r.RateLimit) {
			v.errorf(s, kp, "the route turns API keys and basic auth off, so no request has an identity and the limit would count nothing; key the limit by header or clientIP")
		}
	}
}

// UsesAuthentication reports whether any VirtualService or RouteTable asks for Portico's
// authentication, which makes the identity header Portico's to set everywhere.
func (c *Config) UsesAuthentication() bool {
	for _, vs := range c.VirtualServices {
		if s := vs.Spec.Security; s != nil && (s.APIKey != nil || s.BasicAuth != nil) {
			return true
		}
		for i := range vs.Spec.Routes {
			if RouteAuthentication(nil, vs.Spec.Routes[i].Security).Required() {
				return true
			}
		}
	}
	for _, rt := range c.RouteTables {
		for i := range rt.Spec.Routes {
			if RouteAuthentication(nil, rt.Spec.Routes[i].Security).Required() {
				return true
			}
		}
	}
	return false
}
