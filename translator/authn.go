package translator

import (
	"fmt"
	"maps"
	"time"

	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portico-gw/portico/authz"
	"github.com/portico-gw/portico/config"
	bootstrap "github.com/portico-gw/portico/envoy-bootstrap"
)

// FilterAuthn is the ext_authz filter instance that asks Portico's authentication service
// (API keys, basic auth).
const FilterAuthn = "envoy.filters.http.ext_authz/portico"

// filterUntrustedHeaders removes, before any authorization filter runs, the headers that
// only the authorization filters may set, on listeners where users' authorization servers or
// their upstreams would otherwise take a client's values for them: the identity header, and
// ext_authz's mark of a request let through while the server could not answer.
const filterUntrustedHeaders = "portico.authz.untrusted_headers"

// failureModeAllowedHeader is the header ext_authz sets on a request it let through because
// the server could not answer (failureMode allow); Envoy does not remove a client's own.
const failureModeAllowedHeader = "x-envoy-auth-failure-mode-allowed"

// authnTimeout bounds Envoy's wait for the authentication service. A basic-auth check runs
// bcrypt, tens of milliseconds at the usual cost, longer under load; Envoy's 200ms default
// would turn a busy moment into errors.
const authnTimeout = 2 * time.Second

// authzNeeds records which authorization filters a Gateway's listener needs.
type authzNeeds struct {
	// authn is set when an attached VirtualService or route uses apiKey or basicAuth.
	authn bool
	// external are the attached VirtualServices with extAuth, by name.
	external []*config.VirtualService
}

// authzNeedsOf walks the VirtualServices a Gateway serves, and the RouteTables they delegate
// to, for the authorization they use.
func authzNeedsOf(cfg *config.Config, vss []*config.VirtualService) authzNeeds {
	var n authzNeeds
	for _, vs := range vss {
		if sp := vs.Spec.Security; sp != nil && sp.ExtAuth != nil {
			n.external = append(n.external, vs)
		}
		walkRoutes(cfg, vs.Spec.Routes, func(r *config.Route) {
			n.authn = n.authn || config.RouteAuthentication(vs.Spec.Security, r.Security).Required()
		})
	}
	return n
}

// walkRoutes calls fn for every route of a route list and, once each, of the RouteTables it
// delegates to.
func walkRoutes(cfg *config.Config, routes []config.Route, fn func(r *config.Route)) {
	seen := map[*config.RouteTable]bool{}
	var walk func(routes []config.Route)
	walk = func(routes []config.Route) {
		for i := range routes {
			r := &routes[i]
			if r.Delegate == nil {
				fn(r)
				continue
			}
			for _, rt := range cfg.RouteTablesFor(r.Delegate) {
				if !seen[rt] {
					seen[rt] = true
					walk(rt.Spec.Routes)
				}
			}
		}
	}
	walk(routes)
}

// applyExtAuthz puts the authorization filters a Gateway needs in front of the rate limits,
// so that an identity is known before anything is counted: Portico's own authentication first,
// then the users' authorization servers, which thus see the authenticated identity. Each is
// disabled by default and enabled by the per-route configuration of the virtual hosts and
// routes that use it: a virtual host without a policy pays nothing but, on a listener with a
// user's server, the removal of the headers only authorization may set.
func applyExtAuthz(needs authzNeeds, hcm *hcmv3.HttpConnectionManager) error {
	var filters []*hcmv3.HttpFilter
	if needs.authn {
		f, err := authnFilter()
		if err != nil {
			return err
		}
		filters = append(filters, f)
	}
	for _, vs := range needs.external {
		f, err := externalAuthzFilter(vs)
		if err != nil {
			return fmt.Errorf("virtual service %q: %w", vs.Metadata.Name, err)
		}
		filters = append(filters, f)
	}
	if len(needs.external) > 0 {
		// Users' servers are told they see the identity Portico verified. Routes remove a
		// client's identity header only in the router, after every filter, so without this a
		// server would see whatever identity the client wrote wherever Portico authenticates
		// nobody. Their upstreams are told the fail-open mark means the server was not asked.
		var remove []*mutationv3.HeaderMutation
		for _, h := range []string{config.IdentityHeader, failureModeAllowedHeader} {
			remove = append(remove, &mutationv3.HeaderMutation{Action: &mutationv3.HeaderMutation_Remove{Remove: h}})
		}
		f, err := httpFilter(filterUntrustedHeaders, &headermutationv3.HeaderMutation{Mutations: &headermutationv3.Mutations{RequestMutations: remove}})
		if err != nil {
			return err
		}
		filters = append([]*hcmv3.HttpFilter{f}, filters...)
	}
	hcm.HttpFilters = append(filters, hcm.HttpFilters...)
	return nil
}

