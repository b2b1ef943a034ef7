package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/portico-gw/portico/internal/grpcserve"
	"github.com/portico-gw/portico/internal/unixsock"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/log"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/sotw/v3"
	server "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
)

const (
	// historyLimit bounds how many generations are remembered for WaitACK.
	historyLimit = 64
	// stopTimeout bounds the graceful stop; streams end with the Serve context, so it is only
	// reached if a client ignores the shutdown.
	stopTimeout = 5 * time.Second
)

// Server is the xDS server for one Envoy node. Push, WaitACK and Status are safe for concurrent
// use; Serve runs the gRPC side, one call at a time, and may be called again after it returns.
type Server struct {
	logger *slog.Logger
	nodeID string
	cache  cache.SnapshotCache

	mu sync.Mutex
	// serving is set while Serve runs: stream ids are only unique within one gRPC server.
	serving bool
	// changed is closed and replaced whenever anything WaitACK or Status reports changes.
	changed chan struct{}
	// lastGen is the last generation number handed out (or set by SetInitialGeneration).
	lastGen uint64
	// served is the generation in the cache, nil before the first push.
	served *generation
	// lastGood is the last fully ACKed generation, the target of a rollback.
	lastGood *generation
	// gens holds the most recent generations by number, for ACK accounting and WaitACK. Only
	// the generations that may still be compared, rolled back to or rejected keep their content
	// (see releaseContentLocked).
	gens    map[uint64]*generation
	streams map[int64]*streamState
	// current is the newest open ADS stream: the one whose ACKs count. 0 when none.
	current int64
	// currentFrom is the generation served when the current stream opened: the oldest one it
	// can have been sent.
	currentFrom uint64
	lastNACK    *NACKError
	// rejected is the last generation Envoy rejected, so that the same content is not pushed
	// again: Envoy would only reject it again.
	rejected *generation
	observer Observer
}

// Observer hears about the exchange with Envoy, for metrics. Its methods run with the server's
// lock held: they must return at once and must not call the Server.
type Observer interface {
	// Pushed reports that generation was published.
	Pushed(generation uint64)
	// Answered reports Envoy's answer to a response of typeURL: an ACK, or a NACK.
	Answered(typeURL string, acked bool)
	// Applied reports that Envoy acknowledged every type of generation, latency after its push.
	Applied(generation uint64, latency time.Duration)
}

// SetObserver makes o hear about pushes and Envoy's answers from now on.
func (s *Server) SetObserver(o Observer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.observer = o
}

// New returns a server that serves configuration to the Envoy whose node id is nodeID.
func New(logger *slog.Logger, nodeID string) *Server {
	return &Server{
		logger:  logger,
		nodeID:  nodeID,
		cache:   cache.NewSnapshotCache(true, cache.IDHash{}, libraryLogger(logger)),
		changed: make(chan struct{}),
		gens:    make(map[uint64]*generation),
		streams: make(map[int64]*streamState),
	}
}

// libraryLogger routes go-control-plane's own logging into logger. Its info and warning lines
// describe normal protocol transients (a stale nonce, a route request that does not yet name
// every route of a new snapshot), so they go to debug; this package logs what users act on.
func libraryLogger(logger *slog.Logger) log.Logger {
	l := logger.With("component", "go-control-plane")
	return log.LoggerFuncs{
		DebugFunc: func(format string, args ...any) { l.Debug(fmt.Sprintf(format, args...)) },
		InfoFunc:  func(format string, args ...any) { l.Debug(fmt.Sprintf(format, args...)) },
		WarnFunc:  func(format string, args ...any) { l.Debug(fmt.Sprintf(format, args...)) },
		ErrorFunc: func(format string, args ...any) { l.Error(fmt.Sprintf(format, args...)) },
	}
}

