package translator

import (
	"fmt"
	"slices"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/ratelimit"
)

// routeBuilder resolves the references routes make: Upstreams and delegated RouteTables.
type routeBuilder struct {
	cfg       *config.Config
	upstreams map[string]bool
	// current is the VirtualService being built, which names the global limits of its routes.
	current *config.VirtualService
	// gateway is the Gateway whose routes are being built, whose compression they inherit.
	gateway *config.Gateway
	// currentAuthorizes caches cfg.UsesAuthorization(current): asking it per route would scan
	// every route of the VirtualService for each of them.
	currentAuthorizes bool
	// rbac gathers what the listener of the Gateway being built needs of the RBAC filter.
	rbac rbacNeeds
	// limits collects the global limits of every VirtualService built, by name.
	limits map[string]ratelimit.Limit
	// identityHeaderOwned is set when the configuration uses Portico's authentication: routes
	// without it then remove the identity header clients send.
	identityHeaderOwned bool
}

// virtualHost builds the Envoy virtual host for a VirtualService; routes keep their order,
// since Envoy takes the first match.
func (b *routeBuilder) virtualHost(vs *config.VirtualService) (*routev3.VirtualHost, error) {
	vh := &routev3.VirtualHost{
		// Envoy names the virtual host's statistics after it, so it is in statistics form.
		Name:    StatName(vs.Metadata.Name),
		Domains: append([]string(nil), vs.Spec.Domains...),
	}
	if o := vs.Spec.Options; o != nil {
		vh.RequestHeadersToAdd = append(headersToAdd(o.RequestHeadersToAdd), headersToSet(o.RequestHeadersToSet)...)
		vh.RequestHeadersToRemove = slices.Clone(o.RequestHeadersToRemove)
		vh.ResponseHeadersToAdd = append(headersToAdd(o.ResponseHeadersToAdd), headersToSet(o.ResponseHeadersToSet)...)
		vh.ResponseHeadersToRemove = slices.Clone(o.ResponseHeadersToRemove)
		if err := virtualHostCORS(o.CORS, vh); err != nil {
			return nil, fmt.Errorf("cors: %w", err)
		}
	}
	b.current, b.currentAuthorizes = vs, b.cfg.UsesAuthorization(vs)
	b.rbac.used = b.rbac.used || b.currentAuthorizes
	routes, err := b.routes(vs.Spec.Routes, "", nil, nil)
	if err != nil {
		return nil, err
	}
	vh.Routes = routes
	if err := b.rateLimitVirtualHost(vs, vh); err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	if err := jwtVirtualHost(vs, vh); err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	if err := authnVirtualHost(vs, vh); err != nil {
		return nil, fmt.Errorf("security: %w", err)
	}
	if err := b.rbacVirtualHost(vs, vh); err != nil {
		return nil, fmt.Errorf("authorization: %w", err)
	}
	if err := extAuthVirtualHost(vs, vh); err != nil {
		return nil, fmt.Errorf("security: %w", err)
	}
	if err := oidcVirtualHost(vs, vh); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	if err := b.responseVirtualHost(vs, vh); err != nil {
		return nil, err
	}
	return vh, nil
}

// headersToAdd appends rather than overwrites, Envoy's default, so a value the client or
// upstream sent is kept alongside the added one.
func headersToAdd(hs []config.HeaderValue) []*corev3.HeaderValueOption {
	var out []*corev3.HeaderValueOption
	for _, h := range hs {
		out = append(out, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: h.Name, Value: h.Value}})
	}
	return out
}

// routes translates a route list. A delegating route is replaced, in place, by the routes of
// the RouteTables it delegates to, each carrying the delegating routes' extra conditions
// (parents); their path needs no such help, since validation keeps every delegated path under
// its parent's prefix. chain holds the RouteTables being expanded, to refuse a cycle.
func (b *routeBuilder) routes(list []config.Route, namePrefix string, parents []config.RouteMatch, chain []*config.RouteTable) ([]*routev3.Route, error) {
	var out []*routev3.Route
	for i, r := range list {
		name := namePrefix + routeName(r, i)
		if r.Delegate == nil {
			er, err := b.route(r, name, parents)
			if err != nil {
				return nil, fmt.Errorf("routes[%d]: %w", i, err)
			}
			out = append(out, er)
			continue
		}
		for _, rt := range b.cfg.RouteTablesFor(r.Delegate) {
			if slices.Contains(chain, rt) {
				return nil, fmt.Errorf("routes[%d]: delegation cycle through RouteTable %q", i, rt.Metadata.Name)
			}
			sub, err := b.routes(rt.Spec.Routes, name+"/"+rt.Metadata.Name+"/",
				append(slices.Clip(parents), r.Match), append(slices.Clip(chain), rt))
			if err != nil {
				return nil, fmt.Errorf("routes[%d]: route table %q: %w", i, rt.Metadata.Name, err)
			}
			out = append(out, sub...)
		}
	}
	return out, nil
}

// routeName is the Envoy name of the route at index i of its list: the user's, or its position.
func routeName(r config.Route, i int) string {
	if r.Name != "" {
		return r.Name
	}
	return fmt.Sprintf("route-%d", i)
}

