package translator

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	commonfaultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-gw/portico/config"
)

// applyRouteOptions adds a route's options to its Envoy route. Options that act on forwarded
// requests go into the route action; validation allows them only on routes that have one.
func applyRouteOptions(o *config.RouteOptions, er *routev3.Route) error {
	er.RequestHeadersToAdd = append(headersToAdd(o.RequestHeadersToAdd), headersToSet(o.RequestHeadersToSet)...)
	er.RequestHeadersToRemove = slices.Clone(o.RequestHeadersToRemove)
	er.ResponseHeadersToAdd = append(headersToAdd(o.ResponseHeadersToAdd), headersToSet(o.ResponseHeadersToSet)...)
	er.ResponseHeadersToRemove = slices.Clone(o.ResponseHeadersToRemove)
	if o.Faults != nil {
		f, err := faults(o.Faults)
		if err != nil {
			return fmt.Errorf("faults: %w", err)
		}
		if err := perFilterConfig(&er.TypedPerFilterConfig, wellknown.Fault, f); err != nil {
			return err
		}
	}
	if o.CORS != nil {
		c, err := corsPolicy(o.CORS)
		if err != nil {
			return fmt.Errorf("cors: %w", err)
		}
		if err := perFilterConfig(&er.TypedPerFilterConfig, wellknown.CORS, c); err != nil {
			return err
		}
	}
	ra := er.GetRoute()
	if ra == nil {
		return nil
	}
	if m := o.Mirror; m != nil {
		ra.RequestMirrorPolicies = []*routev3.RouteAction_RequestMirrorPolicy{{
			Cluster:         m.Upstream,
			RuntimeFraction: &corev3.RuntimeFractionalPercent{DefaultValue: percent(m.Percentage)},
		}}
	}
	ra.HashPolicy = hashPolicies(o.HashPolicy)
	if o.WebSocket != nil {
		ra.UpgradeConfigs = []*routev3.RouteAction_UpgradeConfig{{UpgradeType: websocketUpgrade, Enabled: wrapperspb.Bool(*o.WebSocket)}}
	}
	switch {
	case o.PrefixRewrite != "":
		ra.PrefixRewrite = o.PrefixRewrite
	case o.RegexRewrite != nil:
		ra.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{
			Pattern:      &matcherv3.RegexMatcher{Regex: o.RegexRewrite.Pattern},
			Substitution: o.RegexRewrite.Substitution,
		}
	}
	switch {
	case o.HostRewrite != "":
		ra.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteLiteral{HostRewriteLiteral: o.HostRewrite}
	case o.AutoHostRewrite:
		ra.HostRewriteSpecifier = &routev3.RouteAction_AutoHostRewrite{AutoHostRewrite: wrapperspb.Bool(true)}
	case o.HostRewriteHeader != "":
		ra.HostRewriteSpecifier = &routev3.RouteAction_HostRewriteHeader{HostRewriteHeader: o.HostRewriteHeader}
	}
	var err error
	if ra.Timeout, err = optionalDuration("timeout", o.Timeout); err != nil {
		return err
	}
	if ra.IdleTimeout, err = optionalDuration("idleTimeout", o.IdleTimeout); err != nil {
		return err
	}
	if o.Retries != nil {
		if ra.RetryPolicy, err = retryPolicy(o.Retries); err != nil {
			return fmt.Errorf("retries: %w", err)
		}
	}
	return nil
}

// headersToSet overwrites a header the request or response already has, where headersToAdd
// appends.
func headersToSet(hs []config.HeaderValue) []*corev3.HeaderValueOption {
	out := headersToAdd(hs)
	for _, h := range out {
		h.AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
	}
	return out
}

func retryPolicy(r *config.RetryPolicy) (*routev3.RetryPolicy, error) {
	rp := &routev3.RetryPolicy{RetryOn: strings.Join(r.RetryOn, ",")}
	if r.NumRetries > 0 {
		rp.NumRetries = wrapperspb.UInt32(uint32(r.NumRetries))
	}
	var err error
	if rp.PerTryTimeout, err = optionalDuration("perTryTimeout", r.PerTryTimeout); err != nil {
		return nil, err
	}
	for _, c := range r.RetriableStatusCodes {
		rp.RetriableStatusCodes = append(rp.RetriableStatusCodes, uint32(c))
	}
	if b := r.Backoff; b != nil {
		rp.RetryBackOff = &routev3.RetryPolicy_RetryBackOff{}
		if rp.RetryBackOff.BaseInterval, err = optionalDuration("backoff.baseInterval", b.BaseInterval); err != nil {
			return nil, err
		}
		if rp.RetryBackOff.MaxInterval, err = optionalDuration("backoff.maxInterval", b.MaxInterval); err != nil {
			return nil, err
		}
	}
	return rp, nil
}