// Serve listens on socketPath (parent dir created 0700 if missing; a stale socket file removed;
// the socket chmod 0600 before accepting) and serves until ctx is done, then stops gracefully.
// It returns nil after a shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, socketPath string) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("serve xds: already serving")
	}
	s.serving = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.serving = false
		s.mu.Unlock()
	}()

	l, err := unixsock.Listen(socketPath)
	if err != nil {
		return err
	}
	grpcServer := grpc.NewServer()
	// Ordered ADS sends a snapshot's types in dependency order (clusters before listeners,
	// listeners before routes) over the single stream, as the ADS protocol expects.
	xdsServer := server.NewServer(ctx, s.cache, s.callbacks(),
		sotw.WithOrderedADS(), sotw.WithLogger(libraryLogger(s.logger)))
	discovery.RegisterAggregatedDiscoveryServiceServer(grpcServer, xdsServer)

	s.logger.Info("xds server listening", "socket", socketPath)
	if err := grpcserve.Serve(ctx, grpcServer, l, stopTimeout); err != nil {
		return fmt.Errorf("serve xds on %s: %w", socketPath, err)
	}
	s.logger.Info("xds server stopped", "socket", socketPath)
	return nil
}

// SetInitialGeneration makes the next Push generation gen+1, so that a restarted Portico keeps
// numbering where it stopped (Envoy compares versions for equality only, but people read them).
// It must be called before the first Push.
func (s *Server) SetInitialGeneration(gen uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.served != nil {
		return fmt.Errorf("set initial generation %d: generation %d is already pushed", gen, s.served.number)
	}
	s.lastGen = gen
	return nil
}

// Checked is a set of resources that passed Check: each resource valid and the set consistent.
// Push serves it as it is, so that resources are checked once per change, however large.
type Checked struct {
	content content
}

// Check validates res as Push needs it (each resource's own validation rules and snapshot
// consistency) and returns it ready to push. `portico validate` runs it too, so that it and the
// server cannot disagree. The protos in res are handed over, not copied: the caller must not
// change them afterwards, since what is served and what later pushes are compared against
// would change with them. (The translator builds new protos for every configuration.)
func Check(res Resources) (*Checked, error) {
	c, err := newContent(res)
	if err != nil {
		return nil, err
	}
	if _, err := c.snapshot("check"); err != nil {
		return nil, err
	}
	return &Checked{content: c}, nil
}

// Resources returns a copy of the checked resources, sorted by name within each type, that the
// caller may change.
func (c *Checked) Resources() Resources {
	out := make(Resources, len(c.content))
	for typeURL := range c.content {
		for _, name := range c.content.names(typeURL) {
			out[typeURL] = append(out[typeURL], proto.Clone(c.content[typeURL][name]))
		}
	}
	return out
}

// Push makes res the served configuration as a new generation. If res is equal (proto.Equal
// per resource, order-insensitive by name) to what is currently served, nothing is pushed and
// changed=false. If res equals the content Envoy rejected last, nothing is pushed either and the
// error wraps that *NACKError: sending it again would only be rejected again. Generations only
// go up; the snapshot version string is the decimal generation.
func (s *Server) Push(ctx context.Context, res *Checked) (gen uint64, changed bool, err error) {
	c := res.content
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.served != nil && s.served.content.equal(c) {
		return s.served.number, false, nil
	}
	if s.rejected != nil && s.rejected.content.equal(c) {
		return s.served.number, false, fmt.Errorf("push: unchanged since envoy rejected it: %w", s.rejected.nack)
	}
	g, err := s.publishLocked(ctx, c, 0)
	if err != nil {
		return 0, false, fmt.Errorf("push: %w", err)
	}
	// Different content: whatever was rejected before may be wanted again later, on purpose.
	s.rejected = nil
	return g.number, true, nil
}

// publishLocked stores c in the cache as the next generation. rollbackOf is the rejected
// generation a rollback replaces, 0 for an ordinary push.
func (s *Server) publishLocked(ctx context.Context, c content, rollbackOf uint64) (*generation, error) {
	number := s.lastGen + 1
	snap, err := c.snapshot(strconv.FormatUint(number, 10))
	if err != nil {
		return nil, err
	}
	g := &generation{number: number, content: c, required: requiredTypes(c, s.served), rollbackOf: rollbackOf, published: time.Now()}
	if rollbackOf != 0 {
		g.restored = s.lastGood.number
	}
	// The cache answers open watches through buffered channels with room for every type, so
	// the send never waits; a cancelled ctx, however, would make it drop some answers at
	// random. Values are kept, cancellation is not.
	if err := s.cache.SetSnapshot(context.WithoutCancel(ctx), s.nodeID, snap); err != nil {
		return nil, fmt.Errorf("set snapshot for generation %d: %w", number, err)
	}
	s.lastGen = number
	s.served = g
	s.gens[number] = g
	if number > historyLimit {
		delete(s.gens, number-historyLimit)
	}
	s.releaseContentLocked()
	if s.observer != nil {
		s.observer.Pushed(number)
	}
	s.logger.Info("pushed xds generation", "generation", number, "rollback_of", rollbackOf,
		"listeners", len(c[resource.ListenerType]), "routes", len(c[resource.RouteType]),
		"clusters", len(c[resource.ClusterType]), "endpoints", len(c[resource.EndpointType]),
		"secrets", len(c[resource.SecretType]))
	// A generation with nothing to ACK is applied as soon as it is published.
	s.recomputeACKLocked()
	s.notifyLocked()
	return g, nil
}

