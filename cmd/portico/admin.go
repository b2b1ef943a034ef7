package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/admin"
	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/metrics"
	"github.com/portico-gw/portico/supervisor"
)

// recentErrors is how many warnings and errors `portico status` can show.
const recentErrors = 20

// adminOptions connects the admin API to what it reports on: the status, the configuration
// served, Portico's own metrics in reg, and the Envoy sup runs.
func adminOptions(status admin.StatusFunc, current func() *config.Config, sup *supervisor.Supervisor, reg *prometheus.Registry) admin.Options {
	return admin.Options{
		Status:        status,
		Metrics:       reg,
		Envoy:         metrics.NewEnvoyStats(sup.AdminAddress),
		EnvoyRestarts: func() (int, int) { return sup.Restarts(), sup.HotRestarts() },
		Version:       version,
		Config:        current,
		EnvoyAdmin:    sup.AdminAddress,
	}
}

// serveAdmin serves h, the admin API or its metrics, on l until ctx is done.
func serveAdmin(ctx context.Context, logger *slog.Logger, l net.Listener, h http.Handler) {
	if err := admin.Serve(ctx, logger, l, h); err != nil {
		logger.Error("admin API stopped", "error", err.Error(), "address", l.Addr().String())
	}
}

// listenMetrics listens on --metrics-address, if given. Unlike the admin API it may listen on
// any address: metrics name resources but carry no configuration.
func listenMetrics(addr string) (net.Listener, error) {
	if addr == "" {
		return nil, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, usageError{fmt.Errorf("--metrics-address %q: %w", addr, err)}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics address: %w", err)
	}
	return l, nil
}