func (b *routeBuilder) route(r config.Route, name string, parents []config.RouteMatch) (*routev3.Route, error) {
	er := &routev3.Route{Name: name, Match: routeMatch(r.Match, parents)}
	// The stat prefix turns on Envoy's per-route statistics (requests, status classes,
	// latency), tagged with the virtual host and route names. Only routes the user named get
	// them: each costs Envoy a set of statistics to create on every route update, which
	// doubled the time a new route took to go live at 3,000 routes, and a generated name
	// would make a poor label anyway.
	if r.Name != "" {
		er.StatPrefix = StatName(name)
	}
	switch {
	case r.Upstream != "":
		if !b.upstreams[r.Upstream] {
			return nil, fmt.Errorf("upstream %q is not defined", r.Upstream)
		}
		er.Action = &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: r.Upstream},
		}}
	case len(r.Destinations) > 0 || r.UpstreamGroup != "":
		// A group's split is translated exactly as the route's own destinations would be.
		dests := b.cfg.RouteDestinations(&r)
		if len(dests) == 0 {
			return nil, fmt.Errorf("upstream group %q is not defined", r.UpstreamGroup)
		}
		wc := &routev3.WeightedCluster{}
		for _, d := range dests {
			if !b.upstreams[d.Upstream] {
				return nil, fmt.Errorf("upstream %q is not defined", d.Upstream)
			}
			wc.Clusters = append(wc.Clusters, &routev3.WeightedCluster_ClusterWeight{
				Name: d.Upstream, Weight: wrapperspb.UInt32(uint32(d.Weight)),
			})
		}
		er.Action = &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_WeightedClusters{WeightedClusters: wc},
		}}
	case r.Redirect != nil:
		rd, err := redirect(r.Redirect)
		if err != nil {
			return nil, err
		}
		er.Action = &routev3.Route_Redirect{Redirect: rd}
	case r.Lambda != nil:
		if err := b.lambdaRoute(r.Lambda, er); err != nil {
			return nil, err
		}
	case r.DirectResponse != nil:
		dr := &routev3.DirectResponseAction{Status: uint32(r.DirectResponse.Status)}
		if r.DirectResponse.Body != "" {
			dr.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: r.DirectResponse.Body}}
		}
		er.Action = &routev3.Route_DirectResponse{DirectResponse: dr}
	default:
		return nil, fmt.Errorf("route has no action")
	}
	if r.Options != nil {
		if err := applyRouteOptions(r.Options, er); err != nil {
			return nil, fmt.Errorf("options: %w", err)
		}
	}
	// Direct-response headers go last so they win over route options that set the same name.
	if r.DirectResponse != nil {
		er.ResponseHeadersToAdd = append(er.ResponseHeadersToAdd, headersToSet(r.DirectResponse.Headers)...)
	}
	if err := b.rateLimitRoute(b.current, &r, er); err != nil {
		return nil, fmt.Errorf("rate limit: %w", err)
	}
	if err := jwtRoute(b.current, &r, er); err != nil {
		return nil, fmt.Errorf("jwt: %w", err)
	}
	if err := b.authnRoute(b.current, &r, er); err != nil {
		return nil, fmt.Errorf("security: %w", err)
	}
	if err := b.rbacRoute(&r, er); err != nil {
		return nil, fmt.Errorf("authorization: %w", err)
	}
	if err := extAuthRoute(b.current, &r, er); err != nil {
		return nil, fmt.Errorf("security: %w", err)
	}
	if err := oidcRoute(b.current, &r, er); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	if err := b.responseRoute(&r, er); err != nil {
		return nil, err
	}
	return er, nil
}

var redirectCodes = map[int]routev3.RedirectAction_RedirectResponseCode{
	301: routev3.RedirectAction_MOVED_PERMANENTLY,
	302: routev3.RedirectAction_FOUND,
	303: routev3.RedirectAction_SEE_OTHER,
	307: routev3.RedirectAction_TEMPORARY_REDIRECT,
	308: routev3.RedirectAction_PERMANENT_REDIRECT,
}

func redirect(r *config.Redirect) (*routev3.RedirectAction, error) {
	code, ok := redirectCodes[r.ResponseCode]
	if !ok {
		return nil, fmt.Errorf("redirect response code %d is not a redirect", r.ResponseCode)
	}
	rd := &routev3.RedirectAction{
		HostRedirect: r.HostRedirect,
		PortRedirect: uint32(r.PortRedirect),
		StripQuery:   r.StripQuery,
		ResponseCode: code,
	}
	switch {
	case r.PathRedirect != "":
		rd.PathRewriteSpecifier = &routev3.RedirectAction_PathRedirect{PathRedirect: r.PathRedirect}
	case r.PrefixRewrite != "":
		rd.PathRewriteSpecifier = &routev3.RedirectAction_PrefixRewrite{PrefixRewrite: r.PrefixRewrite}
	}
	switch {
	case r.HTTPSRedirect:
		rd.SchemeRewriteSpecifier = &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true}
	case r.SchemeRedirect != "":
		rd.SchemeRewriteSpecifier = &routev3.RedirectAction_SchemeRedirect{SchemeRedirect: r.SchemeRedirect}
	}
	return rd, nil
}
