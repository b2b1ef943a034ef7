package translator

import (
	"fmt"
	"slices"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
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
	ra := er.GetRoute()
	if ra == nil {
		return nil
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
