package discovery

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/portico-gw/portico/config"
)

// Options configure a Manager. Zero durations take the defaults.
type Options struct {
	Logger *slog.Logger
	// Client sends the requests to etcd; it must not time out whole requests, since a watch is
	// one long response. Default: a client of its own.
	Client *http.Client
	// MinBackoff and MaxBackoff bound the wait between retries while etcd cannot be reached.
	// Defaults 200ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// HealthInterval is how often a watched etcd is asked whether it still answers, and how
	// long it has to answer; a watch over a dead network path would otherwise wait forever.
	// Default 5s.
	HealthInterval time.Duration
	// FirstRead bounds how long Discover waits for a new source's first read. Default 3s.
	FirstRead time.Duration
}

// Manager follows the discovery sources of the configurations it is given. Its methods are
// safe for concurrent use.
type Manager struct {
	o       Options
	changed chan struct{}
	running sync.WaitGroup

	mu      sync.Mutex
	sources map[string]*source
}

// New returns a Manager that follows nothing yet; Discover gives it sources.
func New(o Options) *Manager {
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.HealthInterval == 0 {
		o.HealthInterval = 5 * time.Second
	}
	if o.FirstRead == 0 {
		o.FirstRead = 3 * time.Second
	}
	return &Manager{o: o, changed: make(chan struct{}, 1), sources: map[string]*source{}}
}

// Changed receives a value after some source's hosts changed; several changes in a row may
// arrive as one. The receiver reads Hosts again.
func (m *Manager) Changed() <-chan struct{} { return m.changed }

// Wait returns once every watch has stopped: they do when the context given to Discover is
// done, or when a later Discover drops their source.
func (m *Manager) Wait() { m.running.Wait() }

// source is one etcd prefix, shared by the Upstreams that name the same endpoints and prefix.
type source struct {
	key       string
	endpoints []string
	prefix    string
	cancel    context.CancelFunc
	done      chan struct{}
	// firstRead is closed once the first read succeeded or failed.
	firstRead     chan struct{}
	firstReadOnce sync.Once

	// Guarded by Manager.mu.
	upstreams []string
	// known is set once a read succeeded: hosts is what etcd holds, not a guess.
	known   bool
	values  map[string][]byte // by key
	hosts   []config.Host
	skipped []Skipped
	// degraded is set while etcd cannot be reached; since is when that began.
	degraded  bool
	since     time.Time
	lastError string
	errors    uint64
	revision  int64
}

// Skipped is a key whose value is not a host, and why.
type Skipped struct {
	Key    string
	Reason string
}

func sourceKey(e *config.EtcdUpstream) string {
	return strings.Join(e.Endpoints, ",") + "\x00" + e.Prefix
}

