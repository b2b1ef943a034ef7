package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portico-gw/portico/internal/grpcserve"
)

// stopTimeout bounds the graceful stop of Serve; calls are short, so it is only reached when a
// client holds its stream open after the shutdown.
const stopTimeout = 5 * time.Second

// Config configures a Service.
type Config struct {
	// Domain is the domain Envoy's ratelimit filter sends; requests for any other are refused.
	Domain string
	// Limits are the initial limits; SetLimits replaces them.
	Limits []Limit
	// Store counts hits. Nil counts in memory (NewMemoryStore).
	Store Store
	// FailClosed rejects requests that match a limit when the store fails. The default, fail
	// open, allows them: an outage of the counters then does not become an outage of the API.
	FailClosed bool
	// Logger receives store failures and recoveries. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the service's metrics. Nil leaves them unregistered.
	Registerer prometheus.Registerer
}

// Service answers Envoy's rate limit checks. ShouldRateLimit, SetLimits and Status are safe for
// concurrent use.
type Service struct {
	rlsv3.UnimplementedRateLimitServiceServer

	domain  string
	backend atomic.Pointer[backend]
	logger  *slog.Logger
	metrics *metrics
	limits  atomic.Pointer[matcher]
	// now is the clock; tests replace it to move through windows.
	now func() time.Time

	mu     sync.Mutex
	health Status
}

var _ rlsv3.RateLimitServiceServer = (*Service)(nil)

// Status is the health of the service's store.
type Status struct {
	// Degraded is set while the store fails: decisions follow the failure policy instead of
	// the counts. It clears on the next successful store call.
	Degraded bool
	// DegradedSince is when the current run of failures started; zero when not degraded.
	DegradedSince time.Time
	// LastError is the most recent store failure, nil if there was none.
	LastError error
	// StoreErrors counts store failures since the service started.
	StoreErrors uint64
}

// New validates cfg and returns a service ready to answer.
func New(cfg Config) (*Service, error) {
	if cfg.Domain == "" {
		return nil, errors.New("rate limit service: domain is empty")
	}
	m, err := newMatcher(cfg.Limits)
	if err != nil {
		return nil, fmt.Errorf("rate limit service: %w", err)
	}
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("rate limit service: %w", err)
	}
	s := &Service{
		domain:  cfg.Domain,
		logger:  cfg.Logger,
		metrics: met,
		now:     time.Now,
	}
	s.SetStore(cfg.Store, cfg.FailClosed)
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	s.limits.Store(m)
	return s, nil
}

// SetLimits replaces the limits, or returns every problem with them and keeps the old ones.
// Counters of limits that keep their name carry on.
func (s *Service) SetLimits(limits []Limit) error {
	m, err := newMatcher(limits)
	if err != nil {
		return fmt.Errorf("set rate limits: %w", err)
	}
	s.limits.Store(m)
	return nil
}

// backend is the store and its failure policy, swapped together so that a decision never
// pairs one store with the other's policy.
type backend struct {
	store      Store
	failClosed bool
}

// SetStore replaces the store and the failure policy (see Config); a nil store counts in
// memory. Counts start again in the new store. Checks already running finish on the old store,
// so a caller closing the old store may see them fail once under the old policy.
func (s *Service) SetStore(st Store, failClosed bool) {
	if st == nil {
		st = NewMemoryStore()
	}
	s.backend.Store(&backend{store: st, failClosed: failClosed})
}

// Status reports the store's health.
func (s *Service) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.health
}

// Serve answers on l until ctx is done, then stops gracefully and returns nil. The caller
// creates l, so that the socket's directory and permissions follow Portico's socket rules.
func (s *Service) Serve(ctx context.Context, l net.Listener) error {
	grpcServer := grpc.NewServer()
	rlsv3.RegisterRateLimitServiceServer(grpcServer, s)
	s.logger.Info("rate limit service listening", "address", l.Addr().String())
	if err := grpcserve.Serve(ctx, grpcServer, l, stopTimeout); err != nil {
		return fmt.Errorf("serve rate limits on %s: %w", l.Addr(), err)
	}
	return nil
}

// decision is one matched descriptor of a request.
type decision struct {
	index int
	limit *Limit
}

