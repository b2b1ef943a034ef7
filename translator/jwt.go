package translator

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	celv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/filters/cel/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-gw/portico/config"
)

// The HTTP filters JWT authentication adds: claim headers are removed from the request before
// jwt_authn verifies the token and adds them again from its claims, so an upstream never sees a
// client's own value under a claim header.
const (
	filterJWT             = "envoy.filters.http.jwt_authn"
	filterJWTClaimHeaders = "portico.jwt.claim_headers"
)

// The requirement names of a VirtualService's routes, after the VirtualService's name.
const (
	jwtRequired = "required"
	jwtOptional = "optional"
)

// jwtPayloadKey is where jwt_authn puts the payload of a verified token in the request's dynamic
// metadata, under the filter's name. Rate limits keyed by a claim read it from there: only
// Envoy's filters write dynamic metadata, so a client cannot supply a claim value.
const jwtPayloadKey = "payload"

// audienceDeniedDetails is the response code detail jwt_authn gives a token whose audience is
// not accepted. Envoy answers it with 403, although the token is as unusable here as an expired
// one (RFC 6750 invalid_token, 401); a local reply mapper turns it into 401.
const audienceDeniedDetails = "jwt_authn_access_denied{Audiences_in_Jwt_are_not_allowed}"

// jwtProviderName is the Envoy name of a provider: providers of all VirtualServices on a
// Gateway share one filter, and their names are unique only within a VirtualService.
func jwtProviderName(vs *config.VirtualService, p *config.JWTProvider) string {
	return vs.Metadata.Name + "/" + p.Name
}

func jwtRequirementName(vs *config.VirtualService, kind string) string {
	return vs.Metadata.Name + "/" + kind
}

// applyJWT puts jwt_authn (and the claim-header filter before it) in front of the filters
// already there, when a VirtualService the Gateway serves declares JWT providers.
func applyJWT(vss []*config.VirtualService, hcm *hcmv3.HttpConnectionManager) error {
	authn := &jwtv3.JwtAuthentication{
		Providers:      map[string]*jwtv3.JwtProvider{},
		RequirementMap: map[string]*jwtv3.JwtRequirement{},
		// A preflight carries no credentials by design; the CORS filter answers it.
		BypassCorsPreflight: true,
	}
	claimHeaders := false
	for _, vs := range vss {
		sp := vs.Spec.Security
		if sp == nil || sp.JWT == nil {
			continue
		}
		var names []string
		for i := range sp.JWT.Providers {
			p := &sp.JWT.Providers[i]
			jp, err := jwtProvider(p)
			if err != nil {
				return fmt.Errorf("virtual service %q: provider %q: %w", vs.Metadata.Name, p.Name, err)
			}
			name := jwtProviderName(vs, p)
			authn.Providers[name] = jp
			names = append(names, name)
		}
		authn.RequirementMap[jwtRequirementName(vs, jwtRequired)] = anyProvider(names, false)
		authn.RequirementMap[jwtRequirementName(vs, jwtOptional)] = anyProvider(names, true)
		claimHeaders = claimHeaders || len(sp.JWT.ClaimHeaders()) > 0
	}
	if len(authn.Providers) == 0 {
		return nil
	}
	var filters []*hcmv3.HttpFilter
	if claimHeaders {
		// Without mutations of its own the filter does nothing; each JWT virtual host gives it
		// the headers to remove.
		f, err := httpFilter(filterJWTClaimHeaders, &headermutationv3.HeaderMutation{})
		if err != nil {
			return err
		}
		filters = append(filters, f)
	}
	f, err := httpFilter(filterJWT, authn)
	if err != nil {
		return err
	}
	hcm.HttpFilters = append(append(filters, f), hcm.HttpFilters...)
	mapper, err := audienceDeniedMapper()
	if err != nil {
		return err
	}
	if hcm.LocalReplyConfig == nil {
		hcm.LocalReplyConfig = &hcmv3.LocalReplyConfig{}
	}
	hcm.LocalReplyConfig.Mappers = append(hcm.LocalReplyConfig.Mappers, mapper)
	return nil
}

