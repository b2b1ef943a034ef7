package controller

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/translator"
	"github.com/portico-gw/portico/xds"
)

// Discoverer finds the hosts of Upstreams that discover them at run time (etcd);
// *discovery.Manager implements it.
type Discoverer interface {
	// Discover follows the discovery sources of cfgs, and no others, and returns once new
	// sources were read once (or failed to be, within a bound).
	Discover(ctx context.Context, cfgs ...*config.Config)
	// Hosts returns the hosts known for u as configured, false when none are known.
	Hosts(u *config.Upstream) ([]config.Host, bool)
}

// withDiscovered returns res with the load assignment of every Upstream of cfg that discovers
// its hosts replaced by the hosts d knows now. An Upstream whose hosts are not known keeps the
// assignment res has for it. res itself is not changed.
func withDiscovered(res xds.Resources, cfg *config.Config, d Discoverer) xds.Resources {
	if d == nil {
		return res
	}
	discovering := map[string]*config.Upstream{}
	for _, u := range cfg.Upstreams {
		if u.Spec.Etcd != nil {
			discovering[u.Metadata.Name] = u
		}
	}
	if len(discovering) == 0 {
		return res
	}
	eps := slices.Clone(res[resource.EndpointType])
	for i, r := range eps {
		cla, ok := r.(*endpointv3.ClusterLoadAssignment)
		if !ok {
			continue
		}
		u, ok := discovering[cla.GetClusterName()]
		if !ok {
			continue
		}
		if hosts, ok := d.Hosts(u); ok {
			eps[i] = translator.DiscoveredEndpoints(u.Metadata.Name, hosts)
		}
	}
	out := maps.Clone(res)
	out[resource.EndpointType] = eps
	return out
}

// PushDiscovered pushes the hosts discovery knows now for the Upstreams of the configuration
// served. Only their load assignments change, so Envoy updates those clusters' endpoints in
// place: no file is read again, and listeners, routes and clusters are sent unchanged (Envoy
// keeps them as they are, without a drain). It is a new generation like any other: Envoy's
// ACK or NACK is followed, and the status shows it. Nothing is pushed when nothing changed.
func (c *Controller) PushDiscovered(ctx context.Context) {
	c.reloading.Lock()
	defer c.reloading.Unlock()
	c.mu.Lock()
	cur := c.current
	c.mu.Unlock()
	if cur == nil || c.o.Discovery == nil {
		return
	}
	res := withDiscovered(cur.plan.Resources, cur.plan.Config, c.o.Discovery)
	checked, err := xds.Check(res)
	if err != nil {
		c.o.Logger.Error("discovered hosts not pushed", "error", err.Error())
		return
	}
	gen, changed, err := c.o.XDS.Push(ctx, checked)
	var nack *xds.NACKError
	switch {
	case errors.As(err, &nack):
		c.o.Logger.Debug("discovered hosts unchanged since envoy rejected them, not pushed again", "rejected", nack.Generation)
		return
	case err != nil:
		c.o.Logger.Error("discovered hosts not pushed", "error", err.Error())
		return
	case !changed:
		return
	}
	plan := *cur.plan
	plan.Resources, plan.Checked = res, checked
	c.mu.Lock()
	c.current = &applied{plan: &plan, gen: gen}
	c.mu.Unlock()
	c.saveGeneration()
	c.o.Logger.Info("discovered hosts pushed", "generation", gen)
	c.following.Go(func() { c.follow(ctx, gen, true) })
}

// DiscoveryStatus is how one Upstream's hosts are discovered, filled in by whoever runs the
// discovery: the controller only carries it to /status and `portico status`.
type DiscoveryStatus struct {
	Upstream string `json:"upstream"`
	// Source says where the hosts come from: "etcd", the endpoints and the prefix.
	Source string `json:"source"`
	// Known is set once the source was read; until then the Upstream has no hosts (503).
	Known bool `json:"known"`
	// Hosts are the hosts pushed to Envoy, as address:port, with "weight N" when not 1.
	Hosts []string `json:"hosts"`
	// Skipped are the keys whose values are not hosts, each with why: "key: reason".
	Skipped []string `json:"skipped,omitempty"`
	// Degraded is set while the source cannot be reached; the last known hosts keep serving.
	Degraded      bool       `json:"degraded"`
	DegradedSince *time.Time `json:"degradedSince,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	// Errors counts failed reads and watches of the source.
	Errors uint64 `json:"errors"`
	// Revision is the etcd revision the hosts are from.
	Revision int64 `json:"revision,omitempty"`
}
