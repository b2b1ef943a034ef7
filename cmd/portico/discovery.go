package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/controller"
	"github.com/portico-gw/portico/discovery"
)

// newDiscovery returns the discovery of Upstream hosts at run time, its metrics registered with
// reg. It follows nothing until the controller gives it a configuration.
func newDiscovery(logger *slog.Logger, reg prometheus.Registerer) (*discovery.Manager, error) {
	d := discovery.New(discovery.Options{Logger: logger})
	if err := reg.Register(d.Collector()); err != nil {
		return nil, fmt.Errorf("discovery metrics: %w", err)
	}
	return d, nil
}

// pushDiscovered pushes every change of the discovered hosts to Envoy until ctx is done.
func pushDiscovered(ctx context.Context, d *discovery.Manager, ctrl *controller.Controller) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.Changed():
			ctrl.PushDiscovered(ctx)
		}
	}
}

// addDiscoveryStatus reports each discovering Upstream's discovery in st, and what goes wrong
// with it (skipped keys, an unreachable etcd, no hosts) among the Upstream's reasons too, as a
// warning: the Upstream is served, but not as its owner expects.
func addDiscoveryStatus(st *controller.Status, discovered []discovery.Status) {
	problems := map[string][]string{}
	for _, ds := range discovered {
		out := controller.DiscoveryStatus{
			Upstream: ds.Upstream, Source: "etcd " + strings.Join(ds.Endpoints, ",") + " prefix " + ds.Prefix,
			Known: ds.Known, Hosts: []string{}, Degraded: ds.Degraded, LastError: ds.LastError,
			Errors: ds.Errors, Revision: ds.Revision,
		}
		for _, h := range ds.Hosts {
			host := net.JoinHostPort(h.Address, strconv.Itoa(h.Port))
			if h.Weight != 1 {
				host += fmt.Sprintf(" weight %d", h.Weight)
			}
			out.Hosts = append(out.Hosts, host)
		}
		var reasons []string
		for _, sk := range ds.Skipped {
			out.Skipped = append(out.Skipped, sk.Key+": "+sk.Reason)
			reasons = append(reasons, fmt.Sprintf("etcd key %s skipped: %s", sk.Key, sk.Reason))
		}
		switch {
		case ds.Degraded && ds.Known:
			since := ds.DegradedSince
			out.DegradedSince = &since
			reasons = append(reasons, fmt.Sprintf("etcd unreachable since %s; the last known %s keep serving: %s",
				since.Local().Format(time.DateTime), hostCount(len(ds.Hosts)), ds.LastError))
		case ds.Degraded:
			since := ds.DegradedSince
			out.DegradedSince = &since
			reasons = append(reasons, "etcd unreachable and no hosts known yet: requests get 503: "+ds.LastError)
		case ds.Known && len(ds.Hosts) == 0:
			reasons = append(reasons, "no hosts under "+ds.Prefix+": requests get 503")
		}
		problems[ds.Upstream] = reasons
		st.Discovery = append(st.Discovery, out)
	}
	for i, r := range st.Resources {
		reasons := problems[r.Name]
		if r.Kind != config.KindUpstream || len(reasons) == 0 {
			continue
		}
		if r.State == controller.StateAccepted {
			st.Resources[i].State = controller.StateWarning
		}
		st.Resources[i].Reasons = append(st.Resources[i].Reasons, reasons...)
	}
}

// printDiscovery prints each discovering Upstream's source, hosts and trouble.
func printDiscovery(w io.Writer, ds []controller.DiscoveryStatus) {
	if len(ds) == 0 {
		return
	}
	fmt.Fprintln(w, "discovery:")
	for _, d := range ds {
		line := fmt.Sprintf("  %s: %s: ", d.Upstream, d.Source)
		switch {
		case !d.Known:
			line += "no hosts known yet (503)"
		case len(d.Hosts) == 0:
			line += "no hosts (503)"
		default:
			line += fmt.Sprintf("%s (%s)", hostCount(len(d.Hosts)), strings.Join(d.Hosts, ", "))
		}
		if d.Degraded {
			line += "; DEGRADED"
			if d.DegradedSince != nil {
				line += " since " + d.DegradedSince.Local().Format(time.DateTime)
			}
			line += ": " + d.LastError
		}
		fmt.Fprintln(w, line)
		for _, s := range d.Skipped {
			fmt.Fprintf(w, "    skipped %s\n", s)
		}
	}
}

func hostCount(n int) string {
	if n == 1 {
		return "1 host"
	}
	return fmt.Sprintf("%d hosts", n)
}