// audienceDeniedMapper answers a token with a foreign audience 401, like every other invalid
// token; jwt_authn's www-authenticate header (error="invalid_token") is kept.
func audienceDeniedMapper() (*hcmv3.ResponseMapper, error) {
	cel, err := anypb.New(&celv3.ExpressionFilter{Expression: fmt.Sprintf("response.code_details == %q", audienceDeniedDetails)})
	if err != nil {
		return nil, err
	}
	return &hcmv3.ResponseMapper{
		Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{
			AndFilter: &accesslogv3.AndFilter{Filters: []*accesslogv3.AccessLogFilter{
				{FilterSpecifier: &accesslogv3.AccessLogFilter_StatusCodeFilter{
					StatusCodeFilter: &accesslogv3.StatusCodeFilter{Comparison: &accesslogv3.ComparisonFilter{
						Op:    accesslogv3.ComparisonFilter_EQ,
						Value: &corev3.RuntimeUInt32{DefaultValue: http.StatusForbidden, RuntimeKey: "portico.jwt_audience_status"},
					}},
				}},
				{FilterSpecifier: &accesslogv3.AccessLogFilter_ExtensionFilter{ExtensionFilter: &accesslogv3.ExtensionFilter{
					Name:       "envoy.access_loggers.extension_filters.cel",
					ConfigType: &accesslogv3.ExtensionFilter_TypedConfig{TypedConfig: cel},
				}}},
			}},
		}},
		StatusCode: wrapperspb.UInt32(http.StatusUnauthorized),
	}, nil
}

// anyProvider accepts a token that any of the providers verifies; optional also lets a request
// without a token pass (but not one with an invalid token).
func anyProvider(names []string, optional bool) *jwtv3.JwtRequirement {
	var reqs []*jwtv3.JwtRequirement
	for _, n := range names {
		reqs = append(reqs, &jwtv3.JwtRequirement{RequiresType: &jwtv3.JwtRequirement_ProviderName{ProviderName: n}})
	}
	if optional {
		reqs = append(reqs, &jwtv3.JwtRequirement{RequiresType: &jwtv3.JwtRequirement_AllowMissing{}})
	}
	if len(reqs) == 1 {
		return reqs[0]
	}
	return &jwtv3.JwtRequirement{RequiresType: &jwtv3.JwtRequirement_RequiresAny{
		RequiresAny: &jwtv3.JwtRequirementOrList{Requirements: reqs},
	}}
}

func jwtProvider(p *config.JWTProvider) (*jwtv3.JwtProvider, error) {
	jp := &jwtv3.JwtProvider{
		Issuer:    p.Issuer,
		Audiences: append([]string(nil), p.Audiences...),
		Forward:   p.ForwardToken,
		// Every provider writes to the same key: a request is verified by one of them.
		PayloadInMetadata: jwtPayloadKey,
	}
	if r := p.JWKS.Remote; r != nil {
		timeout, err := time.ParseDuration(cmp.Or(r.Timeout, config.DefaultJWKSTimeout))
		if err != nil {
			return nil, fmt.Errorf("timeout: %w", err)
		}
		remote := &jwtv3.RemoteJwks{
			HttpUri: &corev3.HttpUri{
				Uri:              r.URL,
				HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: r.Upstream},
				Timeout:          durationpb.New(timeout),
			},
			// Fetch when the listener starts and again before the keys expire, so no request
			// waits for a fetch; the listener does not wait for the first one.
			AsyncFetch: &jwtv3.JwksAsyncFetch{FastListener: true},
		}
		if r.CacheDuration != "" {
			d, err := time.ParseDuration(r.CacheDuration)
			if err != nil {
				return nil, fmt.Errorf("cacheDuration: %w", err)
			}
			remote.CacheDuration = durationpb.New(d)
		}
		jp.JwksSourceSpecifier = &jwtv3.JwtProvider_RemoteJwks{RemoteJwks: remote}
	} else {
		if p.JWKS.Keys() == "" {
			return nil, fmt.Errorf("jwks file %s was not read", p.JWKS.File)
		}
		jp.JwksSourceSpecifier = &jwtv3.JwtProvider_LocalJwks{LocalJwks: &corev3.DataSource{
			Specifier: &corev3.DataSource_InlineString{InlineString: p.JWKS.Keys()},
		}}
	}
	// Locations are always explicit: Envoy's own default also reads the access_token query
	// parameter, which puts tokens in access logs.
	from := p.TokenLocations()
	for _, h := range from.Headers {
		jp.FromHeaders = append(jp.FromHeaders, &jwtv3.JwtHeader{Name: h.Name, ValuePrefix: h.Prefix})
	}
	jp.FromParams = append([]string(nil), from.QueryParameters...)
	jp.FromCookies = append([]string(nil), from.Cookies...)
	for _, c := range p.ClaimToHeaders {
		jp.ClaimToHeaders = append(jp.ClaimToHeaders, &jwtv3.JwtClaimToHeader{HeaderName: c.Header, ClaimName: c.Claim})
	}
	return jp, nil
}

