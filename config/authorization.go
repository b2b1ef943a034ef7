package config

import (
	"fmt"
	"net/netip"
	"strings"
)

// DefaultDeniedBody is the body of the 403 a request refused by an authorization policy gets
// when the policy sets no deniedBody of its own.
const DefaultDeniedBody = "access denied: the gateway's authorization rules refuse this request\n"

// The actions of a header rule.
const (
	RuleAllow = "allow"
	RuleDeny  = "deny"
)

// AuthorizationPolicy allows or denies requests by client address and request headers, before
// any authentication runs. A request is refused with 403 when its client address is in Deny,
// when Allow is not empty and its address is in none of Allow, when it matches a header rule
// whose action is deny, or when it fails a header rule whose action is allow. The client
// address is the one the Gateway's useRemoteAddress and xffNumTrustedHops settle on (see
// docs/security.md).
type AuthorizationPolicy struct {
	// Allow lets only clients in these CIDR ranges through, such as 10.0.0.0/8 or
	// 2001:db8::/32; a single address (192.0.2.7) is a range of one. Empty: every address.
	Allow []string `yaml:"allow,omitempty"`
	// Deny refuses clients in these CIDR ranges, even when Allow lists them too.
	Deny []string `yaml:"deny,omitempty"`
	// Headers are rules on request headers; every one is checked.
	Headers []HeaderRule `yaml:"headers,omitempty"`
	// DeniedBody is the body of the 403 answer. Default: a one-line "access denied" message.
	DeniedBody string `yaml:"deniedBody,omitempty"`
	// Disabled, on a route, turns its VirtualService's authorization off for that route.
	Disabled bool `yaml:"disabled,omitempty"`
}

// HeaderRule is a condition on one request header (exactly one of Exact, Prefix, Regex and
// Present) and what a match means.
type HeaderRule struct {
	// Name is the header's name, matched without regard to case.
	Name string `yaml:"name"`
	// Exact matches a header with exactly this value.
	Exact string `yaml:"exact,omitempty"`
	// Prefix matches a header whose value starts with this.
	Prefix string `yaml:"prefix,omitempty"`
	// Regex matches a header whose whole value matches this RE2 expression.
	Regex string `yaml:"regex,omitempty"`
	// Present matches a request that has the header at all.
	Present bool `yaml:"present,omitempty"`
	// Action is allow (requests that do not match are refused) or deny (requests that match
	// are refused).
	Action string `yaml:"action"`
}

// Authorization returns the authorization policy that applies to route r of a VirtualService
// whose policy is sp: the route's own, the VirtualService's, or nil when there is none or the
// route opts out.
func Authorization(sp *SecurityPolicy, r *Route) *AuthorizationPolicy {
	if rs := r.Security; rs != nil {
		switch {
		case rs.Disabled:
			return nil
		case rs.Authorization != nil && rs.Authorization.Disabled:
			return nil
		case rs.Authorization != nil:
			return rs.Authorization
		}
	}
	if sp == nil {
		return nil
	}
	return sp.Authorization
}

// UsesAuthorization reports whether vs, one of its own routes, or a route of a RouteTable it
// delegates to (at any depth) has an authorization policy.
func (c *Config) UsesAuthorization(vs *VirtualService) bool {
	if sp := vs.Spec.Security; sp != nil && sp.Authorization != nil {
		return true
	}
	seen := map[*RouteTable]bool{}
	var walk func(routes []Route) bool
	walk = func(routes []Route) bool {
		for i := range routes {
			r := &routes[i]
			if r.Security != nil && r.Security.Authorization != nil && !r.Security.Authorization.Disabled {
				return true
			}
			if r.Delegate == nil {
				continue
			}
			for _, rt := range c.RouteTablesFor(r.Delegate) {
				if !seen[rt] {
					seen[rt] = true
					if walk(rt.Spec.Routes) {
						return true
					}
				}
			}
		}
		return false
	}
	return walk(vs.Spec.Routes)
}

