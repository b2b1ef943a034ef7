package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/portico-gw/portico/bench/workload"
	"github.com/portico-gw/portico/config"
	bootstrap "github.com/portico-gw/portico/envoy-bootstrap"
	"github.com/portico-gw/portico/internal/protoyaml"
)

// staticRoute is one route of bare Envoy's hand-written configuration.
type staticRoute struct {
	exact, prefix, cluster string
}

type staticVHost struct {
	name    string
	domains []string
	routes  []staticRoute
}

// envoyStaticConfig writes the bare-Envoy contender's configuration: the listener Portico builds
// for the same Gateway (HTTP connection manager, AUTO codec, router, no access log, and the
// edge hardening Portico applies by default, from config's own defaults so the two cannot
// drift apart) with the routes inline and STATIC clusters, so the comparison isolates what
// Portico adds rather than what its safe defaults cost.
func envoyStaticConfig(listenPort int, vhosts []staticVHost, clusters map[string]int) ([]byte, error) {
	h := (*config.GatewayOptions)(nil).Resolved()
	overload, err := overloadManagerYAML()
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(overload)
	fmt.Fprintf(&b, `static_resources:
  listeners:
  - name: bench
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    per_connection_buffer_limit_bytes: %d
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          codec_type: AUTO
          use_remote_address: %t
          normalize_path: %t
          merge_slashes: %t
          path_with_escaped_slashes_action: %s
          common_http_protocol_options: {idle_timeout: %s, headers_with_underscores_action: %s}
          http2_protocol_options: {max_concurrent_streams: %d, initial_stream_window_size: %d, initial_connection_window_size: %d}
          stream_idle_timeout: %s
          request_headers_timeout: %s
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          route_config:
            name: bench
            virtual_hosts:
`, listenPort, h.PerConnectionBufferLimitBytes, *h.UseRemoteAddress, *h.NormalizePath, *h.MergeSlashes, h.EscapedSlashesAction,
		envoyDuration(h.IdleTimeout), h.HeadersWithUnderscoresAction,
		h.HTTP2.MaxConcurrentStreams, h.HTTP2.InitialStreamWindowSize, h.HTTP2.InitialConnectionWindowSize,
		envoyDuration(h.StreamIdleTimeout), envoyDuration(h.RequestHeadersTimeout))
	for _, vh := range vhosts {
		fmt.Fprintf(&b, "            - name: %s\n              domains: [%s]\n              routes:\n", vh.name, quoteJoin(vh.domains))
		for _, r := range vh.routes {
			if r.exact != "" {
				fmt.Fprintf(&b, "              - match: {path: %q}\n", r.exact)
			} else {
				fmt.Fprintf(&b, "              - match: {prefix: %q}\n", r.prefix)
			}
			fmt.Fprintf(&b, "                route: {cluster: %s}\n", r.cluster)
		}
	}
	b.WriteString("  clusters:\n")
	names := make([]string, 0, len(clusters))
	for n := range clusters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, `  - name: %s
    connect_timeout: 5s
    type: STATIC
    load_assignment:
      cluster_name: %s
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
`, n, n, clusters[n])
	}
	return []byte(b.String()), nil
}

// overloadManagerYAML is the overload manager of Portico's bootstrap (heap and connection
// monitors, shedding load when the heap is nearly full), as a top-level YAML section: Portico
// gives it to every Envoy, so bare Envoy runs it too. The heap limit is the bootstrap's
// default, not the machine-derived one Portico computes: it changes no per-request work.
func overloadManagerYAML() (string, error) {
	bs, err := bootstrap.Build(bootstrap.Options{NodeID: "bench", Cluster: "bench", XDSSocket: "/nonexistent/xds.sock"})
	if err != nil {
		return "", fmt.Errorf("bootstrap for the overload manager: %w", err)
	}
	y, err := protoyaml.Marshal(bs.OverloadManager)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("overload_manager:\n")
	for _, line := range strings.Split(strings.TrimRight(string(y), "\n"), "\n") {
		b.WriteString("  " + line + "\n")
	}
	return b.String(), nil
}

// envoyDuration writes a Go duration ("5m0s", always valid here: config's own defaults) in
// Envoy's seconds form ("300s").
func envoyDuration(d string) string {
	parsed, _ := time.ParseDuration(d)
	return fmt.Sprintf("%gs", parsed.Seconds())
}

func quoteJoin(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

// envoyStaticFor is the bare-Envoy equivalent of a generated Portico workload.
func envoyStaticFor(s workload.Spec) ([]byte, error) {
	var vhosts []staticVHost
	for svc := 0; svc < s.Services(); svc++ {
		vh := staticVHost{name: fmt.Sprintf("vs-%d", svc), domains: []string{workload.Domain(svc)}}
		for r := svc * s.PerService; r < min((svc+1)*s.PerService, s.Routes); r++ {
			vh.routes = append(vh.routes, staticRoute{exact: workload.Path(r), cluster: workload.UpstreamName(r % s.UpstreamCount)})
		}
		vhosts = append(vhosts, vh)
	}
	clusters := map[string]int{}
	for i := 0; i < s.UpstreamCount; i++ {
		clusters[workload.UpstreamName(i)] = s.Backends[i%len(s.Backends)]
	}
	return envoyStaticConfig(s.GatewayPort, vhosts, clusters)
}
