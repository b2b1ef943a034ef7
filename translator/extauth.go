package translator

import (
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portico-gw/portico/config"
)

// filterExternalPrefix names the ext_authz filter instances that ask users' own authorization
// servers: one per VirtualService with extAuth, followed by its name, since each has its own
// server, timeout and failure mode (a filter-wide setting in Envoy).
const filterExternalPrefix = "envoy.filters.http.ext_authz/external/"

// extAuthContextVirtualService is the context extension that tells a gRPC authorization
// server which VirtualService a request is for.
const extAuthContextVirtualService = "virtual_service"

func filterExternal(vs *config.VirtualService) string { return filterExternalPrefix + vs.Metadata.Name }

// externalAuthzFilter is the ext_authz filter instance of a VirtualService's extAuth.
func externalAuthzFilter(vs *config.VirtualService) (*hcmv3.HttpFilter, error) {
	e := vs.Spec.Security.ExtAuth
	timeout := durationpb.New(e.TimeoutDuration())
	c := &extauthzv3.ExtAuthz{
		TransportApiVersion:       corev3.ApiVersion_V3,
		FailureModeAllow:          e.FailsOpen(),
		FailureModeAllowHeaderAdd: e.FailsOpen(),
		StatusOnError:             &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
		StatPrefix:                StatName(vs.Metadata.Name),
	}
	switch {
	case e.GRPC != nil:
		c.Services = &extauthzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: e.GRPC.Upstream}},
			Timeout:         timeout,
		}}
	case e.HTTP != nil:
		h := e.HTTP
		svc := &extauthzv3.HttpService{
			ServerUri: &corev3.HttpUri{
				Uri:              "http://" + h.Upstream,
				HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: h.Upstream},
				Timeout:          timeout,
			},
			PathPrefix: h.PathPrefix,
		}
		if len(h.RequestHeaders) > 0 {
			svc.AuthorizationRequest = &extauthzv3.AuthorizationRequest{AllowedHeaders: headerList(h.RequestHeaders)}
		}
		if len(h.UpstreamHeaders) > 0 {
			svc.AuthorizationResponse = &extauthzv3.AuthorizationResponse{AllowedUpstreamHeaders: headerList(h.UpstreamHeaders)}
		}
		c.Services = &extauthzv3.ExtAuthz_HttpService{HttpService: svc}
	default:
		return nil, fmt.Errorf("extAuth names no server")
	}
	a, err := anypb.New(c)
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: filterExternal(vs), Disabled: true, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}}, nil
}

// headerList matches the named headers, whatever their case.
func headerList(names []string) *matcherv3.ListStringMatcher {
	l := &matcherv3.ListStringMatcher{}
	for _, n := range names {
		l.Patterns = append(l.Patterns, &matcherv3.StringMatcher{
			MatchPattern: &matcherv3.StringMatcher_Exact{Exact: strings.ToLower(n)}, IgnoreCase: true,
		})
	}
	return l
}

// extAuthVirtualHost turns a VirtualService's external authorization on for its virtual host,
// telling the server which VirtualService asks.
func extAuthVirtualHost(vs *config.VirtualService, vh *routev3.VirtualHost) error {
	if sp := vs.Spec.Security; sp == nil || sp.ExtAuth == nil {
		return nil
	}
	pf, err := filterConfig(&extauthzv3.ExtAuthzPerRoute{Override: &extauthzv3.ExtAuthzPerRoute_CheckSettings{
		CheckSettings: &extauthzv3.CheckSettings{ContextExtensions: map[string]string{extAuthContextVirtualService: vs.Metadata.Name}},
	}})
	if err != nil {
		return err
	}
	setPerFilter(&vh.TypedPerFilterConfig, filterExternal(vs), pf)
	return nil
}

// extAuthRoute turns external authorization off for a route that opts out of it.
func extAuthRoute(vs *config.VirtualService, r *config.Route, er *routev3.Route) error {
	sp := vs.Spec.Security
	if sp == nil || sp.ExtAuth == nil || config.RouteUsesExtAuth(sp, r.Security) {
		return nil
	}
	pf, err := filterConfig(nil)
	if err != nil {
		return err
	}
	setPerFilter(&er.TypedPerFilterConfig, filterExternal(vs), pf)
	return nil
}
