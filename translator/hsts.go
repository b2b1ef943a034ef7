package translator

import (
	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/header_mutation/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	"github.com/portico-gw/portico/config"
)

// filterHSTS is the header mutation filter that sets Strict-Transport-Security.
const filterHSTS = "envoy.filters.http.header_mutation/hsts"

// applyHSTS puts, on an HTTPS Gateway with tls.hsts, a filter that sets Strict-Transport-Security
// on every response, replacing one a backend sends, so the Gateway's policy is the host's. It
// goes first in the chain: a filter's local reply (an authorization refusal, a rate limit, a
// missing route) passes back through the filters in front of the one that sent it, so only the
// first sees every response. It changes no request, so its place decides nothing else.
func applyHSTS(gw *config.Gateway, hcm *hcmv3.HttpConnectionManager) error {
	if gw.Spec.Protocol != config.ProtocolHTTPS || gw.Spec.TLS == nil || gw.Spec.TLS.HSTS == nil {
		return nil
	}
	f, err := httpFilter(filterHSTS, &headermutationv3.HeaderMutation{Mutations: &headermutationv3.Mutations{
		ResponseMutations: []*mutationrulesv3.HeaderMutation{{Action: &mutationrulesv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: "strict-transport-security", Value: gw.Spec.TLS.HSTS.Value()},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}}}},
	}})
	if err != nil {
		return err
	}
	hcm.HttpFilters = append([]*hcmv3.HttpFilter{f}, hcm.HttpFilters...)
	return nil
}
