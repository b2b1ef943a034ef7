package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/controller"
	"github.com/portico-gw/portico/internal/unixsock"
	"github.com/portico-gw/portico/ratelimit"
	"github.com/portico-gw/portico/translator"
)

// rateLimiter runs the global rate limit service for one portico run and keeps its limits and
// store in step with the configuration served.
//
// It runs for the whole run even when no global limit is configured: Envoy's bootstrap, which
// names the service's socket, is fixed for Envoy's life, and a reload may add the first limit.
// An idle gRPC server on a Unix socket costs next to nothing.
type rateLimiter struct {
	logger *slog.Logger
	svc    *ratelimit.Service

	mu sync.Mutex
	// redis is the store configuration in use, nil for memory; store is its client.
	redis  *config.RedisRateLimitStore
	store  *ratelimit.RedisStore
	limits int
}

// newRateLimiter creates the service with the limits and store of cfg; its metrics go to reg.
func newRateLimiter(logger *slog.Logger, reg prometheus.Registerer, cfg *config.Config) (*rateLimiter, error) {
	svc, err := ratelimit.New(ratelimit.Config{Domain: translator.RateLimitDomain, Logger: logger, Registerer: reg})
	if err != nil {
		return nil, err
	}
	r := &rateLimiter{logger: logger, svc: svc}
	if err := r.apply(cfg); err != nil {
		return nil, err
	}
	return r, nil
}

// listen opens the service's socket in sockDir; it returns the socket's path and the function
// that answers Envoy on it until its context is done.
func (r *rateLimiter) listen(sockDir string) (string, func(ctx context.Context) error, error) {
	path := filepath.Join(sockDir, "ratelimit.sock")
	l, err := unixsock.Listen(path)
	if err != nil {
		return "", nil, fmt.Errorf("rate limit service: %w", err)
	}
	return path, func(ctx context.Context) error { return r.svc.Serve(ctx, l) }, nil
}

// apply gives the service the global limits and the store of cfg, the configuration served.
// Limits are replaced at once; a changed store starts counting afresh.
func (r *rateLimiter) apply(cfg *config.Config) error {
	out, err := translator.Translate(cfg)
	if err != nil {
		return fmt.Errorf("rate limits: %w", err)
	}
	if err := r.svc.SetLimits(out.RateLimits); err != nil {
		return err
	}
	want := cfg.RateLimitStore()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limits = len(out.RateLimits)
	if sameStore(r.redis, want) {
		return nil
	}
	var store *ratelimit.RedisStore
	if want != nil {
		store, err = ratelimit.NewRedisStore(ratelimit.RedisConfig{Addr: want.Address, Sliding: want.IsSliding()})
		if err != nil {
			return fmt.Errorf("rate limit store: %w", err)
		}
		r.svc.SetStore(store, want.FailsClosed())
		r.logger.Info("rate limit counters in redis", "address", want.Address, "window", windowOf(want), "failure_mode", failureModeOf(want))
	} else {
		r.svc.SetStore(nil, false)
		if r.redis != nil {
			r.logger.Info("rate limit counters in memory")
		}
	}
	if r.store != nil {
		r.store.Close()
	}
	r.redis, r.store = want, store
	return nil
}

// reload applies the configuration served after a reload; a failure keeps the previous
// limits, and is logged since a reload has no caller to return it to.
func (r *rateLimiter) reload(cfg *config.Config) {
	if err := r.apply(cfg); err != nil {
		r.logger.Error("rate limits not updated; the previous limits stay in force", "error", err.Error())
	}
}

// close releases the Redis connections.
func (r *rateLimiter) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.store != nil {
		r.store.Close()
	}
}

// status reports the service for /status.
func (r *rateLimiter) status() *controller.RateLimitStatus {
	r.mu.Lock()
	st := &controller.RateLimitStatus{Limits: r.limits, Store: "memory", FailureMode: config.FailureModeOpen}
	if r.redis != nil {
		st.Store = "redis " + r.redis.Address
		st.FailureMode = failureModeOf(r.redis)
	}
	r.mu.Unlock()
	h := r.svc.Status()
	st.Degraded, st.StoreErrors = h.Degraded, h.StoreErrors
	if h.Degraded {
		since := h.DegradedSince
		st.DegradedSince = &since
	}
	if h.LastError != nil {
		st.LastError = h.LastError.Error()
	}
	return st
}

func sameStore(a, b *config.RedisRateLimitStore) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Address == b.Address && a.IsSliding() == b.IsSliding() && a.FailsClosed() == b.FailsClosed()
}

func windowOf(r *config.RedisRateLimitStore) string {
	if r.IsSliding() {
		return config.RateLimitWindowSliding
	}
	return config.RateLimitWindowFixed
}

func failureModeOf(r *config.RedisRateLimitStore) string {
	if r.FailsClosed() {
		return config.FailureModeClosed
	}
	return config.FailureModeOpen
}
