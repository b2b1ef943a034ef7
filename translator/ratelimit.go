package translator

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	ratelimitconfv3 "github.com/envoyproxy/go-control-plane/envoy/config/ratelimit/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	localrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	rlfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-gw/portico/config"
	bootstrap "github.com/portico-gw/portico/envoy-bootstrap"
	"github.com/portico-gw/portico/ratelimit"
)

// RateLimitDomain is the domain Envoy's ratelimit filter sends with every check; the rate limit
// service answers only this domain.
const RateLimitDomain = "portico"

// The HTTP filters rate limiting adds. Local limits at each level are separate filter
// instances, so that a Gateway's, a VirtualService's and a route's buckets all apply: with one
// instance Envoy would use only the most specific per-route configuration.
const (
	filterLocalGateway        = "portico.local_ratelimit.gateway"
	filterLocalVirtualService = "portico.local_ratelimit.virtual_service"
	filterLocalRoute          = "portico.local_ratelimit.route"
	filterGlobal              = "envoy.filters.http.ratelimit"
)

// rateLimitTimeout bounds Envoy's wait for the rate limit service. It must exceed the
// service's own store timeout (Redis: a round trip plus a dial, 100ms each by default), or
// Envoy decides by itself before the service can apply its failure policy.
const rateLimitTimeout = 500 * time.Millisecond

// The descriptor entry keys of global limits. Every descriptor starts with a generic_key entry
// whose value names the limit, so that two limits keyed alike never share counters.
const (
	descriptorHeader   = "header"
	descriptorPath     = "path"
	descriptorJWTClaim = "jwt_claim"
	descriptorIdentity = "identity"
)

// rateLimitNeeds records which rate limit filters a Gateway's listener needs, from the
// VirtualServices attached to it.
type rateLimitNeeds struct {
	virtualServiceLocal, routeLocal, global bool
	// failClosed makes Envoy reject when it cannot reach the service, as the service itself
	// does when its store fails closed.
	failClosed bool
}

func (n *rateLimitNeeds) add(p *config.RateLimitPolicy, vsLevel bool) {
	if p == nil {
		return
	}
	if p.Local != nil {
		if vsLevel {
			n.virtualServiceLocal = true
		} else {
			n.routeLocal = true
		}
	}
	n.global = n.global || len(p.Global) > 0
}

// rateLimitNeedsOf walks the VirtualServices a Gateway serves, and the RouteTables they
// delegate to, for the rate limits they use.
func rateLimitNeedsOf(cfg *config.Config, vss []*config.VirtualService) rateLimitNeeds {
	var n rateLimitNeeds
	if st := cfg.RateLimitStore(); st != nil {
		n.failClosed = st.FailsClosed()
	}
	for _, vs := range vss {
		n.add(vs.Spec.RateLimit, true)
	}
	eachServedRoute(cfg, vss, func(r *config.Route) { n.add(r.RateLimit, false) })
	return n
}