// jwtVirtualHost gives a JWT VirtualService's virtual host the claim headers to remove from
// every request, on all of its routes: also where no token is checked, since the upstream
// cannot tell who set them.
func jwtVirtualHost(vs *config.VirtualService, vh *routev3.VirtualHost) error {
	sp := vs.Spec.Security
	if sp == nil || sp.JWT == nil {
		return nil
	}
	headers := sp.JWT.ClaimHeaders()
	if len(headers) == 0 {
		return nil
	}
	m := &headermutationv3.Mutations{}
	for _, h := range headers {
		m.RequestMutations = append(m.RequestMutations, &mutationv3.HeaderMutation{
			Action: &mutationv3.HeaderMutation_Remove{Remove: h},
		})
	}
	return addPerFilter(&vh.TypedPerFilterConfig, filterJWTClaimHeaders, &headermutationv3.HeaderMutationPerRoute{Mutations: m})
}

// jwtRoute tells jwt_authn what a route of vs requires. Routes of VirtualServices without
// providers get no per-route configuration, which jwt_authn lets through unchecked.
func jwtRoute(vs *config.VirtualService, r *config.Route, er *routev3.Route) error {
	var pr *jwtv3.PerRouteConfig
	switch config.JWTModeOf(vs.Spec.Security, r) {
	case config.JWTOff:
		if vs.Spec.Security == nil || vs.Spec.Security.JWT == nil {
			return nil
		}
		pr = &jwtv3.PerRouteConfig{RequirementSpecifier: &jwtv3.PerRouteConfig_Disabled{Disabled: true}}
	case config.JWTOptional:
		pr = &jwtv3.PerRouteConfig{RequirementSpecifier: &jwtv3.PerRouteConfig_RequirementName{RequirementName: jwtRequirementName(vs, jwtOptional)}}
	case config.JWTRequired:
		pr = &jwtv3.PerRouteConfig{RequirementSpecifier: &jwtv3.PerRouteConfig_RequirementName{RequirementName: jwtRequirementName(vs, jwtRequired)}}
	}
	return addPerFilter(&er.TypedPerFilterConfig, filterJWT, pr)
}

// jwtClaimAction makes a descriptor entry of a claim of the verified token's payload. A request
// without the claim (no token, an optional route, or a claim that is not a string) gets no
// descriptor from this limit, so it is not counted by it.
func jwtClaimAction(claim string) *routev3.RateLimit_Action {
	path := []*metadatav3.MetadataKey_PathSegment{{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: jwtPayloadKey}}}
	for _, part := range strings.Split(claim, ".") {
		path = append(path, &metadatav3.MetadataKey_PathSegment{Segment: &metadatav3.MetadataKey_PathSegment_Key{Key: part}})
	}
	return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_Metadata{Metadata: &routev3.RateLimit_Action_MetaData{
		DescriptorKey: descriptorJWTClaim,
		MetadataKey:   &metadatav3.MetadataKey{Key: filterJWT, Path: path},
		Source:        routev3.RateLimit_Action_MetaData_DYNAMIC,
	}}}
}

// addPerFilter adds one per-filter configuration to a route's or virtual host's map.
func addPerFilter(dst *map[string]*anypb.Any, name string, m proto.Message) error {
	pf, err := typedPerFilter(map[string]proto.Message{name: m})
	if err != nil {
		return err
	}
	if *dst == nil {
		*dst = pf
		return nil
	}
	maps.Copy(*dst, pf)
	return nil
}

// httpFilter wraps a filter configuration. Marshaling is deterministic because jwt_authn's
// configuration holds maps, whose order would otherwise change the bytes, and with them the
// resource, on every translation.
func httpFilter(name string, m proto.Message) (*hcmv3.HttpFilter, error) {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true}); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}
