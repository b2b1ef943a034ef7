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

// proxySettings are the Envoy process settings wanted for cfg: run's flags, overridden field by
// field by the configuration's Proxy document. Flags are the defaults of a host; a Proxy
// document travels with the configuration and is applied live, so it wins.
func proxySettings(o runOptions, cfg *config.Config) supervisor.Settings {
	s := supervisor.Settings{Concurrency: o.concurrency, LogLevel: o.envoyLogLevel, DrainTimeout: o.drainTimeout}
	p := cfg.ProxyDoc()
	if p == nil {
		return s
	}
	if p.Spec.Concurrency > 0 {
		s.Concurrency = p.Spec.Concurrency
	}
	if p.Spec.LogLevel != "" {
		s.LogLevel = p.Spec.LogLevel
	}
	if d := p.Spec.DrainTimeoutDuration(); d > 0 {
		s.DrainTimeout = d
	}
	return s
}

// applyProxySettings hot restarts Envoy when the configuration now served wants other process
// settings than the running Envoy has. It runs after the reload's push, so the new epoch boots
// straight into the new configuration.
func applyProxySettings(ctx context.Context, logger *slog.Logger, sup *supervisor.Supervisor, o runOptions, cfg *config.Config) {
	want, have := proxySettings(o, cfg), sup.Settings()
	if want == have {
		return
	}
	logger.Info("Envoy's process settings changed: hot restarting envoy; connections stay open",
		"concurrency", fmt.Sprintf("%d -> %d", have.Concurrency, want.Concurrency),
		"log_level", have.LogLevel+" -> "+want.LogLevel,
		"drain_timeout", have.DrainTimeout.String()+" -> "+want.DrainTimeout.String())
	if err := sup.HotRestart(ctx, want); err != nil {
		logger.Error("hot restart for the new process settings failed; envoy keeps running with the previous ones", "error", err.Error())
		return
	}
	logger.Info("hot restart done: envoy runs with the new process settings", "envoy_pid", sup.PID())
}

// newGatewayPorts checks, before a reload is pushed, the Gateway ports that the served
// configuration does not listen on yet (the running Envoy holds the others). A port another
// process holds rejects the whole change, naming the Gateway, its file and line, and the port:
// served anyway, Envoy would reject the listener after the fact, in its own terms.
func newGatewayPorts(prev, next *config.Config) error {
	held := map[int]bool{}
	if prev != nil {
		for _, gw := range prev.Gateways {
			held[gw.Spec.BindPort] = true
		}
	}
	var ds config.Diagnostics
	for _, gw := range next.Gateways {
		if held[gw.Spec.BindPort] {
			continue
		}
		if err := supervisor.CheckPort(gw.Spec.BindAddress, gw.Spec.BindPort); err != nil {
			ds = append(ds, config.Diagnostic{
				Pos: gw.Source.At("spec.bindPort"), Severity: config.SeverityError,
				Kind: config.KindGateway, Name: gw.Metadata.Name, Field: "spec.bindPort",
				Message: err.Error(),
			})
		}
	}
	if len(ds) == 0 {
		return nil
	}
	return ds
}
