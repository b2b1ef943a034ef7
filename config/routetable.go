package config

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

func (v *validator) checkRouteTable(rt *RouteTable) {
	s := subject{KindRouteTable, rt.Metadata.Name, &rt.Source}
	if !rt.Source.valid("spec") {
		return
	}
	v.checkRoutes(s, rt.Spec.Routes)
	v.checkRoutesRateLimits(s, rt.Spec.Routes)
	v.checkRouteTableIdentityKeys(s, rt.Spec.Routes)
	v.checkRoutesSecurity(s, rt.Spec.Routes, nil, true)
}

// RouteTablesFor resolves a delegation: the RouteTable it names, or the RouteTables its
// selector matches in name order, so the flattened routes come out in a stable order.
func (c *Config) RouteTablesFor(d *Delegate) []*RouteTable {
	var out []*RouteTable
	for _, rt := range c.RouteTables {
		if (d.Selector == nil && rt.Metadata.Name == d.Name) || d.Selector.Matches(rt.Metadata.Labels) {
			out = append(out, rt)
		}
	}
	if d.Selector == nil {
		return out[:min(len(out), 1)]
	}
	slices.SortStableFunc(out, func(a, b *RouteTable) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	return out
}

// checkDelegate checks a route's delegate on its own; checkDelegation checks the routes it
// reaches.
func (v *validator) checkDelegate(s subject, p string, r *Route) {
	dp := p + ".delegate"
	if s.src.valid(p+".match") && !s.src.has(p+".match.prefix") {
		v.errorf(s, dp, "a delegating route must match by prefix, which every delegated route's path then starts with; use match.prefix")
	}
	hasName, hasSel := s.src.has(dp+".name"), s.src.has(dp+".selector")
	switch {
	case hasName && hasSel:
		v.errorf(s, dp, "set only one of name or selector")
		return
	case !hasName && !hasSel:
		v.errorf(s, dp, "no RouteTable; set name or selector")
		return
	}
	d := r.Delegate
	if hasName && s.src.valid(dp+".name") && v.routeTables[d.Name] == nil {
		if v.cfg.heldBack[ResourceRef{KindRouteTable, d.Name}] {
			v.errorf(s, dp+".name", "RouteTable %q is held back by its own errors, reported on it; fix them and this route delegates again", excerpt(d.Name))
		} else {
			v.errorf(s, dp+".name", "%s", notDefined(KindRouteTable, d.Name, v.routeTableNames))
		}
	}
	if hasSel && s.src.valid(dp+".selector.matchLabels") {
		v.checkLabels(s, dp+".selector.matchLabels", d.Selector.MatchLabels)
		if len(v.cfg.RouteTablesFor(d)) == 0 {
			v.errorf(s, dp+".selector", "selects no RouteTable; label a RouteTable to match or change the selector")
		}
	}
}

// delegator is a route that delegates, seen from the routes it delegates to.
type delegator struct {
	s             subject
	path          string // the route's field path
	prefix        string
	caseSensitive bool
}

func (d delegator) String() string {
	return fmt.Sprintf("%s %q %s (%s)", d.s.kind, d.s.name, d.path, d.s.src.At(d.path+".match.prefix"))
}

// checkDelegation checks every chain of delegation: that it never loops, and that every
// delegated route stays under the prefix of each route delegating to it, so that flattening
// the RouteTables into a virtual host never widens what a parent route matched.
func (v *validator) checkDelegation(cfg *Config) {
	delegated := map[*RouteTable]bool{}
	explored := map[*RouteTable]bool{}
	for _, rt := range cfg.RouteTables {
		v.findCycles(rt, nil, explored)
	}
	type job struct {
		parent delegator
		rt     *RouteTable
	}
	var queue []job
	enqueue := func(s subject, routes []Route) {
		for i := range routes {
			p := fmt.Sprintf("spec.routes[%d]", i)
			r := &routes[i]
			// A delegate with both or neither of name and selector has been reported already.
			if r.Delegate == nil || !s.src.valid(p+".delegate") || s.src.has(p+".delegate.name") == s.src.has(p+".delegate.selector") {
				continue
			}
			for _, rt := range cfg.RouteTablesFor(r.Delegate) {
				delegated[rt] = true
				if s.src.valid(p + ".match.prefix") {
					queue = append(queue, job{delegator{s, p, r.Match.Prefix, r.Match.IsCaseSensitive()}, rt})
				}
			}
		}
	}
	for _, vs := range cfg.VirtualServices {
		enqueue(subject{KindVirtualService, vs.Metadata.Name, &vs.Source}, vs.Spec.Routes)
	}
	for _, rt := range cfg.RouteTables {
		enqueue(subject{KindRouteTable, rt.Metadata.Name, &rt.Source}, rt.Spec.Routes)
	}
	// Each delegating route is checked against the RouteTables it names directly; since a
	// child's own prefix must start with its parent's, the constraint holds down every chain.
	for _, j := range queue {
		v.checkUnderPrefix(j.parent, j.rt)
	}
	for _, rt := range cfg.RouteTables {
		if !delegated[rt] && rt.Source.valid("spec") {
			v.warnf(subject{KindRouteTable, rt.Metadata.Name, &rt.Source}, "",
				"no route delegates to this RouteTable, so it serves no traffic; delegate to it from a route with match.prefix")
		}
	}
}

// checkUnderPrefix reports the routes of rt whose path can fall outside parent's prefix.
func (v *validator) checkUnderPrefix(parent delegator, rt *RouteTable) {
	s := subject{KindRouteTable, rt.Metadata.Name, &rt.Source}
	norm := func(x string) string {
		if parent.caseSensitive {
			return x
		}
		return strings.ToLower(x)
	}
	for i, r := range rt.Spec.Routes {
		p := fmt.Sprintf("spec.routes[%d].match", i)
		if !s.src.valid(p) {
			continue
		}
		var field, value string
		switch {
		case s.src.valid(p + ".prefix"):
			field, value = p+".prefix", r.Match.Prefix
		case s.src.valid(p + ".exact"):
			field, value = p+".exact", r.Match.Exact
		case s.src.valid(p + ".regex"):
			re, err := regexp.Compile(r.Match.Regex)
			if err != nil {
				continue // reported by checkMatch
			}
			field, value = p+".regex", r.Match.Regex
			if lit, _ := re.LiteralPrefix(); !strings.HasPrefix(norm(lit), norm(parent.prefix)) {
				v.errorf(s, field, "regex %q can match paths outside %q, the prefix of %s that delegates here; start the regex with %q",
					excerpt(value), excerpt(parent.prefix), parent, regexp.QuoteMeta(parent.prefix))
			}
			continue
		default:
			continue
		}
		if !strings.HasPrefix(norm(value), norm(parent.prefix)) {
			v.errorf(s, field, "path %q is outside %q, the prefix of %s that delegates here; start it with %q",
				excerpt(value), excerpt(parent.prefix), parent, excerpt(parent.prefix))
			continue
		}
		if parent.caseSensitive && !r.Match.IsCaseSensitive() && s.src.valid(p+".caseSensitive") {
			v.errorf(s, p+".caseSensitive", "case-insensitive, but %s that delegates here is case-sensitive, so this route would match paths outside its prefix; remove caseSensitive here or set it to false there",
				parent)
		}
	}
}

// findCycles reports each delegation that leads back to a RouteTable on the current chain.
func (v *validator) findCycles(rt *RouteTable, chain []*RouteTable, done map[*RouteTable]bool) {
	if done[rt] {
		return
	}
	chain = append(chain, rt)
	s := subject{KindRouteTable, rt.Metadata.Name, &rt.Source}
	for i, r := range rt.Spec.Routes {
		p := fmt.Sprintf("spec.routes[%d].delegate", i)
		if r.Delegate == nil || !s.src.valid(p) {
			continue
		}
		for _, next := range v.cfg.RouteTablesFor(r.Delegate) {
			if at := slices.Index(chain, next); at >= 0 {
				names := make([]string, 0, len(chain)-at+1)
				for _, c := range chain[at:] {
					names = append(names, c.Metadata.Name)
				}
				names = append(names, next.Metadata.Name)
				v.errorf(s, p, "delegation cycle: %s; remove one of these delegations", strings.Join(names, " -> "))
				continue
			}
			v.findCycles(next, chain, done)
		}
	}
	done[rt] = true
}
