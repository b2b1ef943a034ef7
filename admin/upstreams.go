package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"

	"github.com/portico-gw/portico/config"
)

// Listener is a Gateway's listening address.
type Listener struct {
	Gateway string `json:"gateway"`
	Address string `json:"address"`
}

// Listeners lists the Gateways of cfg with their addresses.
func Listeners(cfg *config.Config) []Listener {
	out := []Listener{}
	if cfg == nil {
		return out
	}
	for _, gw := range cfg.Gateways {
		out = append(out, Listener{Gateway: gw.Metadata.Name, Address: net.JoinHostPort(gw.Spec.BindAddress, strconv.Itoa(gw.Spec.BindPort))})
	}
	return out
}

// Upstream is an Upstream's hosts as Envoy sees them.
type Upstream struct {
	Name  string         `json:"name"`
	Hosts []UpstreamHost `json:"hosts"`
}

// UpstreamHost is one host of an Upstream and its health in Envoy.
type UpstreamHost struct {
	Address string `json:"address"`
	// Health is "healthy", or why Envoy does not send it requests: "failed health check",
	// "ejected (outlier detection)", "degraded", "draining", ...
	Health string `json:"health"`
}

// envoyClusters is the part of Envoy's /clusters?format=json that Upstreams need.
type envoyClusters struct {
	ClusterStatuses []struct {
		Name         string `json:"name"`
		HostStatuses []struct {
			Address struct {
				SocketAddress struct {
					Address   string `json:"address"`
					PortValue int    `json:"port_value"`
				} `json:"socket_address"`
			} `json:"address"`
			HealthStatus map[string]any `json:"health_status"`
		} `json:"host_statuses"`
	} `json:"cluster_statuses"`
}

// upstreamHealth asks the Envoy at addr for the hosts of the Upstreams of cfg.
func upstreamHealth(ctx context.Context, addr string, cfg *config.Config) ([]Upstream, error) {
	ctx, cancel := context.WithTimeout(ctx, envoyAdminTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/clusters?format=json", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask envoy for its clusters: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read envoy's clusters: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("envoy's clusters: %s", resp.Status)
	}
	return parseUpstreamHealth(body, cfg)
}

func parseUpstreamHealth(body []byte, cfg *config.Config) ([]Upstream, error) {
	var ec envoyClusters
	if err := json.Unmarshal(body, &ec); err != nil {
		return nil, fmt.Errorf("decode envoy's clusters: %w", err)
	}
	var names []string
	if cfg != nil {
		for _, u := range cfg.Upstreams {
			names = append(names, u.Metadata.Name)
		}
	}
	out := []Upstream{}
	for _, c := range ec.ClusterStatuses {
		// Portico's own clusters (xDS, rate limits, tracing) are not the user's Upstreams.
		if !slices.Contains(names, c.Name) {
			continue
		}
		u := Upstream{Name: c.Name, Hosts: []UpstreamHost{}}
		for _, h := range c.HostStatuses {
			sa := h.Address.SocketAddress
			u.Hosts = append(u.Hosts, UpstreamHost{
				Address: net.JoinHostPort(sa.Address, strconv.Itoa(sa.PortValue)),
				Health:  describeHealth(h.HealthStatus),
			})
		}
		out = append(out, u)
	}
	slices.SortFunc(out, func(a, b Upstream) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// healthFlags are Envoy's reasons for not using a host, in the order they are reported.
var healthFlags = []struct{ field, text string }{
	{"failed_active_health_check", "failed health check"},
	{"failed_outlier_check", "ejected (outlier detection)"},
	{"failed_eds_health", "unhealthy (EDS)"},
	{"pending_active_hc", "waiting for its first health check"},
	{"failed_active_degraded_check", "degraded"},
	{"pending_dynamic_removal", "being removed"},
	{"excluded_via_immediate_hc_fail", "excluded (immediate health check failure)"},
	{"active_hc_timeout", "health check timed out"},
}

func describeHealth(status map[string]any) string {
	for _, f := range healthFlags {
		if v, _ := status[f.field].(bool); v {
			return f.text
		}
	}
	switch eds, _ := status["eds_health_status"].(string); eds {
	case "", "HEALTHY", "UNKNOWN":
		return "healthy"
	default:
		return "eds " + eds
	}
}
