package config

import "fmt"

// SecurityPolicy authenticates and authorizes the requests of a VirtualService. It applies to
// every route of the VirtualService, including routes delegated to RouteTables; a route changes
// or opts out of it with its own security block (RouteSecurity).
type SecurityPolicy struct {
	// JWT requires (or accepts) JSON Web Tokens signed by the providers listed.
	JWT *JWTPolicy `yaml:"jwt,omitempty"`
	// APIKey requires a valid API key from one of the named apiKeys Secrets.
	APIKey *APIKeyAuth `yaml:"apiKey,omitempty"`
	// BasicAuth requires HTTP basic credentials of a user in the named htpasswd Secret. With
	// apiKey set too, either credential is enough.
	BasicAuth *BasicAuth `yaml:"basicAuth,omitempty"`
	// Authorization allows or denies requests by client address and headers; see AuthorizationPolicy.
	Authorization *AuthorizationPolicy `yaml:"authorization,omitempty"`
	// ExtAuth asks your own authorization server (gRPC or HTTP) about every request.
	ExtAuth *ExtAuth `yaml:"extAuth,omitempty"`
	// OIDC logs browser users in with an OpenID Connect provider; see OIDC.
	OIDC *OIDC `yaml:"oidc,omitempty"`
}

// RouteSecurity is a route's own security settings, which refine its VirtualService's.
type RouteSecurity struct {
	// Disabled opts the route out of every security check of its VirtualService, such as a
	// public health or login route.
	Disabled bool `yaml:"disabled,omitempty"`
	// JWT changes whether this route needs a token; see RouteJWT.
	JWT *RouteJWT `yaml:"jwt,omitempty"`
	// APIKey replaces the VirtualService's apiKey for this route, or turns it off.
	APIKey *APIKeyAuth `yaml:"apiKey,omitempty"`
	// BasicAuth replaces the VirtualService's basicAuth for this route, or turns it off.
	BasicAuth *BasicAuth `yaml:"basicAuth,omitempty"`
	// Authorization replaces the VirtualService's authorization policy for this route (on a
	// RouteTable's route too: it applies whichever VirtualService delegates there), or turns it
	// off with disabled: true.
	Authorization *AuthorizationPolicy `yaml:"authorization,omitempty"`
	// ExtAuth turns the VirtualService's external authorization off for this route.
	ExtAuth *RouteExtAuth `yaml:"extAuth,omitempty"`
	// OIDC turns the VirtualService's OIDC login off for this route.
	OIDC *RouteOIDC `yaml:"oidc,omitempty"`
}

// checkRoutesSecurity checks the security block of each route in a route list at spec.routes.
// jwt is the VirtualService's JWT policy; nil for a RouteTable, whose routes take the policy
// of whichever VirtualService delegates to them (checkJWTDelegation).
func (v *validator) checkRoutesSecurity(s subject, routes []Route, jwt *JWTPolicy, isRouteTable bool) {
	for i := range routes {
		r := &routes[i]
		p := fmt.Sprintf("spec.routes[%d].security", i)
		if r.Security == nil || !s.src.valid(p) {
			continue
		}
		if r.Delegate != nil {
			v.errorf(s, p, "a delegating route cannot have security settings; put them on the routes of the RouteTable, or on the VirtualService")
			continue
		}
		if s.src.valid(p+".disabled") && !r.Security.Disabled {
			v.errorf(s, p+".disabled", "disabled: false is the default; remove it")
		}
		if r.Security.Disabled && r.Security.JWT != nil && s.src.has(p+".jwt") {
			v.errorf(s, p+".jwt", "the route opts out of all security (disabled: true); remove jwt, or remove disabled to keep the other checks")
		} else {
			v.checkRouteJWT(s, p+".jwt", r.Security.JWT, jwt, isRouteTable)
		}
		v.checkRouteAuthn(s, p, r.Security)
		v.checkRouteExtAuth(s, p, r.Security)
		v.checkRouteOIDC(s, p, r.Security)
		// A VirtualService's own routes are checked with its policy in checkJWTClaimKeys.
		if off := r.Security.Disabled || (r.Security.JWT != nil && r.Security.JWT.Disabled); isRouteTable && off {
			for _, kp := range jwtClaimKeys(*s.src, fmt.Sprintf("spec.routes[%d].rateLimit", i), r.RateLimit) {
				v.errorf(s, kp, "the route checks no tokens (its security opts out of JWT), so no request has the claim and the limit would count nothing; remove the opt-out, or key the limit by header or clientIP")
			}
		}
		if r.Security.Disabled && r.Security.Authorization != nil && s.src.has(p+".authorization") {
			v.errorf(s, p+".authorization", "the route opts out of all security (disabled: true); remove authorization, or remove disabled to keep the other checks")
			continue
		}
		v.checkAuthorization(s, p+".authorization", r.Security.Authorization, true)
	}
}

// checkSecurity checks a VirtualService's spec.security and the security of its routes.
func (v *validator) checkSecurity(s subject, vs *VirtualService) {
	var jwt *JWTPolicy
	if sp := vs.Spec.Security; sp != nil && s.src.valid("spec.security") {
		v.checkJWTPolicy(s, sp.JWT)
		jwt = sp.JWT
		v.checkVirtualServiceSecurity(s, sp)
		v.checkAuthorization(s, "spec.security.authorization", sp.Authorization, false)
		v.checkExtAuth(s, sp.ExtAuth)
		v.checkOIDC(s, sp.OIDC)
	}
	v.checkRoutesSecurity(s, vs.Spec.Routes, jwt, false)
	v.checkJWTClaimKeys(s, vs)
	v.checkIdentityKeys(s, vs)
}
