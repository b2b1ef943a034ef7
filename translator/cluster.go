package translator

import (
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-gw/portico/config"
)

const connectTimeout = 5 * time.Second

// lookupFamilies maps a DNS Upstream's lookupFamily to Envoy's.
var lookupFamilies = map[string]clusterv3.Cluster_DnsLookupFamily{
	config.LookupFamilyV4:   clusterv3.Cluster_V4_ONLY,
	config.LookupFamilyV6:   clusterv3.Cluster_V6_ONLY,
	config.LookupFamilyAuto: clusterv3.Cluster_AUTO,
}

// upstream builds the cluster for an Upstream and, for static hosts, its endpoints. Static
// hosts are served over EDS so that changing a host list updates endpoints in place instead of
// rebuilding the cluster and its connection pools. DNS hosts are resolved by Envoy itself
// (STRICT_DNS: every address a name resolves to is an endpoint), so their names travel inside
// the cluster and there is no separate load assignment.
func upstream(u *config.Upstream) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment, error) {
	c := &clusterv3.Cluster{
		Name:           u.Metadata.Name,
		ConnectTimeout: durationpb.New(connectTimeout),
	}
	if err := applyUpstreamOptions(u.Spec.Options, c); err != nil {
		return nil, nil, fmt.Errorf("options: %w", err)
	}
	if o := u.Spec.Options; o != nil && o.TLS != nil {
		if err := originateTLS(u, c); err != nil {
			return nil, nil, fmt.Errorf("options: %w", err)
		}
	}
	if err := applySlowStart(u.Spec.Options, c); err != nil {
		return nil, nil, fmt.Errorf("options: %w", err)
	}
	if err := applyConnectionPool(u.Spec.Options, c); err != nil {
		return nil, nil, fmt.Errorf("options: %w", err)
	}
	if sn := StatName(u.Metadata.Name); sn != u.Metadata.Name {
		// Envoy would cut a dotted name short in envoy_cluster_name.
		c.AltStatName = sn
	}
	switch {
	case u.Spec.Static != nil:
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
		c.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()}
		var eps []*endpointv3.LbEndpoint
		for _, h := range u.Spec.Static.Hosts {
			eps = append(eps, lbEndpoint(&endpointv3.Endpoint{Address: socketAddress(h.Address, h.Port)}, h.Weight))
		}
		return c, loadAssignment(u.Metadata.Name, eps), nil
	case u.Spec.DNS != nil:
		family, ok := lookupFamilies[u.Spec.DNS.LookupFamily]
		if !ok {
			return nil, nil, fmt.Errorf("unknown lookup family %q", u.Spec.DNS.LookupFamily)
		}
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: dnsClusterType(u.Spec.DNS.Resolution)}
		c.DnsLookupFamily = family
		var eps []*endpointv3.LbEndpoint
		for _, h := range u.Spec.DNS.Hosts {
			eps = append(eps, lbEndpoint(&endpointv3.Endpoint{Address: socketAddress(h.Hostname, h.Port), Hostname: h.Hostname}, h.Weight))
		}
		c.LoadAssignment = loadAssignment(u.Metadata.Name, eps)
		return c, nil, nil
	case u.Spec.Etcd != nil:
		// Discovered hosts are known only at run time, to the controller, which puts them in
		// this load assignment before every push (see DiscoveredEndpoints). Until then the
		// cluster has no hosts, and a request to it gets a 503.
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS}
		c.EdsClusterConfig = &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()}
		return c, DiscoveredEndpoints(u.Metadata.Name, nil), nil
	case u.Spec.AWS != nil:
		c, err := lambdaCluster(u, c)
		return c, nil, err
	default:
		return nil, nil, fmt.Errorf("no discovery type set")
	}
}

// DiscoveredEndpoints is the load assignment of the Upstream named cluster whose hosts were
// discovered at run time: hosts in the order given, each as an endpoint with its weight. With
// no hosts it assigns none, and Envoy answers the Upstream's requests with a 503.
func DiscoveredEndpoints(cluster string, hosts []config.Host) *endpointv3.ClusterLoadAssignment {
	eps := make([]*endpointv3.LbEndpoint, 0, len(hosts))
	for _, h := range hosts {
		eps = append(eps, lbEndpoint(&endpointv3.Endpoint{Address: socketAddress(h.Address, h.Port)}, h.Weight))
	}
	return loadAssignment(cluster, eps)
}

// lbEndpoint wraps an endpoint with its weight; Envoy's default weight (1) is left implicit.
func lbEndpoint(ep *endpointv3.Endpoint, weight int) *endpointv3.LbEndpoint {
	lb := &endpointv3.LbEndpoint{HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: ep}}
	if weight > 1 {
		lb.LoadBalancingWeight = wrapperspb.UInt32(uint32(weight))
	}
	return lb
}

func loadAssignment(cluster string, eps []*endpointv3.LbEndpoint) *endpointv3.ClusterLoadAssignment {
	return &endpointv3.ClusterLoadAssignment{
		ClusterName: cluster,
		Endpoints:   []*endpointv3.LocalityLbEndpoints{{LbEndpoints: eps}},
	}
}