// optionalDuration converts a validated duration; an empty one stays unset, keeping Envoy's
// default.
func optionalDuration(field, d string) (*durationpb.Duration, error) {
	if d == "" {
		return nil, nil
	}
	parsed, err := time.ParseDuration(d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return durationpb.New(parsed), nil
}

const websocketUpgrade = "websocket"

// trafficNeeds records which of the filters that route options and actions configure a
// Gateway's listener needs.
type trafficNeeds struct{ fault, cors, lambda bool }

// trafficNeedsOf looks at the VirtualServices a Gateway serves, and the RouteTables they
// delegate to, for faults, CORS policies and lambda actions.
func trafficNeedsOf(cfg *config.Config, vss []*config.VirtualService) trafficNeeds {
	var n trafficNeeds
	for _, vs := range vss {
		if o := vs.Spec.Options; o != nil && o.CORS != nil {
			n.cors = true
		}
	}
	eachServedRoute(cfg, vss, func(r *config.Route) {
		n.lambda = n.lambda || r.Lambda != nil
		if o := r.Options; o != nil {
			n.fault = n.fault || o.Faults != nil
			n.cors = n.cors || o.CORS != nil
		}
	})
	return n
}

// eachServedRoute calls visit for every route of vss and of the RouteTables they delegate to,
// each RouteTable once.
func eachServedRoute(cfg *config.Config, vss []*config.VirtualService, visit func(r *config.Route)) {
	seen := map[*config.RouteTable]bool{}
	var walk func(routes []config.Route)
	walk = func(routes []config.Route) {
		for i := range routes {
			r := &routes[i]
			visit(r)
			if r.Delegate == nil {
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
	for _, vs := range vss {
		walk(vs.Spec.Routes)
	}
}

// trafficFilters are the HTTP filters that route options configure, each only when some route
// or virtual host of the Gateway uses it: a filter costs every request that passes it, even
// with nothing to do. Adding the first fault or CORS policy to a Gateway therefore changes its
// listener, and Envoy drains the connections of the old one gracefully, as it does for rate
// limits and authentication.
func trafficFilters(needs trafficNeeds) ([]*hcmv3.HttpFilter, error) {
	var out []*hcmv3.HttpFilter
	for _, f := range []struct {
		used bool
		name string
		cfg  proto.Message
	}{{needs.fault, wellknown.Fault, &faultv3.HTTPFault{}}, {needs.cors, wellknown.CORS, &corsv3.Cors{}}} {
		if !f.used {
			continue
		}
		a, err := anypb.New(f.cfg)
		if err != nil {
			return nil, err
		}
		out = append(out, &hcmv3.HttpFilter{Name: f.name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}})
	}
	return out, nil
}

// upgradeConfigs lists WebSocket on every listener, so that a route can allow it even when the
// Gateway does not: Envoy consults a route's upgrade setting only for types its connection
// manager lists.
func upgradeConfigs(gw *config.Gateway) []*hcmv3.HttpConnectionManager_UpgradeConfig {
	enabled := gw.Spec.Options != nil && gw.Spec.Options.WebSocket
	return []*hcmv3.HttpConnectionManager_UpgradeConfig{{UpgradeType: websocketUpgrade, Enabled: wrapperspb.Bool(enabled)}}
}

// perFilterConfig sets the per-route (or per-virtual-host) configuration of one HTTP filter.
func perFilterConfig(configs *map[string]*anypb.Any, filter string, cfg proto.Message) error {
	a, err := anypb.New(cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", filter, err)
	}
	if *configs == nil {
		*configs = map[string]*anypb.Any{}
	}
	(*configs)[filter] = a
	return nil
}

// percent converts a validated percentage (0 meaning the default, 100) to Envoy's millionths,
// which keep four decimal places.
func percent(p float64) *typev3.FractionalPercent {
	if p == 0 {
		p = 100
	}
	return &typev3.FractionalPercent{
		Numerator:   uint32(math.Round(p * 10000)),
		Denominator: typev3.FractionalPercent_MILLION,
	}
}

func faults(f *config.Faults) (*faultv3.HTTPFault, error) {
	out := &faultv3.HTTPFault{}
	if d := f.Delay; d != nil {
		fixed, err := optionalDuration("delay.fixed", d.Fixed)
		if err != nil {
			return nil, err
		}
		out.Delay = &commonfaultv3.FaultDelay{
			FaultDelaySecifier: &commonfaultv3.FaultDelay_FixedDelay{FixedDelay: fixed},
			Percentage:         percent(d.Percentage),
		}
	}
	if a := f.Abort; a != nil {
		out.Abort = &faultv3.FaultAbort{
			ErrorType:  &faultv3.FaultAbort_HttpStatus{HttpStatus: uint32(a.Status)},
			Percentage: percent(a.Percentage),
		}
	}
	return out, nil
}

func corsPolicy(c *config.CORSPolicy) (*corsv3.CorsPolicy, error) {
	out := &corsv3.CorsPolicy{
		AllowMethods:  strings.Join(c.AllowMethods, ","),
		AllowHeaders:  strings.Join(c.AllowHeaders, ","),
		ExposeHeaders: strings.Join(c.ExposeHeaders, ","),
	}
	for _, o := range c.AllowOrigins {
		out.AllowOriginStringMatch = append(out.AllowOriginStringMatch, stringMatcher(o.Exact, o.Regex))
	}
	if c.MaxAge != "" {
		d, err := time.ParseDuration(c.MaxAge)
		if err != nil {
			return nil, fmt.Errorf("maxAge: %w", err)
		}
		// Browsers read whole seconds; validation allows nothing finer.
		out.MaxAge = strconv.Itoa(int(d / time.Second))
	}
	if c.AllowCredentials {
		out.AllowCredentials = wrapperspb.Bool(true)
	}
	return out, nil
}

// virtualHostCORS sets a VirtualService's CORS policy, which its routes without one inherit.
func virtualHostCORS(c *config.CORSPolicy, vh *routev3.VirtualHost) error {
	if c == nil {
		return nil
	}
	p, err := corsPolicy(c)
	if err != nil {
		return err
	}
	return perFilterConfig(&vh.TypedPerFilterConfig, wellknown.CORS, p)
}
