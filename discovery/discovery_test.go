package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/internal/syncbuf"
)

func TestParseHost(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  config.Host
		err   string
	}{
		{value: "10.0.0.1:8080", want: config.Host{Address: "10.0.0.1", Port: 8080, Weight: 1}},
		{value: " [::1]:9090\n", want: config.Host{Address: "::1", Port: 9090, Weight: 1}},
		{value: `{"address": "10.0.0.2", "port": 80}`, want: config.Host{Address: "10.0.0.2", Port: 80, Weight: 1}},
		{value: `{"address": "10.0.0.3", "port": 80, "weight": 4}`, want: config.Host{Address: "10.0.0.3", Port: 80, Weight: 4}},
		{value: "web.internal:80", err: `address "web.internal" is not an IP address`},
		{value: "10.0.0.1", err: `not "<IP>:<port>"`},
		{value: "10.0.0.1:0", err: `port "0" is not a number from 1 to 65535`},
		{value: "10.0.0.1:http", err: `port "http" is not a number`},
		{value: `{"address": "10.0.0.1"}`, err: `no "port"`},
		{value: `{"port": 80}`, err: `no "address"`},
		{value: `{"address": "10.0.0.1", "port": 80, "zone": "a"}`, err: `unknown field "zone"`},
		{value: `{"address": "10.0.0.1", "port": 70000}`, err: "port 70000 is out of range"},
		{value: `{"address": "10.0.0.1", "port": 80, "weight": 0}`, err: "weight 0 is out of range"},
		{value: `{"address": "10.0.0.1", "port": 80} {}`, err: "more than one JSON value"},
		{value: `{"address": "fe80::1%eth0", "port": 80}`, err: "is not an IP address"},
	} {
		t.Run(tc.value, func(t *testing.T) {
			got, err := parseHost([]byte(tc.value))
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("want error containing %q, got %v (host %+v)", tc.err, err, got)
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err == "" && got != tc.want:
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestPrefixEnd(t *testing.T) {
	for _, tc := range []struct{ prefix, want string }{
		{"/services/web/", "/services/web0"},
		{"a\xff", "b"},
		{"\xff\xff", "\x00"},
	} {
		if got := string(prefixEnd(tc.prefix)); got != tc.want {
			t.Errorf("prefixEnd(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

// testManager returns a Manager with short timings whose watches end with the test.
func testManager(t *testing.T) (*Manager, context.Context, *syncbuf.Buffer) {
	t.Helper()
	var log syncbuf.Buffer
	m := New(Options{Logger: slog.New(slog.NewTextHandler(&log, nil)), MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond, HealthInterval: 200 * time.Millisecond, FirstRead: 2 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		m.Wait()
	})
	return m, ctx, &log
}

func etcdConfig(name string, endpoints []string, prefix string) *config.Config {
	return &config.Config{Upstreams: []*config.Upstream{{
		Metadata: config.Metadata{Name: name},
		Spec:     config.UpstreamSpec{Etcd: &config.EtcdUpstream{Endpoints: endpoints, Prefix: prefix}},
	}}}
}

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func addresses(hosts []config.Host) []string {
	var out []string
	for _, h := range hosts {
		out = append(out, fmt.Sprintf("%s:%d/%d", h.Address, h.Port, h.Weight))
	}
	return out
}

func hostsAre(m *Manager, u *config.Upstream, want ...string) func() bool {
	return func() bool {
		hosts, ok := m.Hosts(u)
		return ok && slices.Equal(addresses(hosts), want)
	}
}

// TestFollowsPrefix: Discover returns with the prefix's hosts read (in key order, bad values
// and keys outside the prefix left out, the bad ones logged and in Status), and puts and
// deletes reach Hosts, each signalled on Changed.
func TestFollowsPrefix(t *testing.T) {
	f := newFakeEtcd(t)
	f.put("/services/web/a", `{"address": "127.0.0.1", "port": 8001, "weight": 2}`)
	f.put("/services/web/b", "127.0.0.2:8002")
	f.put("/services/web/c", "not a host")
	f.put("/services/web/d", "127.0.0.2:8002") // same host as b
	f.put("/services/web0", "127.0.0.9:9")     // just past the prefix
	f.put("/services/other/a", "127.0.0.9:9")
	m, ctx, log := testManager(t)
	cfg := etcdConfig("web", []string{f.url()}, "/services/web/")
	u := cfg.Upstreams[0]

	m.Discover(ctx, cfg)
	hosts, ok := m.Hosts(u)
	if !ok {
		t.Fatal("Discover returned before the first read")
	}
	if got, want := addresses(hosts), []string{"127.0.0.1:8001/2", "127.0.0.2:8002/1"}; !slices.Equal(got, want) {
		t.Fatalf("hosts: got %v, want %v", got, want)
	}
	st := m.Status()
	if len(st) != 1 || st[0].Upstream != "web" || !st[0].Known || st[0].Degraded {
		t.Fatalf("status: %+v", st)
	}
	if got := st[0].Skipped; len(got) != 2 || got[0].Key != "/services/web/c" || !strings.Contains(got[1].Reason, "same host as key /services/web/b") {
		t.Errorf("skipped: %+v", got)
	}
	if !strings.Contains(log.String(), "etcd key skipped") || !strings.Contains(log.String(), "/services/web/c") {
		t.Errorf("no log line for the skipped key:\n%s", log)
	}
	drain(m.Changed())

	f.put("/services/web/e", "127.0.0.3:8003")
	waitChanged(t, m)
	eventually(t, "the put host", hostsAre(m, u, "127.0.0.1:8001/2", "127.0.0.2:8002/1", "127.0.0.3:8003/1"))
	f.del("/services/web/a")
	waitChanged(t, m)
	eventually(t, "the deleted host gone", hostsAre(m, u, "127.0.0.2:8002/1", "127.0.0.3:8003/1"))
	f.del("/services/web/b") // d, the same host, now stands for it
	eventually(t, "the duplicate key serving", hostsAre(m, u, "127.0.0.2:8002/1", "127.0.0.3:8003/1"))
	eventually(t, "the duplicate no longer skipped", func() bool { return len(m.Status()[0].Skipped) == 1 })

	for name, want := range map[string]float64{"portico_discovery_hosts": 2, "portico_discovery_skipped_keys": 1, "portico_discovery_degraded": 0} {
		if got := metricValue(t, m, name, "web"); got != want {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
}

// metricValue gathers the Manager's metrics and returns name's value for upstream.
func metricValue(t *testing.T, m *Manager, name, upstream string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(m.Collector()); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			if mt.GetLabel()[0].GetValue() == upstream {
				if mt.GetCounter() != nil {
					return mt.GetCounter().GetValue()
				}
				return mt.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no metric %s for upstream %q", name, upstream)
	return 0
}

func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

func waitChanged(t *testing.T, m *Manager) {
	t.Helper()
	select {
	case <-m.Changed():
	case <-time.After(5 * time.Second):
		t.Fatal("no change signalled")
	}
}

// TestUnreachableKeepsHosts: while etcd cannot be reached the last known hosts stay, the
// source is degraded (status, metric, log) and retried; once etcd answers again, the changes
// made meanwhile arrive and the degradation ends.
func TestUnreachableKeepsHosts(t *testing.T) {
	f := newFakeEtcd(t)
	f.put("/svc/a", "127.0.0.1:8001")
	m, ctx, log := testManager(t)
	cfg := etcdConfig("web", []string{f.url()}, "/svc/")
	u := cfg.Upstreams[0]
	m.Discover(ctx, cfg)

	f.setDown(true)
	eventually(t, "degraded", func() bool { st := m.Status(); return st[0].Degraded && st[0].Errors >= 2 })
	if !hostsAre(m, u, "127.0.0.1:8001/1")() {
		t.Fatalf("the last known hosts were dropped: %v", m.Status()[0].Hosts)
	}
	if got := metricValue(t, m, "portico_discovery_degraded", "web"); got != 1 {
		t.Errorf("portico_discovery_degraded: got %v, want 1", got)
	}
	if got := metricValue(t, m, "portico_discovery_errors_total", "web"); got < 2 {
		t.Errorf("portico_discovery_errors_total: got %v, want 2 or more", got)
	}
	if !strings.Contains(log.String(), "etcd unreachable; the last known hosts keep serving") {
		t.Errorf("no log line for the degradation:\n%s", log)
	}

	f.mu.Lock()
	f.kvs["/svc/b"] = "127.0.0.1:8002" // written while Portico could not see it
	f.revision++
	f.mu.Unlock()
	f.setDown(false)
	eventually(t, "recovered with the change made meanwhile", hostsAre(m, u, "127.0.0.1:8001/1", "127.0.0.1:8002/1"))
	eventually(t, "no longer degraded", func() bool { return !m.Status()[0].Degraded })
	if !strings.Contains(log.String(), "etcd reachable again") {
		t.Errorf("no log line for the recovery:\n%s", log)
	}
}

// TestHungWatchNoticed: a watch that stays open while etcd no longer answers is given up by the
// health probe within about HealthInterval, so the degradation shows instead of a silent
// stale watch.
func TestHungWatchNoticed(t *testing.T) {
	f := newFakeEtcd(t)
	f.put("/svc/a", "127.0.0.1:8001")
	m, ctx, _ := testManager(t)
	cfg := etcdConfig("web", []string{f.url()}, "/svc/")
	m.Discover(ctx, cfg)
	eventually(t, "the watch", func() bool { return f.watchCount() == 1 })
	f.mu.Lock()
	f.hung = true
	f.mu.Unlock()
	eventually(t, "degraded by the probe", func() bool { return m.Status()[0].Degraded })
	if !hostsAre(m, cfg.Upstreams[0], "127.0.0.1:8001/1")() {
		t.Errorf("the last known hosts were dropped: %v", m.Status()[0].Hosts)
	}
}

// TestNeverReachable: Discover does not wait longer than FirstRead-ish for an etcd that is not
// there; the Upstream has no hosts (Hosts says so) and is degraded; the next endpoint is tried.
func TestNeverReachable(t *testing.T) {
	f := newFakeEtcd(t)
	f.put("/svc/a", "127.0.0.1:8001")
	dead := newFakeEtcd(t)
	dead.setDown(true)
	m, ctx, _ := testManager(t)

	only := etcdConfig("web", []string{dead.url()}, "/svc/")
	start := time.Now()
	m.Discover(ctx, only)
	if took := time.Since(start); took > 2*time.Second+time.Second {
		t.Errorf("Discover waited %s", took)
	}
	if _, ok := m.Hosts(only.Upstreams[0]); ok {
		t.Error("hosts known from an etcd never read")
	}
	if st := m.Status(); !st[0].Degraded || st[0].Known || st[0].LastError == "" {
		t.Errorf("status: %+v", st)
	}

	both := etcdConfig("web", []string{dead.url(), f.url()}, "/svc/")
	m.Discover(ctx, both)
	eventually(t, "hosts from the second endpoint", hostsAre(m, both.Upstreams[0], "127.0.0.1:8001/1"))
	if st := m.Status(); len(st) != 1 || st[0].Endpoints[1] != f.url() {
		t.Errorf("the dropped source is still followed: %+v", st)
	}
}

// TestCompactedWatchReadsAgain: a watch refused because its revision was compacted away makes
// the source read the prefix again, so no change is lost.
func TestCompactedWatchReadsAgain(t *testing.T) {
	f := newFakeEtcd(t)
	f.put("/svc/a", "127.0.0.1:8001")
	f.compact()
	f.mu.Lock()
	f.compacted = f.revision + 1 // the watch from the read's revision+1 is already compacted once
	f.mu.Unlock()
	m, ctx, _ := testManager(t)
	cfg := etcdConfig("web", []string{f.url()}, "/svc/")
	m.Discover(ctx, cfg)
	eventually(t, "a second watch", func() bool { return f.watchCount() >= 2 })
	f.mu.Lock()
	f.compacted = 0
	f.mu.Unlock()
	f.put("/svc/b", "127.0.0.1:8002")
	eventually(t, "the change after the compaction", hostsAre(m, cfg.Upstreams[0], "127.0.0.1:8001/1", "127.0.0.1:8002/1"))
}

// TestDiscoverDropsSources: a source no configuration names any more is no longer followed, and
// its Upstream's hosts are not reported; Upstreams sharing a source share its hosts.
func TestDiscoverDropsSources(t *testing.T) {
	f := newFakeEtcd(t)
	f.put("/svc/a", "127.0.0.1:8001")
	m, ctx, _ := testManager(t)
	one := etcdConfig("web", []string{f.url()}, "/svc/")
	two := etcdConfig("api", []string{f.url()}, "/svc/")
	m.Discover(ctx, one, two)
	if st := m.Status(); len(st) != 2 || st[0].Upstream != "api" || st[1].Upstream != "web" {
		t.Fatalf("status: %+v", st)
	}
	if f.watchCount() > 1 {
		t.Errorf("one source watched %d times", f.watchCount())
	}
	if !hostsAre(m, two.Upstreams[0], "127.0.0.1:8001/1")() {
		t.Error("the second Upstream of a shared source has no hosts")
	}
	m.Discover(ctx, &config.Config{})
	if st := m.Status(); len(st) != 0 {
		t.Errorf("still followed: %+v", st)
	}
	if _, ok := m.Hosts(one.Upstreams[0]); ok {
		t.Error("hosts reported for a source no longer followed")
	}
	moved := etcdConfig("web", []string{f.url()}, "/elsewhere/")
	if _, ok := m.Hosts(moved.Upstreams[0]); ok {
		t.Error("hosts of the old prefix reported for a new one")
	}
}
