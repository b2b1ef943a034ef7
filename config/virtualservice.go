package config

import (
	"fmt"
	"slices"
	"strings"
)

// routeActions are the Route fields that say what to do with a request; exactly one is set.
var routeActions = []string{"upstream", "directResponse"}

func (v *validator) checkVirtualService(vs *VirtualService, noGateways bool) {
	s := subject{KindVirtualService, vs.Metadata.Name, &vs.Source}
	if noGateways {
		v.warnf(s, "", "no Gateway is defined, so this VirtualService receives no traffic; add a Gateway")
	}
	if !vs.Source.valid("spec") {
		return
	}
	v.checkGatewayRefs(s, vs.Spec.Gateways)
	v.checkDomains(s, vs.Spec.Domains)
	if s.src.valid("spec.routes") && len(vs.Spec.Routes) == 0 {
		v.errorf(s, "spec.routes", "no routes; add at least one route")
	}
	names := map[string]string{} // route name -> path of the route that has it
	var earlier []pathMatch
	for i := range vs.Spec.Routes {
		p := fmt.Sprintf("spec.routes[%d]", i)
		if !s.src.valid(p) {
			continue
		}
		r := &vs.Spec.Routes[i]
		if s.src.valid(p+".name") && r.Name != "" {
			if prev, dup := names[r.Name]; dup {
				v.errorf(s, p+".name", "route name %q is already used by %s; route names must be unique within a VirtualService", excerpt(r.Name), prev)
			} else {
				names[r.Name] = p
			}
		}
		if m, ok := v.checkMatch(s, p+".match", r.Match); ok {
			for _, e := range earlier {
				if e.covers(m) {
					v.warnf(s, p+".match", "route is unreachable: %s (%s) matches every request this one would; move this route before it or remove it", e.path, e)
					break
				}
			}
			earlier = append(earlier, m)
		}
		v.checkAction(s, p, r)
	}
}

func (v *validator) checkGatewayRefs(s subject, refs []string) {
	seen := map[string]bool{}
	for i, ref := range refs {
		p := fmt.Sprintf("spec.gateways[%d]", i)
		switch {
		case !s.src.valid(p):
		case seen[ref]:
			v.errorf(s, p, "Gateway %q is listed more than once; remove the repeat", excerpt(ref))
		case v.gateways[ref] == nil:
			v.errorf(s, p, "%s", notDefined(KindGateway, ref, v.gatewayNames))
		}
		seen[ref] = true
	}
}

func (v *validator) checkDomains(s subject, domains []string) {
	if s.src.valid("spec.domains") && len(domains) == 0 {
		v.errorf(s, "spec.domains", "no domains; list at least one, or remove domains to answer every host (%q)", DefaultDomain)
	}
	// Envoy compares domains case-insensitively and rejects a route configuration that lists
	// one twice, so "Shop.example.com" repeats "shop.example.com".
	seen := map[string]string{}
	for i, d := range domains {
		p := fmt.Sprintf("spec.domains[%d]", i)
		if !s.src.valid(p) {
			continue
		}
		star := strings.Index(d, "*")
		switch {
		case d == "":
			v.errorf(s, p, "domain is empty; use a host name such as \"shop.example.com\", or %q for every host", DefaultDomain)
			continue
		case star >= 0 && d != "*" && (strings.Count(d, "*") > 1 || (star != 0 && star != len(d)-1)):
			v.errorf(s, p, "domain %q: a '*' may only be the whole domain, or its first or last character", excerpt(d))
		}
		key := strings.ToLower(d)
		if prev, dup := seen[key]; dup {
			v.errorf(s, p, "domain %q is listed more than once (also %s); domains are case-insensitive, remove the repeat", excerpt(d), prev)
			continue
		}
		seen[key] = p
	}
}

// checkMatch checks a route's match and returns it when it is well formed.
func (v *validator) checkMatch(s subject, p string, m RouteMatch) (pathMatch, bool) {
	if !s.src.valid(p) {
		return pathMatch{}, false
	}
	hasPrefix, hasExact := s.src.has(p+".prefix"), s.src.has(p+".exact")
	switch {
	case hasPrefix && hasExact:
		v.errorf(s, p, "set only one of prefix or exact")
		return pathMatch{}, false
	case !hasPrefix && !hasExact:
		v.errorf(s, p, "no path to match; set prefix or exact")
		return pathMatch{}, false
	}
	pm := pathMatch{path: strings.TrimSuffix(p, ".match"), value: m.Exact, exact: hasExact}
	field := p + ".exact"
	if hasPrefix {
		pm.value, field = m.Prefix, p+".prefix"
	}
	if !s.src.valid(field) {
		return pathMatch{}, false
	}
	if !strings.HasPrefix(pm.value, "/") {
		v.errorf(s, field, "path %q must start with \"/\"", excerpt(pm.value))
		return pathMatch{}, false
	}
	return pm, true
}

