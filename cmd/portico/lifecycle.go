package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/supervisor"
)

// errForcedStop is run's result when a second stop signal cut the drain short.
var errForcedStop = errors.New("stopped at once by a second signal: envoy was killed without finishing its drain")

// handleSignals gives run's signals beyond the first stop, which main turns into ctx's
// cancellation: a second SIGINT or SIGTERM kills Envoy at once instead of waiting for the drain,
// and SIGUSR1 replaces Envoy by hot restart. It returns a function that stops the handling and
// reports whether a stop was forced; calling it again only repeats the report.
func handleSignals(ctx context.Context, logger *slog.Logger, sup *supervisor.Supervisor) (stop func() (forced bool)) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	done := make(chan struct{})
	var forced atomic.Bool
	go func() {
		stops := 0
		for {
			select {
			case <-done:
				return
			case sig := <-sigs:
				if sig == syscall.SIGUSR1 {
					logger.Info("SIGUSR1: hot restarting envoy")
					go func() {
						if err := sup.HotRestart(ctx, sup.Settings()); err != nil {
							logger.Error("hot restart failed; the running envoy keeps serving", "error", err.Error())
							return
						}
						logger.Info("hot restart done", "envoy_pid", sup.PID())
					}()
					continue
				}
				// main's handler sees every stop signal too; the first one cancelled ctx.
				if stops++; stops >= 2 {
					logger.Warn("second stop signal: killing envoy now, without waiting for the drain", "signal", sig.String())
					forced.Store(true)
					sup.Kill()
				} else {
					logger.Info("stopping: draining envoy; send the signal again to stop at once", "signal", sig.String())
				}
			}
		}
	}()
	var once sync.Once
	return func() bool {
		once.Do(func() {
			signal.Stop(sigs)
			close(done)
		})
		return forced.Load()
	}
}

// checkGatewayPorts binds every Gateway's address once before Envoy starts: a port another
// process holds then fails the start with the Gateway and its file named, instead of failing
// inside Envoy with a message in Envoy's own terms.
func checkGatewayPorts(cfg *config.Config) error {
	if cfg == nil {
		return nil
	}
	var listeners []supervisor.Listener
	for _, gw := range cfg.Gateways {
		listeners = append(listeners, supervisor.Listener{
			Owner:   fmt.Sprintf("%s: gateway %q", gw.Source.At("spec.bindPort"), gw.Metadata.Name),
			Address: gw.Spec.BindAddress,
			Port:    gw.Spec.BindPort,
		})
	}
	return supervisor.CheckListeners(listeners)
}
