// Package admin serves Portico's own admin API on a loopback address: /readyz for load
// balancers and orchestrators, /status, /routes, /listeners, /upstreams, /errors and
// /config_dump for the CLI and people, a read-only web page, and /metrics for Prometheus.
//
// It only reports; it must not change configuration, and it must not listen on anything but
// loopback, since the status names every resource and file of the configuration. Only
// /metrics may be served elsewhere too (MetricsHandler), for Prometheus on other hosts.
package admin

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/controller"
)

// DefaultAddress is where the admin API listens unless told otherwise. It stays clear of
// 9901, which Envoy's own admin API conventionally uses.
const DefaultAddress = "127.0.0.1:9700"

// StatusFunc returns the current status.
type StatusFunc func() controller.Status

// Options say what the admin API reports on. Only Status is required.
type Options struct {
	Status StatusFunc
	// Metrics gathers Portico's own metrics beyond those derived from the status, such as the
	// xDS exchange's.
	Metrics prometheus.Gatherer
	// Envoy gathers Envoy's statistics at scrape time.
	Envoy prometheus.Gatherer
	// EnvoyRestarts returns how often Envoy was started again after exiting on its own, and
	// how many hot restarts completed.
	EnvoyRestarts func() (restarts, hotRestarts int)
	// Version is Portico's version, for portico_build_info.
	Version string
	// Config returns the configuration Portico wants served, for /routes, /listeners and
	// /upstreams; nil before the first one.
	Config func() *config.Config
	// EnvoyAdmin returns the address of Envoy's admin API, for /config_dump and /upstreams; ""
	// while no Envoy runs.
	EnvoyAdmin func() string
	// Recent keeps the last warnings and errors logged, for /errors.
	Recent *RecentErrors
}

// Handler serves /readyz, /status and /metrics from status alone.
func Handler(status StatusFunc) http.Handler { return New(Options{Status: status}) }

// New serves a read-only web page at /; /readyz; /metrics (Portico's metrics and Envoy's, in
// one exposition); and as JSON /status, /routes (the route table), /errors (recent warnings
// and errors), /listeners (the Gateways' addresses), /upstreams (Upstream hosts and their
// health in Envoy) and /config_dump (Envoy's, without secrets).
func New(o Options) http.Handler {
	status := o.Status
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		st := status()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !st.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %s\n", st.NotReadyReason)
			return
		}
		fmt.Fprintf(w, "ready: generation %d\n", st.Generation.Current)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(status()) // a write error means the client went away
	})
	current := func() *config.Config {
		if o.Config == nil {
			return nil
		}
		return o.Config()
	}
	envoyAdmin := func() string {
		if o.EnvoyAdmin == nil {
			return ""
		}
		return o.EnvoyAdmin()
	}
	mux.HandleFunc("GET /routes", func(w http.ResponseWriter, _ *http.Request) {
		routes, err := RouteTable(current(), status())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if routes == nil {
			routes = []Route{}
		}
		writeJSON(w, routes)
	})
	mux.HandleFunc("GET /errors", func(w http.ResponseWriter, _ *http.Request) {
		entries := []LogEntry{}
		if o.Recent != nil {
			entries = o.Recent.Entries()
		}
		writeJSON(w, entries)
	})
	mux.HandleFunc("GET /listeners", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, Listeners(current()))
	})
	mux.HandleFunc("GET /upstreams", func(w http.ResponseWriter, r *http.Request) {
		addr := envoyAdmin()
		if addr == "" {
			http.Error(w, "envoy is not running", http.StatusServiceUnavailable)
			return
		}
		ups, err := upstreamHealth(r.Context(), addr, current())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		writeJSON(w, ups)
	})
	mux.HandleFunc("GET /config_dump", func(w http.ResponseWriter, r *http.Request) {
		addr := envoyAdmin()
		if addr == "" {
			http.Error(w, "envoy is not running", http.StatusServiceUnavailable)
			return
		}
		dump, err := configDump(r.Context(), addr)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(dump) // a write error means the client went away
	})
	mux.Handle("GET /metrics", metricsHandler(o))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		// The page fetches from this origin only: no external scripts, styles or fonts.
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		_, _ = w.Write(page) // a write error means the client went away
	})
	return mux
}

// page is the read-only web page on the admin address: status, routes with live request
// rates, Upstream hosts and resources, from the endpoints above.
//
//go:embed ui/index.html
var page []byte

// MetricsHandler serves /metrics alone, as New does: for --metrics-address, which may be
// reachable from other hosts, unlike the rest of the admin API.
func MetricsHandler(o Options) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler(o))
	return mux
}

func metricsHandler(o Options) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(statusCollector{status: o.Status, restarts: o.EnvoyRestarts, version: o.Version})
	gatherers := prometheus.Gatherers{reg}
	for _, g := range []prometheus.Gatherer{o.Metrics, o.Envoy} {
		if g != nil {
			gatherers = append(gatherers, g)
		}
	}
	// ContinueOnError: a metric that fails to gather must not take every other one down.
	return promhttp.HandlerFor(gatherers, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // a write error means the client went away
}

// Listen checks that addr is a loopback address and listens on it.
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("admin address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("admin address %q: only loopback addresses are allowed (such as %s)", addr, DefaultAddress)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin API: %w", err)
	}
	return l, nil
}

// Serve serves h on l until ctx is done.
func Serve(ctx context.Context, logger *slog.Logger, l net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	logger.Info("admin API listening", "address", "http://"+l.Addr().String())
	select {
	case err := <-done:
		return fmt.Errorf("admin API: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("stop admin API: %w", err)
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin API: %w", err)
	}
	return nil
}
