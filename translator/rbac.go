package translator

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	celv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-gw/portico/config"
)

// filterRBAC is the HTTP filter that enforces authorization policies.
const filterRBAC = "envoy.filters.http.rbac"

// rbacDeniedPrefix starts the response code detail Envoy's RBAC filter gives a refused request;
// the refusing policy's name follows in brackets. Local reply mappers pick the body by it.
const rbacDeniedPrefix = "rbac_access_denied_matched_policy["

func rbacDeniedDetails(name string) string { return rbacDeniedPrefix + name + "]" }

// rbacNeeds are what a Gateway's listener needs of the RBAC filter, gathered while its virtual
// hosts are built.
type rbacNeeds struct {
	// used is set when a VirtualService served, or a route it reaches through delegation, has
	// an authorization policy.
	used bool
	// bodies are the policies with a deniedBody of their own, by the name Envoy reports when
	// one refuses a request.
	bodies []deniedBody
}

type deniedBody struct{ policy, body string }

// applyRBAC puts the RBAC filter in front of the filters already there when a VirtualService
// the Gateway serves, or a route it reaches, has an authorization policy. The filter's own
// configuration is empty, so it lets everything through; each virtual host and route with a
// policy carries it as a per-route configuration. It also adds the local reply mappers that
// give a refused request its policy's body.
func applyRBAC(needs rbacNeeds, hcm *hcmv3.HttpConnectionManager) error {
	if !needs.used {
		return nil
	}
	var mappers []*hcmv3.ResponseMapper
	for _, d := range needs.bodies {
		m, err := deniedBodyMapper(fmt.Sprintf("response.code_details == %q", rbacDeniedDetails(d.policy)), d.body)
		if err != nil {
			return err
		}
		mappers = append(mappers, m)
	}
	f, err := httpFilter(filterRBAC, &rbacv3.RBAC{})
	if err != nil {
		return err
	}
	hcm.HttpFilters = append([]*hcmv3.HttpFilter{f}, hcm.HttpFilters...)
	// Every other refusal gets the default body; it comes last, after the policies' own.
	m, err := deniedBodyMapper(fmt.Sprintf("response.code_details.startsWith(%q)", rbacDeniedPrefix), config.DefaultDeniedBody)
	if err != nil {
		return err
	}
	if hcm.LocalReplyConfig == nil {
		hcm.LocalReplyConfig = &hcmv3.LocalReplyConfig{}
	}
	hcm.LocalReplyConfig.Mappers = append(hcm.LocalReplyConfig.Mappers, append(mappers, m)...)
	return nil
}

// deniedBodyMapper replaces the body of Envoy's own answers that the CEL expression selects.
func deniedBodyMapper(expr, body string) (*hcmv3.ResponseMapper, error) {
	cel, err := anypb.New(&celv3.ExpressionFilter{Expression: expr})
	if err != nil {
		return nil, err
	}
	return &hcmv3.ResponseMapper{
		Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_ExtensionFilter{ExtensionFilter: &accesslogv3.ExtensionFilter{
			Name:       "envoy.access_loggers.extension_filters.cel",
			ConfigType: &accesslogv3.ExtensionFilter_TypedConfig{TypedConfig: cel},
		}}},
		StatusCode: wrapperspb.UInt32(http.StatusForbidden),
		Body:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: body}},
	}, nil
}

// rbacPolicyName names the policy of a VirtualService (route "") or of one of the routes of its
// virtual host, by the route's Envoy name (a delegated route's names the delegation path). The
// name shows in Envoy's response details and access logs, so it says whose policy refused.
func rbacPolicyName(vs *config.VirtualService, route string) string {
	if route == "" {
		return vs.Metadata.Name
	}
	return vs.Metadata.Name + "/" + route
}

// rbacVirtualHost gives a VirtualService's virtual host its authorization policy.
func (b *routeBuilder) rbacVirtualHost(vs *config.VirtualService, vh *routev3.VirtualHost) error {
	sp := vs.Spec.Security
	if sp == nil || sp.Authorization == nil {
		return nil
	}
	b.rbac.addBody(rbacPolicyName(vs, ""), sp.Authorization)
	return addPerFilter(&vh.TypedPerFilterConfig, filterRBAC, rbacPerRoute(rbacPolicyName(vs, ""), sp.Authorization))
}