// checkAuthorization checks the authorization policy at p. onRoute says whether p is a route's
// (of a VirtualService or a RouteTable), where disabled is allowed.
func (v *validator) checkAuthorization(s subject, p string, a *AuthorizationPolicy, onRoute bool) {
	if a == nil || !s.src.valid(p) {
		return
	}
	empty := len(a.Allow) == 0 && len(a.Deny) == 0 && len(a.Headers) == 0
	switch {
	case a.Disabled && !onRoute:
		v.errorf(s, p+".disabled", "disabled is for a route opting out of its VirtualService's authorization; remove the authorization block to have none")
		return
	case s.src.valid(p+".disabled") && !a.Disabled:
		v.errorf(s, p+".disabled", "disabled: false is the default; remove it")
	case a.Disabled && !empty || a.Disabled && a.DeniedBody != "":
		v.errorf(s, p, "a disabled authorization has no rules; remove disabled, or remove allow, deny, headers and deniedBody")
		return
	case a.Disabled:
		return
	case empty:
		v.errorf(s, p, "the policy has no rules; add allow, deny or headers, or remove it")
		return
	}
	for _, list := range []struct {
		field string
		cidrs []string
	}{{"allow", a.Allow}, {"deny", a.Deny}} {
		for i, c := range list.cidrs {
			f := fmt.Sprintf("%s.%s[%d]", p, list.field, i)
			if !s.src.valid(f) {
				continue
			}
			if msg := cidrProblem(c); msg != "" {
				v.errorf(s, f, "%s", msg)
			}
		}
	}
	for i := range a.Headers {
		v.checkHeaderRule(s, fmt.Sprintf("%s.headers[%d]", p, i), &a.Headers[i])
	}
}

// cidrProblem says what is wrong with a CIDR range or single address, or "" when nothing is.
func cidrProblem(c string) string {
	const how = "write a range like 10.0.0.0/8 or 2001:db8::/32, or a single address such as 192.0.2.7"
	if !strings.Contains(c, "/") {
		if _, err := netip.ParseAddr(c); err != nil {
			return fmt.Sprintf("%q is not an IP address or CIDR range; %s", excerpt(c), how)
		}
		return ""
	}
	prefix, err := netip.ParsePrefix(c)
	switch {
	case err != nil:
		return fmt.Sprintf("%q is not a CIDR range; %s", excerpt(c), how)
	case prefix.Masked() != prefix:
		return fmt.Sprintf("%q has address bits set beyond the /%d prefix; write %s (or /%d for the single address)",
			excerpt(c), prefix.Bits(), prefix.Masked(), prefix.Addr().BitLen())
	}
	return ""
}

// checkHeaderRule checks one header rule of an authorization policy.
func (v *validator) checkHeaderRule(s subject, p string, h *HeaderRule) {
	if !s.src.valid(p) {
		return
	}
	if s.src.valid(p + ".name") {
		v.checkHeaderName(s, p+".name", h.Name)
	}
	var set []string
	for _, f := range []string{"exact", "prefix", "regex", "present"} {
		if s.src.has(p + "." + f) {
			set = append(set, f)
		}
	}
	switch {
	case len(set) == 0:
		v.errorf(s, p, "no condition; set one of exact, prefix, regex or present: true")
	case len(set) > 1:
		v.errorf(s, p, "set only one of %s", strings.Join(set, ", "))
	case set[0] == "present" && !h.Present:
		v.errorf(s, p+".present", "present: false matches nothing; use present: true with action deny or allow instead")
	case set[0] == "regex":
		v.checkRegex(s, p+".regex", h.Regex)
	}
	if s.src.valid(p+".action") && h.Action != RuleAllow && h.Action != RuleDeny {
		v.errorf(s, p+".action", "unknown action %q; use allow (refuse requests that do not match) or deny (refuse requests that match), in lowercase", excerpt(h.Action))
	}
}
