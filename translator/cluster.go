package translator

import (
	"fmt"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portico-gw/portico/config"
)

const connectTimeout = 5 * time.Second

// upstream builds the cluster for an Upstream and, for static hosts, its endpoints. Static
// hosts are served over EDS so that changing a host list updates endpoints in place instead of
// rebuilding the cluster and its connection pools.
func upstream(u *config.Upstream) (*clusterv3.Cluster, *endpointv3.ClusterLoadAssignment, error) {
	if u.Spec.Static == nil {
		return nil, nil, fmt.Errorf("no discovery type set")
	}
	c := &clusterv3.Cluster{
		Name:                 u.Metadata.Name,
		ConnectTimeout:       durationpb.New(connectTimeout),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_EDS},
		EdsClusterConfig:     &clusterv3.Cluster_EdsClusterConfig{EdsConfig: adsSource()},
	}
	var lbEndpoints []*endpointv3.LbEndpoint
	for _, h := range u.Spec.Static.Hosts {
		lbEndpoints = append(lbEndpoints, &endpointv3.LbEndpoint{
			HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
				Address: socketAddress(h.Address, h.Port),
			}},
		})
	}
	cla := &endpointv3.ClusterLoadAssignment{
		ClusterName: u.Metadata.Name,
		Endpoints:   []*endpointv3.LocalityLbEndpoints{{LbEndpoints: lbEndpoints}},
	}
	return c, cla, nil
}
