package translator

import (
	"fmt"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	netlocalrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/local_ratelimit/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-gw/portico/config"
)

// filterNetworkLocalRateLimit is Envoy's network filter that takes a token for every new
// connection and closes the connection when there is none.
const filterNetworkLocalRateLimit = "envoy.filters.network.local_ratelimit"

// tcpRateLimitFilter is the connection token bucket of a TCP Gateway, or nil without one. It
// goes before tcp_proxy, so a rejected connection never reaches the Upstream. Its stats are
// local_rate_limit.<gateway>.rate_limited.
func tcpRateLimitFilter(gw *config.Gateway, r *config.TCPRateLimit) (*listenerv3.Filter, error) {
	if r == nil {
		return nil, nil
	}
	typed, err := anypb.New(&netlocalrlv3.LocalRateLimit{
		StatPrefix: StatName(gw.Metadata.Name),
		TokenBucket: &typev3.TokenBucket{
			MaxTokens:     uint32(r.BucketSize()),
			TokensPerFill: wrapperspb.UInt32(uint32(r.Connections)),
			FillInterval:  durationpb.New(r.FillInterval()),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("tcp rate limit: %w", err)
	}
	return &listenerv3.Filter{
		Name:       filterNetworkLocalRateLimit,
		ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: typed},
	}, nil
}