// applyRateLimitFilters puts the rate limit filters a Gateway needs in front of the router,
// cheapest first: the Gateway's bucket, then the VirtualService's and the route's, then the
// call to the rate limit service.
func applyRateLimitFilters(gw *config.Gateway, needs rateLimitNeeds, hcm *hcmv3.HttpConnectionManager) error {
	var filters []*hcmv3.HttpFilter
	add := func(name string, m proto.Message) error {
		a, err := anypb.New(m)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		filters = append(filters, &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}})
		return nil
	}
	rl := gw.Spec.RateLimit
	if rl != nil && rl.Local != nil {
		if err := add(filterLocalGateway, localRateLimit("gateway_local_ratelimit", rl.Local)); err != nil {
			return err
		}
	}
	// Without a bucket of their own these instances pass every request; per-route
	// configuration on virtual hosts and routes gives them one.
	if needs.virtualServiceLocal {
		if err := add(filterLocalVirtualService, &localrlv3.LocalRateLimit{StatPrefix: "virtual_service_local_ratelimit"}); err != nil {
			return err
		}
	}
	if needs.routeLocal {
		if err := add(filterLocalRoute, &localrlv3.LocalRateLimit{StatPrefix: "route_local_ratelimit"}); err != nil {
			return err
		}
	}
	if needs.global {
		if err := add(filterGlobal, &rlfilterv3.RateLimit{
			Domain:                  RateLimitDomain,
			FailureModeDeny:         needs.failClosed,
			Timeout:                 durationpb.New(rateLimitTimeout),
			EnableXRatelimitHeaders: rlfilterv3.RateLimit_DRAFT_VERSION_03,
			RateLimitService: &ratelimitconfv3.RateLimitServiceConfig{
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
					EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: bootstrap.RateLimitClusterName},
				}},
			},
		}); err != nil {
			return err
		}
	}
	hcm.HttpFilters = append(filters, hcm.HttpFilters...)
	if rl != nil && rl.Body != "" {
		// Global rejections carry the RL response flag; local ones carry no flag, but Envoy
		// itself answers 429 for nothing else, and mappers see only Envoy's own answers.
		hcm.LocalReplyConfig = &hcmv3.LocalReplyConfig{Mappers: []*hcmv3.ResponseMapper{{
			Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_OrFilter{
				OrFilter: &accesslogv3.OrFilter{Filters: []*accesslogv3.AccessLogFilter{
					{FilterSpecifier: &accesslogv3.AccessLogFilter_ResponseFlagFilter{
						ResponseFlagFilter: &accesslogv3.ResponseFlagFilter{Flags: []string{"RL"}},
					}},
					{FilterSpecifier: &accesslogv3.AccessLogFilter_StatusCodeFilter{
						StatusCodeFilter: &accesslogv3.StatusCodeFilter{Comparison: &accesslogv3.ComparisonFilter{
							Op: accesslogv3.ComparisonFilter_EQ,
							Value: &corev3.RuntimeUInt32{
								DefaultValue: http.StatusTooManyRequests,
								RuntimeKey:   "portico.rate_limit_body_status",
							},
						}},
					}},
				}},
			}},
			Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: rl.Body}},
		}}}
	}
	return nil
}

// localRateLimit is the filter configuration of one token bucket, enforced for every request.
func localRateLimit(statPrefix string, l *config.LocalRateLimit) *localrlv3.LocalRateLimit {
	all := &corev3.RuntimeFractionalPercent{DefaultValue: &typev3.FractionalPercent{
		Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED,
	}}
	c := &localrlv3.LocalRateLimit{
		StatPrefix: statPrefix,
		TokenBucket: &typev3.TokenBucket{
			MaxTokens:     uint32(l.BucketSize()),
			TokensPerFill: wrapperspb.UInt32(uint32(l.Requests)),
			FillInterval:  durationpb.New(l.LocalInterval()),
		},
		FilterEnabled:  all,
		FilterEnforced: proto.Clone(all).(*corev3.RuntimeFractionalPercent),
	}
	if s := l.LimitedStatus(); s != 429 {
		c.Status = &typev3.HttpStatus{Code: typev3.StatusCode(s)}
	}
	if l.HeadersEnabled() {
		c.EnableXRatelimitHeaders = commonrlv3.XRateLimitHeadersRFCVersion_DRAFT_VERSION_03
	}
	return c
}

// typedPerFilter packs per-route filter configurations.
func typedPerFilter(configs map[string]proto.Message) (map[string]*anypb.Any, error) {
	if len(configs) == 0 {
		return nil, nil
	}
	out := make(map[string]*anypb.Any, len(configs))
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		a, err := anypb.New(configs[name])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = a
	}
	return out, nil
}

// rateLimitVirtualHost applies a VirtualService's rate limits to its virtual host.
func (b *routeBuilder) rateLimitVirtualHost(vs *config.VirtualService, vh *routev3.VirtualHost) error {
	p := vs.Spec.RateLimit
	if p == nil {
		return nil
	}
	if p.Local != nil {
		pf, err := typedPerFilter(map[string]proto.Message{
			filterLocalVirtualService: localRateLimit("virtual_service_local_ratelimit", p.Local),
		})
		if err != nil {
			return err
		}
		if vh.TypedPerFilterConfig == nil {
			vh.TypedPerFilterConfig = pf
		} else {
			maps.Copy(vh.TypedPerFilterConfig, pf)
		}
	}
	vh.RateLimits = b.globalLimits(vs.Metadata.Name, p.Global)
	return nil
}

