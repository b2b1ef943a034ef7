package translator

import (
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/portico-gw/portico/config"
)

// virtualHost builds the Envoy virtual host for a VirtualService; routes keep their order,
// since Envoy takes the first match.
func virtualHost(vs *config.VirtualService, upstreams map[string]bool) (*routev3.VirtualHost, error) {
	vh := &routev3.VirtualHost{
		Name:    vs.Metadata.Name,
		Domains: append([]string(nil), vs.Spec.Domains...),
	}
	for i, r := range vs.Spec.Routes {
		er, err := route(r, i, upstreams)
		if err != nil {
			return nil, fmt.Errorf("routes[%d]: %w", i, err)
		}
		vh.Routes = append(vh.Routes, er)
	}
	return vh, nil
}

func route(r config.Route, index int, upstreams map[string]bool) (*routev3.Route, error) {
	name := r.Name
	if name == "" {
		name = fmt.Sprintf("route-%d", index)
	}
	er := &routev3.Route{Name: name, Match: routeMatch(r.Match)}
	switch {
	case r.Upstream != "":
		if !upstreams[r.Upstream] {
			return nil, fmt.Errorf("upstream %q is not defined", r.Upstream)
		}
		er.Action = &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: r.Upstream},
		}}
	case r.DirectResponse != nil:
		dr := &routev3.DirectResponseAction{Status: uint32(r.DirectResponse.Status)}
		if r.DirectResponse.Body != "" {
			dr.Body = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: r.DirectResponse.Body}}
		}
		er.Action = &routev3.Route_DirectResponse{DirectResponse: dr}
	default:
		return nil, fmt.Errorf("route has no action")
	}
	return er, nil
}

func routeMatch(m config.RouteMatch) *routev3.RouteMatch {
	if m.Exact != "" {
		return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: m.Exact}}
	}
	return &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: m.Prefix}}
}
