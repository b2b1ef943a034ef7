package translator

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"

	"github.com/portico-gw/portico/config"
)

// dnsClusterType maps a DNS Upstream's resolution to Envoy's cluster type; strict is the
// default because it spreads load over every address a name has.
func dnsClusterType(resolution string) clusterv3.Cluster_DiscoveryType {
	if resolution == config.DNSResolutionLogical {
		return clusterv3.Cluster_LOGICAL_DNS
	}
	return clusterv3.Cluster_STRICT_DNS
}