// rateLimitRoute applies a route's rate limits. When its VirtualService has global limits too,
// the route includes them: by default Envoy drops them for a route with limits of its own.
func (b *routeBuilder) rateLimitRoute(vs *config.VirtualService, r *config.Route, er *routev3.Route) error {
	p := r.RateLimit
	if p == nil {
		return nil
	}
	configs := map[string]proto.Message{}
	if p.Local != nil {
		configs[filterLocalRoute] = localRateLimit("route_local_ratelimit", p.Local)
	}
	if len(p.Global) > 0 {
		action := er.GetRoute()
		if action == nil {
			return fmt.Errorf("global rate limits on a route that does not forward")
		}
		action.RateLimits = b.globalLimits(vs.Metadata.Name+"/"+er.Name, p.Global)
		if vs.Spec.RateLimit != nil && len(vs.Spec.RateLimit.Global) > 0 {
			configs[filterGlobal] = &rlfilterv3.RateLimitPerRoute{VhRateLimits: rlfilterv3.RateLimitPerRoute_INCLUDE}
		}
	}
	pf, err := typedPerFilter(configs)
	if err != nil {
		return err
	}
	if er.TypedPerFilterConfig == nil {
		er.TypedPerFilterConfig = pf
	} else {
		maps.Copy(er.TypedPerFilterConfig, pf)
	}
	return nil
}

// globalLimits turns global limits into Envoy rate limit actions and records the limits the
// service enforces, named scope/name. A VirtualService served by several Gateways yields the
// same limits on each, which share their counters.
func (b *routeBuilder) globalLimits(scope string, limits []config.GlobalRateLimit) []*routev3.RateLimit {
	var out []*routev3.RateLimit
	for _, l := range limits {
		name := scope + "/" + l.Name
		actions := []*routev3.RateLimit_Action{{ActionSpecifier: &routev3.RateLimit_Action_GenericKey_{
			GenericKey: &routev3.RateLimit_Action_GenericKey{DescriptorValue: name},
		}}}
		matches := []ratelimit.DescriptorMatch{{Key: ratelimit.KeyGenericKey, Value: name}}
		if k := l.Key; k != nil {
			if k.ClientIP {
				actions = append(actions, &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RemoteAddress_{
					RemoteAddress: &routev3.RateLimit_Action_RemoteAddress{},
				}})
				matches = append(matches, ratelimit.DescriptorMatch{Key: ratelimit.KeyRemoteAddress})
			}
			if k.Header != "" {
				actions = append(actions, requestHeaderAction(k.Header, descriptorHeader))
				matches = append(matches, ratelimit.DescriptorMatch{Key: descriptorHeader})
			}
			if k.Path {
				actions = append(actions, requestHeaderAction(":path", descriptorPath))
				matches = append(matches, ratelimit.DescriptorMatch{Key: descriptorPath})
			}
			if k.JWTClaim != "" {
				actions = append(actions, jwtClaimAction(k.JWTClaim))
				matches = append(matches, ratelimit.DescriptorMatch{Key: descriptorJWTClaim})
			}
			if k.Identity {
				actions = append(actions, identityAction())
				matches = append(matches, ratelimit.DescriptorMatch{Key: descriptorIdentity})
			}
		}
		out = append(out, &routev3.RateLimit{Actions: actions})
		if b.limits == nil {
			b.limits = map[string]ratelimit.Limit{}
		}
		b.limits[name] = ratelimit.Limit{
			Name:            name,
			Descriptors:     matches,
			RequestsPerUnit: uint32(l.RequestsPerUnit),
			Unit:            rateLimitUnits[l.Unit],
			Shadow:          l.Shadow,
		}
	}
	return out
}

var rateLimitUnits = map[string]ratelimit.Unit{
	"second": ratelimit.Second, "minute": ratelimit.Minute, "hour": ratelimit.Hour, "day": ratelimit.Day,
}

func requestHeaderAction(header, key string) *routev3.RateLimit_Action {
	return &routev3.RateLimit_Action{ActionSpecifier: &routev3.RateLimit_Action_RequestHeaders_{
		RequestHeaders: &routev3.RateLimit_Action_RequestHeaders{HeaderName: header, DescriptorKey: key},
	}}
}

// sortedLimits lists the recorded limits by name.
func sortedLimits(m map[string]ratelimit.Limit) []ratelimit.Limit {
	out := slices.Collect(maps.Values(m))
	slices.SortFunc(out, func(a, b ratelimit.Limit) int { return cmp.Compare(a.Name, b.Name) })
	return out
}