// requiredTypes lists the types Envoy must ACK before g counts as applied: those with resources,
// plus listeners and clusters that prev had, because Envoy subscribes to those by wildcard and
// must ACK their removal. (Routes, endpoints and secrets are requested by name, and Envoy stops
// asking for them once nothing references them, so their removal is never ACKed.) A Secret
// counts like any other type: a rotated certificate is applied once Envoy ACKed the Secret.
func requiredTypes(c content, prev *generation) []string {
	out := slices.Sorted(maps.Keys(c))
	if prev != nil {
		for _, typeURL := range []string{resource.ClusterType, resource.ListenerType} {
			if _, has := c[typeURL]; !has && len(prev.content[typeURL]) > 0 {
				out = append(out, typeURL)
			}
		}
	}
	return out
}

// notifyLocked wakes every WaitACK.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Status is a snapshot of what the server serves and what Envoy has applied.
type Status struct {
	// PushedGeneration is the generation currently served, 0 before the first push.
	PushedGeneration uint64
	// ACKedGeneration is the last generation Envoy ACKed for every type in it, 0 if none.
	ACKedGeneration uint64
	// Connected reports whether the newest ADS stream, the one whose ACKs count, is open.
	Connected bool
	// RollbackOf is non-zero when the served generation is a rollback: it names the rejected
	// generation that the rollback replaced.
	RollbackOf uint64
	// RestoredGeneration is, for a rollback, the ACKed generation whose content it re-publishes.
	RestoredGeneration uint64
	// LastNACK is Envoy's last rejection, nil if it rejected nothing since this server started.
	LastNACK *NACKError
}

// Status reports pushed generation, last fully ACKed generation, whether an Envoy is connected,
// and the last NACK.
func (s *Server) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Status{Connected: s.current != 0}
	if s.served != nil {
		st.PushedGeneration = s.served.number
		st.RollbackOf = s.served.rollbackOf
		st.RestoredGeneration = s.served.restored
	}
	if s.lastGood != nil {
		st.ACKedGeneration = s.lastGood.number
	}
	if s.lastNACK != nil {
		n := *s.lastNACK
		n.Names = append([]string(nil), s.lastNACK.Names...)
		st.LastNACK = &n
	}
	return st
}

// WaitACK blocks until the connected Envoy has ACKed generation gen (or a later one) for every
// resource type present in that generation, returns a *NACKError if Envoy rejected it, or
// ctx.Err().
//
// Generations are examined from gen upwards and the first one with an outcome decides: a
// rejection returns its *NACKError, an ACK returns nil. A rollback's ACK answers only a wait for
// the rollback itself, since it says nothing about the newer content it replaced. Envoy may
// skip generations superseded before it received them; those have no outcome of their own.
func (s *Server) WaitACK(ctx context.Context, gen uint64) error {
	for {
		s.mu.Lock()
		done, err := s.ackOutcomeLocked(gen)
		changed := s.changed
		s.mu.Unlock()
		if done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

func (s *Server) ackOutcomeLocked(gen uint64) (bool, error) {
	if s.served == nil || gen == 0 || gen > s.served.number {
		return true, fmt.Errorf("wait for ack: generation %d has not been pushed", gen)
	}
	for n := gen; n <= s.served.number; n++ {
		g, ok := s.gens[n]
		if !ok {
			// Older than the remembered history: only the ACK level can answer.
			if s.lastGood != nil && s.lastGood.number >= gen {
				return true, nil
			}
			continue
		}
		switch {
		case g.nack != nil:
			return true, g.nack
		case g.acked && (g.rollbackOf == 0 || n == gen):
			return true, nil
		}
	}
	return false, nil
}