// Discover makes the Manager follow the etcd sources of the Upstreams in cfgs (the
// configuration served and the one about to be, say) and stop following any other. It returns
// once every new source has been read once, or has failed to be, or FirstRead has passed, so
// that a push right after it carries the hosts. The watches run until ctx is done or a later
// Discover drops them.
func (m *Manager) Discover(ctx context.Context, cfgs ...*config.Config) {
	wanted := map[string]*config.EtcdUpstream{}
	names := map[string][]string{}
	for _, cfg := range cfgs {
		if cfg == nil {
			continue
		}
		for _, u := range cfg.Upstreams {
			if u.Spec.Etcd == nil {
				continue
			}
			k := sourceKey(u.Spec.Etcd)
			wanted[k] = u.Spec.Etcd
			if !slices.Contains(names[k], u.Metadata.Name) {
				names[k] = append(names[k], u.Metadata.Name)
			}
		}
	}
	var started, dropped []*source
	m.mu.Lock()
	for k, s := range m.sources {
		if _, ok := wanted[k]; !ok {
			delete(m.sources, k)
			dropped = append(dropped, s)
		}
	}
	for k, e := range wanted {
		s, ok := m.sources[k]
		if !ok {
			s = &source{key: k, endpoints: slices.Clone(e.Endpoints), prefix: e.Prefix, done: make(chan struct{}), firstRead: make(chan struct{})}
			m.sources[k] = s
			started = append(started, s)
		}
		s.upstreams = names[k]
		slices.Sort(s.upstreams)
	}
	m.mu.Unlock()
	for _, s := range dropped {
		s.cancel()
		<-s.done
		m.o.Logger.Info("etcd discovery stopped", "prefix", s.prefix, "endpoints", s.endpoints)
	}
	for _, s := range started {
		sctx, cancel := context.WithCancel(ctx)
		s.cancel = cancel
		m.running.Go(func() {
			defer close(s.done)
			m.follow(sctx, s)
		})
	}
	if len(started) == 0 {
		return
	}
	timer := time.NewTimer(m.o.FirstRead)
	defer timer.Stop()
	for _, s := range started {
		select {
		case <-s.firstRead:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// Hosts returns the hosts found for u as configured (its endpoints and prefix), and false
// when u does not discover hosts from etcd or none have been read yet.
func (m *Manager) Hosts(u *config.Upstream) ([]config.Host, bool) {
	if u.Spec.Etcd == nil {
		return nil, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sources[sourceKey(u.Spec.Etcd)]
	if !ok || !s.known {
		return nil, false
	}
	return slices.Clone(s.hosts), true
}

// Status is the state of one Upstream's discovery.
type Status struct {
	Upstream  string
	Endpoints []string
	Prefix    string
	// Known is set once etcd was read: until then the Upstream has no hosts.
	Known bool
	Hosts []config.Host
	// Skipped are keys whose values are not hosts.
	Skipped []Skipped
	// Degraded is set while etcd cannot be reached; the last known hosts keep serving.
	Degraded      bool
	DegradedSince time.Time
	LastError     string
	// Errors counts failed reads and watches since the source was first followed.
	Errors   uint64
	Revision int64
}

// Status reports every followed Upstream's discovery, by Upstream name.
func (m *Manager) Status() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Status
	for _, s := range m.sources {
		for _, name := range s.upstreams {
			out = append(out, Status{
				Upstream: name, Endpoints: slices.Clone(s.endpoints), Prefix: s.prefix,
				Known: s.known, Hosts: slices.Clone(s.hosts), Skipped: slices.Clone(s.skipped),
				Degraded: s.degraded, DegradedSince: s.since, LastError: s.lastError,
				Errors: s.errors, Revision: s.revision,
			})
		}
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Upstream, b.Upstream) })
	return out
}

// follow reads and watches s until ctx is done, moving to the next endpoint and backing off
// after every failure.
func (m *Manager) follow(ctx context.Context, s *source) {
	backoff := m.o.MinBackoff
	for i := 0; ; i = (i + 1) % len(s.endpoints) {
		c := etcdClient{http: m.o.Client, endpoint: s.endpoints[i]}
		read, err := m.followOnce(ctx, s, c)
		if ctx.Err() != nil {
			return
		}
		if read {
			backoff = m.o.MinBackoff // it worked for a while: retry soon
		}
		m.failed(s, err)
		s.firstReadOnce.Do(func() { close(s.firstRead) })
		if errors.Is(err, errCompacted) {
			continue // only behind: read everything again at once
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, m.o.MaxBackoff)
	}
}

// followOnce reads every key under the prefix from c, then follows the changes until the
// watch fails; read reports whether the read succeeded.
func (m *Manager) followOnce(ctx context.Context, s *source, c etcdClient) (read bool, err error) {
	rctx, cancel := context.WithTimeout(ctx, m.o.HealthInterval)
	rr, err := c.rangePrefix(rctx, s.prefix, false)
	cancel()
	if err != nil {
		return false, err
	}
	values := make(map[string][]byte, len(rr.KVs))
	for _, kv := range rr.KVs {
		values[string(kv.Key)] = kv.Value
	}
	m.update(s, c.endpoint, rr.Header.Revision, func(map[string][]byte) map[string][]byte { return values })
	s.firstReadOnce.Do(func() { close(s.firstRead) })

	wctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	// A watch over a network path that died without a reset would wait forever: ask etcd
	// regularly whether it still answers, and give up on the watch when it does not.
	go func() {
		t := time.NewTicker(m.o.HealthInterval)
		defer t.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-t.C:
				hctx, cancel := context.WithTimeout(wctx, m.o.HealthInterval)
				_, err := c.rangePrefix(hctx, s.prefix, true)
				cancel()
				if err != nil && wctx.Err() == nil {
					stop(err)
					return
				}
			}
		}
	}()
	err = c.watchPrefix(wctx, s.prefix, rr.Header.Revision+1, func(rev int64, events []watchEvent) {
		m.update(s, c.endpoint, rev, func(values map[string][]byte) map[string][]byte {
			for _, e := range events {
				if e.Type == "DELETE" {
					delete(values, string(e.KV.Key))
				} else {
					values[string(e.KV.Key)] = e.KV.Value
				}
			}
			return values
		})
	})
	if cause := context.Cause(wctx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	return true, err
}