func (v *validator) checkAction(s subject, p string, r *Route) {
	var set []string
	for _, a := range routeActions {
		if s.src.has(p + "." + a) {
			set = append(set, a)
		}
	}
	switch {
	case len(set) == 0:
		v.errorf(s, p, "no action; set one of: %s", strings.Join(routeActions, ", "))
	case len(set) > 1:
		v.errorf(s, p, "set only one action, not all of: %s", strings.Join(set, ", "))
	}
	if s.src.valid(p+".upstream") && v.upstreams[r.Upstream] == nil {
		v.errorf(s, p+".upstream", "%s", notDefined(KindUpstream, r.Upstream, v.upstreamNames))
	}
	if r.DirectResponse != nil && s.src.valid(p+".directResponse.status") {
		if st := r.DirectResponse.Status; st < 200 || st > 599 {
			v.errorf(s, p+".directResponse.status", "status %d is out of range; use 200-599", st)
		}
	}
}

// pathMatch is a route's path condition, as far as reachability is concerned. Matches are only
// by path today; once a route can also match on headers or methods, an earlier route covers a
// later one only if it has no such extra conditions.
type pathMatch struct {
	path  string // the route's field path, for messages
	value string
	exact bool
}

// covers reports whether every request that later matches also matches m. Envoy's prefix
// match is a plain string prefix, not a path-segment one.
func (m pathMatch) covers(later pathMatch) bool {
	if m.exact {
		return later.exact && later.value == m.value
	}
	return strings.HasPrefix(later.value, m.value)
}

func (m pathMatch) String() string {
	if m.exact {
		return fmt.Sprintf("exact %q", excerpt(m.value))
	}
	return fmt.Sprintf("prefix %q", excerpt(m.value))
}

// checkDomainClaims rejects two VirtualServices that serve the same domain on one Gateway:
// Envoy rejects duplicate domains within one route configuration.
func (v *validator) checkDomainClaims(cfg *Config) {
	type claim struct {
		vs    *VirtualService
		index int
	}
	owners := map[string]map[string]claim{} // gateway name -> lower-cased domain -> first claim
	for _, vs := range cfg.VirtualServices {
		if !vs.Source.valid("spec") {
			continue
		}
		attached := v.attachedGateways(vs)
		for i, d := range vs.Spec.Domains {
			if d == "" {
				continue
			}
			key := strings.ToLower(d)
			// Group the clashes by the other VirtualService, so one message names all Gateways.
			var others []claim
			clashOn := map[*VirtualService][]string{}
			for _, gw := range attached {
				if owners[gw] == nil {
					owners[gw] = map[string]claim{}
				}
				c, taken := owners[gw][key]
				switch {
				case !taken:
					owners[gw][key] = claim{vs, i}
				case c.vs != vs:
					if clashOn[c.vs] == nil {
						others = append(others, c)
					}
					clashOn[c.vs] = append(clashOn[c.vs], gw)
				}
			}
			for _, c := range others {
				p := fmt.Sprintf("spec.domains[%d]", i)
				what := fmt.Sprintf("domain %q", excerpt(d))
				if !vs.Source.has("spec.domains") {
					what += " (the default when domains is not set)"
				}
				gws := clashOn[c.vs]
				on := fmt.Sprintf("Gateway %q", gws[0])
				if len(gws) > 1 {
					on = fmt.Sprintf("Gateways %s", quoteList(gws))
				}
				v.errorf(subject{KindVirtualService, vs.Metadata.Name, &vs.Source}, p,
					"%s on %s is also claimed by VirtualService %q (%s); a domain may belong to only one VirtualService per Gateway, remove it from one of them",
					what, on, c.vs.Metadata.Name, c.vs.Source.At(fmt.Sprintf("spec.domains[%d]", c.index)))
			}
		}
	}
}

// attachedGateways names the defined Gateways a VirtualService attaches to: those it lists, or
// every Gateway when it lists none.
func (v *validator) attachedGateways(vs *VirtualService) []string {
	if len(vs.Spec.Gateways) == 0 {
		return v.gatewayNames
	}
	var out []string
	for _, g := range vs.Spec.Gateways {
		if v.gateways[g] != nil && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, ", ")
}
