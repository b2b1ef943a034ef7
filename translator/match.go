package translator

import (
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-gw/portico/config"
)

// routeMatch builds the match of a route: its own path, and the header, query and method
// conditions of the route and of every route that delegated to it (parents, outermost first).
// Envoy requires all of them to hold, which is exactly the meaning of nesting.
func routeMatch(m config.RouteMatch, parents []config.RouteMatch) *routev3.RouteMatch {
	rm := &routev3.RouteMatch{}
	switch {
	case m.Regex != "":
		rm.PathSpecifier = &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: m.Regex}}
	case m.Exact != "":
		rm.PathSpecifier = &routev3.RouteMatch_Path{Path: m.Exact}
	default:
		rm.PathSpecifier = &routev3.RouteMatch_Prefix{Prefix: m.Prefix}
	}
	if !m.IsCaseSensitive() {
		rm.CaseSensitive = wrapperspb.Bool(false)
	}
	for _, c := range append(parents, m) {
		for _, h := range c.Headers {
			rm.Headers = append(rm.Headers, headerMatcher(h))
		}
		if len(c.Methods) > 0 {
			rm.Headers = append(rm.Headers, methodMatcher(c.Methods))
		}
		for _, q := range c.QueryParameters {
			rm.QueryParameters = append(rm.QueryParameters, queryMatcher(q))
		}
		if c.GRPC {
			rm.Grpc = grpcMatch()
		}
	}
	return rm
}

func headerMatcher(h config.HeaderMatch) *routev3.HeaderMatcher {
	hm := &routev3.HeaderMatcher{Name: h.Name, InvertMatch: h.Invert}
	if h.Present {
		hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
	} else {
		hm.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: stringMatcher(h.Exact, h.Regex)}
	}
	return hm
}

// methodMatcher matches the :method pseudo-header against the listed methods.
func methodMatcher(methods []string) *routev3.HeaderMatcher {
	sm := &matcherv3.StringMatcher{}
	if len(methods) == 1 {
		sm.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: methods[0]}
	} else {
		// Methods are validated tokens without regex metacharacters.
		sm.MatchPattern = &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: strings.Join(methods, "|")}}
	}
	return &routev3.HeaderMatcher{Name: ":method", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm}}
}

func queryMatcher(q config.QueryParameterMatch) *routev3.QueryParameterMatcher {
	qm := &routev3.QueryParameterMatcher{Name: q.Name}
	if q.Present {
		qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}
	} else {
		qm.QueryParameterMatchSpecifier = &routev3.QueryParameterMatcher_StringMatch{StringMatch: stringMatcher(q.Exact, q.Regex)}
	}
	return qm
}

// stringMatcher matches exact or, when regex is set, the whole value against the RE2 regex.
func stringMatcher(exact, regex string) *matcherv3.StringMatcher {
	if regex != "" {
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: regex}}}
	}
	return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: exact}}
}
