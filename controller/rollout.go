package controller

import (
	"slices"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/portico-gw/portico/xds"
)

// bridgeSteps returns the resource sets to push, each waited for, before next replaces prev,
// so that no route ever names a cluster Envoy does not have (make before break).
//
// Ordered ADS sends one snapshot's clusters before its routes, but that is not enough: a new
// cluster is served over EDS and stays warming until Envoy has asked for and received its
// endpoints, while the route that uses it arrives at once; and a removed cluster is gone before
// the route that stops using it arrives. So a change that adds clusters first pushes them
// under the old routes, and a change that removes clusters first moves the routes away while
// the old clusters stay. Either step is left out when it has nothing to do.
func bridgeSteps(prev, next xds.Resources) []xds.Resources {
	prevClusters := byName(prev[resource.ClusterType])
	nextClusters := byName(next[resource.ClusterType])
	added, removed := false, false
	for name := range nextClusters {
		if _, ok := prevClusters[name]; !ok {
			added = true
		}
	}
	union := xds.Resources{
		resource.ClusterType:  append([]types.Resource(nil), next[resource.ClusterType]...),
		resource.EndpointType: append([]types.Resource(nil), next[resource.EndpointType]...),
		// Clusters name Secrets too (an Upstream's client certificate and CAs): the bridge
		// serves those of both sides.
		resource.SecretType: append([]types.Resource(nil), next[resource.SecretType]...),
	}
	nextSecrets := byName(next[resource.SecretType])
	for name, sec := range byName(prev[resource.SecretType]) {
		if _, ok := nextSecrets[name]; !ok {
			union[resource.SecretType] = append(union[resource.SecretType], sec)
		}
	}
	nextEndpoints := byName(next[resource.EndpointType])
	for name, c := range prevClusters {
		if _, ok := nextClusters[name]; ok {
			continue
		}
		removed = true
		union[resource.ClusterType] = append(union[resource.ClusterType], c)
	}
	for name, e := range byName(prev[resource.EndpointType]) {
		if _, ok := nextEndpoints[name]; !ok {
			if _, kept := prevClusters[name]; kept {
				union[resource.EndpointType] = append(union[resource.EndpointType], e)
			}
		}
	}
	var steps []xds.Resources
	if added {
		steps = append(steps, withRouting(union, prev))
	}
	if removed {
		steps = append(steps, withRouting(union, next))
	}
	return steps
}

// withRouting is clusters (with their endpoints) plus everything else of routing: listeners,
// routes, and the Secrets its listeners name, without which Envoy would keep them warming. The
// Secrets that only the clusters' side has are added, so every cluster finds its own; where
// both sides have a Secret, routing's version is served, so the step changes no certificate
// that routing does not.
func withRouting(clusters, routing xds.Resources) xds.Resources {
	out := make(xds.Resources, len(routing))
	for typeURL, list := range routing {
		out[typeURL] = list
	}
	out[resource.ClusterType] = clusters[resource.ClusterType]
	out[resource.EndpointType] = clusters[resource.EndpointType]
	secrets := slices.Clone(routing[resource.SecretType])
	have := byName(secrets)
	for _, sec := range clusters[resource.SecretType] {
		if _, ok := have[cache.GetResourceName(sec)]; !ok {
			secrets = append(secrets, sec)
		}
	}
	out[resource.SecretType] = secrets
	return out
}

func byName(list []types.Resource) map[string]types.Resource {
	m := make(map[string]types.Resource, len(list))
	for _, r := range list {
		m[cache.GetResourceName(r)] = r
	}
	return m
}
