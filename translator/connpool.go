package translator

import (
	"fmt"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-gw/portico/config"
)

// applyConnectionPool sets an Upstream's connection pool limits on its cluster. Envoy reads
// them from the same HttpProtocolOptions extension that selects HTTP/2, so they are merged
// into any options already there instead of replacing them.
func applyConnectionPool(o *config.UpstreamOptions, c *clusterv3.Cluster) error {
	if o == nil || o.ConnectionPool == nil {
		return nil
	}
	cp := o.ConnectionPool
	common := &corev3.HttpProtocolOptions{}
	if n := cp.MaxRequestsPerConnection; n > 0 {
		common.MaxRequestsPerConnection = wrapperspb.UInt32(uint32(n))
	}
	var err error
	if common.IdleTimeout, err = optionalDuration("idleTimeout", cp.IdleTimeout); err != nil {
		return fmt.Errorf("connectionPool: %w", err)
	}
	if common.MaxConnectionDuration, err = optionalDuration("maxConnectionDuration", cp.MaxConnectionDuration); err != nil {
		return fmt.Errorf("connectionPool: %w", err)
	}
	opts := &httpv3.HttpProtocolOptions{}
	if existing, ok := c.TypedExtensionProtocolOptions[httpProtocolOptions]; ok {
		if err := existing.UnmarshalTo(opts); err != nil {
			return fmt.Errorf("connectionPool: reading http protocol options: %w", err)
		}
	} else {
		// Envoy requires the extension to name a protocol; HTTP/1.1 is what the cluster
		// speaks without it.
		opts.UpstreamProtocolOptions = &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{HttpProtocolOptions: &corev3.Http1ProtocolOptions{}},
		}}
	}
	opts.CommonHttpProtocolOptions = common
	packed, err := anypb.New(opts)
	if err != nil {
		return fmt.Errorf("connectionPool: %w", err)
	}
	if c.TypedExtensionProtocolOptions == nil {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{}
	}
	c.TypedExtensionProtocolOptions[httpProtocolOptions] = packed
	return nil
}