// update applies change to s's values and recomputes its hosts, logging newly skipped keys,
// and signals Changed when the hosts differ. A successful exchange with etcd also ends a
// degradation.
func (m *Manager) update(s *source, endpoint string, revision int64, change func(map[string][]byte) map[string][]byte) {
	m.mu.Lock()
	old := map[string]string{}
	for _, sk := range s.skipped {
		old[sk.Key] = sk.Reason
	}
	values := s.values
	if values == nil {
		values = map[string][]byte{}
	}
	s.values = change(values)
	hosts, skipped := hostsOf(s.values)
	changed := !s.known || !slices.Equal(hosts, s.hosts)
	wasDegraded, since := s.degraded, s.since
	s.known, s.hosts, s.skipped = true, hosts, skipped
	s.degraded, s.since = false, time.Time{}
	if revision > 0 {
		s.revision = revision
	}
	upstreams := slices.Clone(s.upstreams)
	m.mu.Unlock()

	if wasDegraded {
		m.o.Logger.Info("etcd reachable again; discovered hosts follow it", "upstreams", upstreams, "endpoint", endpoint,
			"degraded_for", time.Since(since).Round(time.Millisecond).String())
	}
	for _, sk := range skipped {
		if old[sk.Key] != sk.Reason {
			m.o.Logger.Warn("etcd key skipped: its value is not a host", "upstreams", upstreams, "key", sk.Key, "problem", sk.Reason)
		}
	}
	if changed {
		m.o.Logger.Info("discovered hosts", "upstreams", upstreams, "prefix", s.prefix, "hosts", len(hosts), "skipped", len(skipped))
		select {
		case m.changed <- struct{}{}:
		default:
		}
	}
}

// failed records that etcd could not be read or watched; the last known hosts stay.
func (m *Manager) failed(s *source, err error) {
	m.mu.Lock()
	s.errors++
	first := !s.degraded
	if first {
		s.degraded, s.since = true, time.Now()
	}
	repeat := s.lastError == err.Error()
	s.lastError = err.Error()
	known, n, upstreams := s.known, len(s.hosts), slices.Clone(s.upstreams)
	m.mu.Unlock()
	switch {
	case first && known:
		m.o.Logger.Error("etcd unreachable; the last known hosts keep serving, retrying", "upstreams", upstreams, "hosts", n, "error", err.Error())
	case first:
		m.o.Logger.Error("etcd unreachable and no hosts known yet: requests to these Upstreams get 503 until it answers; retrying", "upstreams", upstreams, "error", err.Error())
	case !repeat:
		m.o.Logger.Warn("etcd still unreachable", "upstreams", upstreams, "error", err.Error())
	}
}

// hostsOf turns a prefix's values into hosts, in key order. A value that is not a host, or
// names a host another key already names, is skipped with the reason.
func hostsOf(values map[string][]byte) ([]config.Host, []Skipped) {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var hosts []config.Host
	var skipped []Skipped
	seen := map[string]string{}
	for _, k := range keys {
		h, err := parseHost(values[k])
		if err != nil {
			skipped = append(skipped, Skipped{Key: k, Reason: err.Error()})
			continue
		}
		// The same host written differently (::1 and 0::1) is still the same host.
		addr := netip.AddrPortFrom(netip.MustParseAddr(h.Address), uint16(h.Port)).String()
		if other, dup := seen[addr]; dup {
			skipped = append(skipped, Skipped{Key: k, Reason: "the same host as key " + other})
			continue
		}
		seen[addr] = k
		hosts = append(hosts, h)
	}
	return hosts, skipped
}
