package main

import (
	"context"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/admin"
	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/metrics"
	"github.com/portico-gw/portico/supervisor"
)

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

// serveAdmin serves the admin API on l until ctx is done.
func serveAdmin(ctx context.Context, logger *slog.Logger, l net.Listener, o admin.Options) {
	if err := admin.Serve(ctx, logger, l, admin.New(o)); err != nil {
		logger.Error("admin API stopped", "error", err.Error())
	}
}
