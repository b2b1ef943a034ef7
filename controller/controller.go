package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/translator"
	"github.com/portico-gw/portico/xds"
)

// Pusher serves translated resources to Envoy; *xds.Server implements it.
type Pusher interface {
	Push(ctx context.Context, res xds.Resources) (gen uint64, changed bool, err error)
	WaitACK(ctx context.Context, gen uint64) error
}

var _ Pusher = (*xds.Server)(nil)

// LoadFunc reads and validates the configuration; config.Load bound to the user's paths, or
// the embedded demo.
type LoadFunc func() (*config.Config, error)

// Controller applies configuration: every Reload is all-or-nothing, and a configuration that
// fails to load or translate leaves what Envoy serves untouched.
type Controller struct {
	load   LoadFunc
	xds    Pusher
	logger *slog.Logger

	mu      sync.Mutex // serialises reloads so generations are pushed in order
	current *config.Config
}

// New returns a Controller that loads with load and pushes to p.
func New(load LoadFunc, p Pusher, logger *slog.Logger) *Controller {
	return &Controller{load: load, xds: p, logger: logger}
}

// Current returns the configuration last pushed, or nil before the first successful Reload.
func (c *Controller) Current() *config.Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.current
}

// Reload loads, validates and translates the configuration and pushes it. On any error the
// previous configuration stays in force and the error, naming file, line and field, is
// returned. The returned generation is the one now served (unchanged when nothing changed).
func (c *Controller) Reload(ctx context.Context) (gen uint64, changed bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg, err := c.load()
	if err != nil {
		return 0, false, err
	}
	for _, w := range cfg.Warnings {
		c.logger.Warn("configuration warning", "warning", w.Error())
	}
	out, err := translator.Translate(cfg)
	if err != nil {
		return 0, false, fmt.Errorf("translate configuration: %w", err)
	}
	gen, changed, err = c.xds.Push(ctx, out.Resources())
	if err != nil {
		return 0, false, fmt.Errorf("push configuration: %w", err)
	}
	c.current = cfg
	return gen, changed, nil
}

// ReloadAndWait reloads and, when something changed, waits up to timeout for Envoy to accept
// the new generation, logging the outcome either way.
func (c *Controller) ReloadAndWait(ctx context.Context, timeout time.Duration) {
	gen, changed, err := c.Reload(ctx)
	if err != nil {
		LogError(c.logger, "reload failed, the previous configuration keeps serving", err)
		return
	}
	if !changed {
		c.logger.Info("configuration unchanged, nothing pushed", "generation", gen)
		return
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch err := c.xds.WaitACK(wctx, gen); {
	case err == nil:
		c.logger.Info("configuration applied", "generation", gen)
	case errors.Is(err, context.DeadlineExceeded):
		c.logger.Warn("envoy has not acknowledged the configuration yet", "generation", gen, "waited", timeout)
	case ctx.Err() != nil:
	default:
		c.logger.Error("envoy rejected the configuration, the previous one keeps serving", "generation", gen, "error", err.Error())
	}
}

// LogError logs err under msg; a configuration error becomes one record per problem, so each
// file:line stands on its own line of the log.
func LogError(logger *slog.Logger, msg string, err error) {
	var ds config.Diagnostics
	if !errors.As(err, &ds) {
		logger.Error(msg, "error", err.Error())
		return
	}
	logger.Error(msg, "problems", len(ds))
	for _, d := range ds {
		logger.Error("configuration error", "at", d.Pos.String(), "problem", d.Error())
	}
}