// authnFilter is the ext_authz filter instance that asks Portico's authentication service.
func authnFilter() (*hcmv3.HttpFilter, error) {
	a, err := anypb.New(&extauthzv3.ExtAuthz{
		Services: &extauthzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: bootstrap.AuthzClusterName}},
			Timeout:         durationpb.New(authnTimeout),
		}},
		TransportApiVersion: corev3.ApiVersion_V3,
		// The service is part of Portico; when it cannot answer, say so rather than 403.
		StatusOnError: &typev3.HttpStatus{Code: typev3.StatusCode_ServiceUnavailable},
		StatPrefix:    "portico_authn",
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", FilterAuthn, err)
	}
	return &hcmv3.HttpFilter{Name: FilterAuthn, Disabled: true, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// identityAction makes a descriptor entry of the identity Portico's authentication service
// proved, which Envoy files in the request's dynamic metadata. Only filters write dynamic
// metadata, so a client cannot choose the value it is counted under; a request without an
// identity gets no descriptor from the limit and is not counted by it.
func identityAction() *routev3.RateLimit_Action {
	return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_Metadata{Metadata: &routev3.RateLimit_Action_MetaData{
		DescriptorKey: descriptorIdentity,
		MetadataKey: &metadatav3.MetadataKey{Key: authz.MetadataNamespace, Path: []*metadatav3.MetadataKey_PathSegment{
			{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: authz.MetadataIdentity}},
		}},
		Source: routev3.RateLimit_Action_MetaData_DYNAMIC,
	}}}
}

// authnPolicy is the service's policy for one virtual host or route.
func authnPolicy(name string, a config.Authentication) authz.Policy {
	p := authz.Policy{Name: name, IdentityHeader: config.IdentityHeader}
	if k := a.APIKey; k != nil {
		p.APIKeySecrets = k.Secrets
		if p.APIKeyHeader = k.KeyHeader(); p.APIKeyHeader == "" {
			p.APIKeyQuery = k.QueryParameter
		}
	}
	if b := a.BasicAuth; b != nil {
		p.BasicAuthSecret = b.Secret
		p.Realm = b.RealmName()
	}
	return p
}

// enableAuthn is the per-route configuration that turns the authentication filter on with
// policy p.
func enableAuthn(p authz.Policy) (*anypb.Any, error) {
	return filterConfig(&extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{
		CheckSettings: &extauthzv3.CheckSettings{ContextExtensions: p.ContextExtensions()},
	}})
}

// filterConfig wraps a per-route configuration so that it also enables a filter that is
// disabled by default; nil disables the filter for the route.
func filterConfig(m proto.Message) (*anypb.Any, error) {
	fc := &routev3.FilterConfig{Disabled: m == nil}
	if m != nil {
		a, err := deterministicAny(m)
		if err != nil {
			return nil, err
		}
		fc.Config = a
	}
	return deterministicAny(fc)
}

// deterministicAny packs m with its map entries in a fixed order: the same configuration must
// give the same bytes, or every push would look like a change.
func deterministicAny(m proto.Message) (*anypb.Any, error) {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, err
	}
	return a, nil
}

// authnVirtualHost turns authentication on for a VirtualService that asks for it.
func authnVirtualHost(vs *config.VirtualService, vh *routev3.VirtualHost) error {
	a := config.RouteAuthentication(vs.Spec.Security, nil)
	if !a.Required() {
		return nil
	}
	pf, err := enableAuthn(authnPolicy(vs.Metadata.Name, a))
	if err != nil {
		return err
	}
	setPerFilter(&vh.TypedPerFilterConfig, FilterAuthn, pf)
	return nil
}

// authnRoute gives a route that changes its VirtualService's authentication its own policy, or
// turns authentication off for it. A route without authentication never lets a client's
// identity header through: only the service sets it.
func (b *routeBuilder) authnRoute(vs *config.VirtualService, r *config.Route, er *routev3.Route) error {
	a := config.RouteAuthentication(vs.Spec.Security, r.Security)
	if !a.Required() {
		if b.identityHeaderOwned {
			er.RequestHeadersToRemove = append(er.RequestHeadersToRemove, config.IdentityHeader)
		}
		if vh := config.RouteAuthentication(vs.Spec.Security, nil); vh.Required() {
			pf, err := filterConfig(nil)
			if err != nil {
				return err
			}
			setPerFilter(&er.TypedPerFilterConfig, FilterAuthn, pf)
		}
		return nil
	}
	if vh := config.RouteAuthentication(vs.Spec.Security, nil); vh == a {
		return nil
	}
	pf, err := enableAuthn(authnPolicy(vs.Metadata.Name+"/"+er.Name, a))
	if err != nil {
		return err
	}
	setPerFilter(&er.TypedPerFilterConfig, FilterAuthn, pf)
	return nil
}

func setPerFilter(m *map[string]*anypb.Any, name string, a *anypb.Any) {
	if *m == nil {
		*m = map[string]*anypb.Any{}
	}
	maps.Copy(*m, map[string]*anypb.Any{name: a})
}