// ShouldRateLimit counts the request against the most specific limit of each descriptor and
// answers OVER_LIMIT when any non-shadow limit is exceeded. Statuses follow the descriptors'
// order; a descriptor no limit matches is OK and carries no limit.
func (s *Service) ShouldRateLimit(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	start := time.Now()
	defer func() { s.metrics.latency.Observe(time.Since(start).Seconds()) }()
	if req.GetDomain() != s.domain {
		return nil, status.Errorf(codes.InvalidArgument, "rate limit domain %q is not served here (want %q)", req.GetDomain(), s.domain)
	}
	m := s.limits.Load()
	descs := req.GetDescriptors()
	resp := &rlsv3.RateLimitResponse{
		OverallCode: rlsv3.RateLimitResponse_OK,
		Statuses:    make([]*rlsv3.RateLimitResponse_DescriptorStatus, len(descs)),
	}
	matched := make([]decision, 0, len(descs))
	hits := make([]Hit, 0, len(descs))
	for i, d := range descs {
		l, key := m.match(d.GetEntries())
		if l == nil {
			resp.Statuses[i] = &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK}
			continue
		}
		matched = append(matched, decision{index: i, limit: l})
		hits = append(hits, Hit{Key: key, Hits: hitsOf(req, d), Window: l.Unit.Duration()})
	}
	if len(hits) == 0 {
		return resp, nil
	}
	counts := make([]Count, len(hits))
	be := s.backend.Load()
	if err := be.store.Add(ctx, s.now(), hits, counts); err != nil {
		s.storeFailed(err, be.failClosed)
		s.failurePolicy(resp, matched, be.failClosed)
		return resp, nil
	}
	s.storeRecovered()
	for j, d := range matched {
		l, c := d.limit, counts[j]
		over := c.Used > uint64(l.RequestsPerUnit)
		code := rlsv3.RateLimitResponse_OK
		switch {
		case over && l.Shadow:
			s.metrics.decision(l.Name, "shadowed")
		case over:
			s.metrics.decision(l.Name, "limited")
			code = rlsv3.RateLimitResponse_OVER_LIMIT
			resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
		default:
			s.metrics.decision(l.Name, "allowed")
		}
		if l.Shadow {
			// A shadow limit is invisible to clients: no limit means no RateLimit headers
			// telling them to slow down for a limit that is not enforced.
			resp.Statuses[d.index] = &rlsv3.RateLimitResponse_DescriptorStatus{Code: code}
			continue
		}
		resp.Statuses[d.index] = &rlsv3.RateLimitResponse_DescriptorStatus{
			Code:               code,
			CurrentLimit:       currentLimit(l),
			LimitRemaining:     uint32(uint64(l.RequestsPerUnit) - min(c.Used, uint64(l.RequestsPerUnit))),
			DurationUntilReset: durationpb.New(c.ResetIn),
		}
	}
	return resp, nil
}

// hitsOf is how many requests descriptor d counts for: its own hits_addend when set, else the
// request's, else one. A negative hits_addend (a refund) is not supported and counts nothing.
func hitsOf(req *rlsv3.RateLimitRequest, d *commonrl.RateLimitDescriptor) uint64 {
	if d.GetIsNegativeHits() {
		return 0
	}
	if h := d.GetHitsAddend(); h != nil {
		return h.GetValue()
	}
	if h := req.GetHitsAddend(); h != 0 {
		return uint64(h)
	}
	return 1
}

func currentLimit(l *Limit) *rlsv3.RateLimitResponse_RateLimit {
	return &rlsv3.RateLimitResponse_RateLimit{Name: l.Name, RequestsPerUnit: l.RequestsPerUnit, Unit: l.Unit.proto()}
}

// failurePolicy decides the matched descriptors without counts. Failing open answers OK with no
// limit, so Envoy emits no RateLimit headers it cannot back; failing closed rejects every
// descriptor under a non-shadow limit.
func (s *Service) failurePolicy(resp *rlsv3.RateLimitResponse, matched []decision, failClosed bool) {
	for _, d := range matched {
		st := &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK}
		switch {
		case failClosed && !d.limit.Shadow:
			st = &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OVER_LIMIT, CurrentLimit: currentLimit(d.limit)}
			resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
			s.metrics.decision(d.limit.Name, "limited")
		case failClosed:
			s.metrics.decision(d.limit.Name, "shadowed")
		default:
			s.metrics.decision(d.limit.Name, "allowed")
		}
		resp.Statuses[d.index] = st
	}
}

// storeFailed records a failure; only the first of a run is logged, since while the store is
// down every request fails the same way.
func (s *Service) storeFailed(err error, failClosed bool) {
	s.metrics.storeErrors.Inc()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health.StoreErrors++
	s.health.LastError = err
	if s.health.Degraded {
		return
	}
	s.health.Degraded = true
	s.health.DegradedSince = s.now()
	s.metrics.degraded.Set(1)
	policy := "allowing requests (fail open)"
	if failClosed {
		policy = "rejecting limited requests (fail closed)"
	}
	s.logger.Warn("rate limit store failed; "+policy, "error", err)
}

func (s *Service) storeRecovered() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.health.Degraded {
		return
	}
	s.logger.Info("rate limit store recovered", "degraded_for", s.now().Sub(s.health.DegradedSince).String())
	s.health.Degraded = false
	s.health.DegradedSince = time.Time{}
	s.metrics.degraded.Set(0)
}

// metrics are the service's Prometheus collectors.
type metrics struct {
	decisions   *prometheus.CounterVec
	storeErrors prometheus.Counter
	degraded    prometheus.Gauge
	latency     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_ratelimit_decisions_total",
			Help: "Rate limit decisions per limit: allowed, limited, or shadowed (over a shadow limit, allowed).",
		}, []string{"limit", "decision"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portico_ratelimit_store_errors_total",
			Help: "Rate limit store calls that failed; the failure policy decided those requests.",
		}),
		degraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "portico_ratelimit_store_degraded",
			Help: "1 while the rate limit store fails and its failure policy decides requests, else 0.",
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "portico_ratelimit_request_duration_seconds",
			Help:    "Time to answer one rate limit check from Envoy.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25},
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.decisions, m.storeErrors, m.degraded, m.latency} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) decision(limit, decision string) {
	m.decisions.WithLabelValues(limit, decision).Inc()
}