// rbacRoute gives a route, of the VirtualService or of a RouteTable it delegates to, its own
// policy, or turns the VirtualService's off. A route that just inherits needs nothing: the
// virtual host's configuration applies.
func (b *routeBuilder) rbacRoute(r *config.Route, er *routev3.Route) error {
	if !b.currentAuthorizes || r.Security == nil {
		return nil
	}
	vs := b.current
	a := config.Authorization(vs.Spec.Security, r)
	switch {
	case a == nil && vs.Spec.Security != nil && vs.Spec.Security.Authorization != nil:
		// An empty per-route configuration turns the filter off for the route.
		return addPerFilter(&er.TypedPerFilterConfig, filterRBAC, &rbacv3.RBACPerRoute{})
	case a != nil && a == r.Security.Authorization:
		b.rbac.addBody(rbacPolicyName(vs, er.Name), a)
		return addPerFilter(&er.TypedPerFilterConfig, filterRBAC, rbacPerRoute(rbacPolicyName(vs, er.Name), a))
	}
	return nil
}

// addBody records the policy's own deniedBody, if it has one.
func (n *rbacNeeds) addBody(policy string, a *config.AuthorizationPolicy) {
	if a.DeniedBody != "" {
		n.bodies = append(n.bodies, deniedBody{policy, a.DeniedBody})
	}
}

// rbacPerRoute is one DENY policy that matches exactly the requests a refuses: Envoy's RBAC
// evaluates a DENY policy as "refuse on match", which keeps the policy's name in the response
// details for the body mappers (an ALLOW policy that fails reports no name).
func rbacPerRoute(name string, a *config.AuthorizationPolicy) *rbacv3.RBACPerRoute {
	var refuse []*rbacconfigv3.Principal
	for _, c := range a.Deny {
		refuse = append(refuse, remoteIP(c))
	}
	if len(a.Allow) > 0 {
		var allowed []*rbacconfigv3.Principal
		for _, c := range a.Allow {
			allowed = append(allowed, remoteIP(c))
		}
		refuse = append(refuse, notPrincipal(anyPrincipal(allowed)))
	}
	for _, h := range a.Headers {
		p := &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_Header{Header: headerRuleMatcher(h)}}
		if h.Action == config.RuleAllow {
			p = notPrincipal(p)
		}
		refuse = append(refuse, p)
	}
	return &rbacv3.RBACPerRoute{Rbac: &rbacv3.RBAC{Rules: &rbacconfigv3.RBAC{
		Action: rbacconfigv3.RBAC_DENY,
		Policies: map[string]*rbacconfigv3.Policy{name: {
			Permissions: []*rbacconfigv3.Permission{{Rule: &rbacconfigv3.Permission_Any{Any: true}}},
			Principals:  []*rbacconfigv3.Principal{anyPrincipal(refuse)},
		}},
	}}}
}

func anyPrincipal(ps []*rbacconfigv3.Principal) *rbacconfigv3.Principal {
	if len(ps) == 1 {
		return ps[0]
	}
	return &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_OrIds{OrIds: &rbacconfigv3.Principal_Set{Ids: ps}}}
}

func notPrincipal(p *rbacconfigv3.Principal) *rbacconfigv3.Principal {
	return &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_NotId{NotId: p}}
}

// remoteIP matches the client address as the connection manager settled it (from the peer or
// x-forwarded-for, by useRemoteAddress and xffNumTrustedHops), not the TCP peer. Validation
// has checked c; a bare address is a range of one.
func remoteIP(c string) *rbacconfigv3.Principal {
	prefix, err := netip.ParsePrefix(c)
	if err != nil {
		addr, _ := netip.ParseAddr(c)
		prefix = netip.PrefixFrom(addr, addr.BitLen())
	}
	return &rbacconfigv3.Principal{Identifier: &rbacconfigv3.Principal_RemoteIp{RemoteIp: &corev3.CidrRange{
		AddressPrefix: prefix.Addr().String(),
		PrefixLen:     wrapperspb.UInt32(uint32(prefix.Bits())),
	}}}
}

func headerRuleMatcher(h config.HeaderRule) *routev3.HeaderMatcher {
	m := &routev3.HeaderMatcher{Name: strings.ToLower(h.Name)}
	var sm *matcherv3.StringMatcher
	switch {
	case h.Present:
		m.HeaderMatchSpecifier = &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}
		return m
	case h.Prefix != "":
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: h.Prefix}}
	case h.Regex != "":
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: h.Regex}}}
	default:
		sm = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: h.Exact}}
	}
	m.HeaderMatchSpecifier = &routev3.HeaderMatcher_StringMatch{StringMatch: sm}
	return m
}
