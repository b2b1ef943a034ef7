package ratelimit

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	commonrl "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/portico-gw/portico/internal/envoytest"
)

const testDomain = "portico"

// t0 is 10s into a minute, an hour and a day: their windows end before a full unit passes.
var t0 = time.Date(2026, 11, 21, 0, 0, 10, 0, time.UTC)

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// newTestService builds a service on a fixed clock with its own metrics registry.
func newTestService(t testing.TB, cfg Config) (*Service, *clock, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	cfg.Domain = testDomain
	cfg.Registerer = reg
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c := &clock{t: t0}
	s.now = c.now
	return s, c, reg
}

// desc builds a descriptor from key, value pairs.
func desc(kv ...string) *commonrl.RateLimitDescriptor {
	d := &commonrl.RateLimitDescriptor{}
	for i := 0; i < len(kv); i += 2 {
		d.Entries = append(d.Entries, &commonrl.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return d
}

func check(t testing.TB, s *Service, descs ...*commonrl.RateLimitDescriptor) *rlsv3.RateLimitResponse {
	t.Helper()
	resp, err := s.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: testDomain, Descriptors: descs})
	if err != nil {
		t.Fatalf("ShouldRateLimit: %v", err)
	}
	if len(resp.Statuses) != len(descs) {
		t.Fatalf("got %d statuses for %d descriptors", len(resp.Statuses), len(descs))
	}
	return resp
}

// codes summarises n checks of the same descriptors: "OK OK OVER_LIMIT".
func checkN(t testing.TB, s *Service, n int, descs ...*commonrl.RateLimitDescriptor) string {
	t.Helper()
	var out []string
	for range n {
		out = append(out, check(t, s, descs...).OverallCode.String())
	}
	return strings.Join(out, " ")
}

func perIP(n uint32, unit Unit) Limit {
	return Limit{Name: "per-ip", Descriptors: []DescriptorMatch{{Key: KeyRemoteAddress}}, RequestsPerUnit: n, Unit: unit}
}

func TestWindowsRollOver(t *testing.T) {
	for _, unit := range []Unit{Second, Minute, Hour, Day} {
		t.Run(unit.String(), func(t *testing.T) {
			s, c, _ := newTestService(t, Config{Limits: []Limit{perIP(2, unit)}})
			ip := desc(KeyRemoteAddress, "192.0.2.1")
			if got, want := checkN(t, s, 3, ip), "OK OK OVER_LIMIT"; got != want {
				t.Fatalf("first window: %s, want %s", got, want)
			}
			// The window is aligned to the unit, so it ends early by as much as t0 is into it.
			elapsed := t0.Sub(t0.Truncate(unit.Duration()))
			c.advance(unit.Duration() - elapsed - time.Nanosecond)
			if got, want := checkN(t, s, 1, ip), "OVER_LIMIT"; got != want {
				t.Fatalf("last instant of the first window: %s, want %s", got, want)
			}
			c.advance(time.Nanosecond)
			if got, want := checkN(t, s, 3, ip), "OK OK OVER_LIMIT"; got != want {
				t.Fatalf("next window: %s, want %s", got, want)
			}
		})
	}
}

func TestResponseCarriesLimitRemainingAndReset(t *testing.T) {
	s, c, _ := newTestService(t, Config{Limits: []Limit{perIP(2, Minute)}})
	ip := desc(KeyRemoteAddress, "192.0.2.1")
	c.advance(5 * time.Second) // 15s into the minute
	for i, want := range []struct {
		code      rlsv3.RateLimitResponse_Code
		remaining uint32
	}{
		{rlsv3.RateLimitResponse_OK, 1},
		{rlsv3.RateLimitResponse_OK, 0},
		{rlsv3.RateLimitResponse_OVER_LIMIT, 0},
	} {
		st := check(t, s, ip).Statuses[0]
		if st.Code != want.code || st.LimitRemaining != want.remaining {
			t.Errorf("request %d: code %v remaining %d, want %v %d", i+1, st.Code, st.LimitRemaining, want.code, want.remaining)
		}
		lim := st.GetCurrentLimit()
		if lim.GetName() != "per-ip" || lim.GetRequestsPerUnit() != 2 || lim.GetUnit() != rlsv3.RateLimitResponse_RateLimit_MINUTE {
			t.Errorf("request %d: current limit %v", i+1, lim)
		}
		if got := st.GetDurationUntilReset().AsDuration(); got != 45*time.Second {
			t.Errorf("request %d: duration until reset %s, want 45s", i+1, got)
		}
	}
}

func TestKeysAreCountedIndependently(t *testing.T) {
	s, _, _ := newTestService(t, Config{Limits: []Limit{
		{Name: "per-key", Descriptors: []DescriptorMatch{{Key: "api_key"}}, RequestsPerUnit: 1, Unit: Minute},
		{Name: "per-route-ip", Descriptors: []DescriptorMatch{{Key: KeyGenericKey}, {Key: KeyRemoteAddress}}, RequestsPerUnit: 1, Unit: Minute},
	}})
	for _, d := range []*commonrl.RateLimitDescriptor{
		desc("api_key", "a"),
		desc("api_key", "b"),
		desc(KeyGenericKey, "orders", KeyRemoteAddress, "192.0.2.1"),
		desc(KeyGenericKey, "orders", KeyRemoteAddress, "192.0.2.2"),
		desc(KeyGenericKey, "users", KeyRemoteAddress, "192.0.2.1"),
		// Two descriptors whose values would collide if the counter key merely joined them.
		desc(KeyGenericKey, "x|y", KeyRemoteAddress, "z"),
		desc(KeyGenericKey, "x", KeyRemoteAddress, "y|z"),
	} {
		if got, want := checkN(t, s, 2, d), "OK OVER_LIMIT"; got != want {
			t.Errorf("%v: %s, want %s", d.Entries, got, want)
		}
	}
	// Entry order does not matter: Envoy's order follows the actions, which users do not see.
	if got, want := checkN(t, s, 1, desc(KeyRemoteAddress, "192.0.2.1", KeyGenericKey, "orders")), "OVER_LIMIT"; got != want {
		t.Errorf("reordered entries: %s, want %s (the same counter)", got, want)
	}
}

func TestMostSpecificLimitWins(t *testing.T) {
	limits := []Limit{
		{Name: "any-key", Descriptors: []DescriptorMatch{{Key: "api_key"}}, RequestsPerUnit: 1, Unit: Minute},
		{Name: "gold-key", Descriptors: []DescriptorMatch{{Key: "api_key", Value: "gold"}}, RequestsPerUnit: 3, Unit: Minute},
		{Name: "gold-on-orders", Descriptors: []DescriptorMatch{{Key: KeyGenericKey, Value: "orders"}, {Key: "api_key", Value: "gold"}}, RequestsPerUnit: 2, Unit: Minute},
		{Name: "any-key-on-route", Descriptors: []DescriptorMatch{{Key: KeyGenericKey}, {Key: "api_key"}}, RequestsPerUnit: 4, Unit: Minute},
	}
	tests := []struct {
		desc      *commonrl.RateLimitDescriptor
		wantLimit string
		want      string
	}{
		{desc("api_key", "plain"), "any-key", "OK OVER_LIMIT OVER_LIMIT OVER_LIMIT OVER_LIMIT"},
		{desc("api_key", "gold"), "gold-key", "OK OK OK OVER_LIMIT OVER_LIMIT"},
		{desc(KeyGenericKey, "orders", "api_key", "gold"), "gold-on-orders", "OK OK OVER_LIMIT OVER_LIMIT OVER_LIMIT"},
		{desc(KeyGenericKey, "orders", "api_key", "plain"), "any-key-on-route", "OK OK OK OK OVER_LIMIT"},
	}
	for _, tt := range tests {
		t.Run(tt.wantLimit, func(t *testing.T) {
			s, _, _ := newTestService(t, Config{Limits: limits})
			if got := check(t, s, tt.desc).Statuses[0].GetCurrentLimit().GetName(); got != tt.wantLimit {
				t.Fatalf("limit %q applies, want %q", got, tt.wantLimit)
			}
			if got := checkN(t, s, 4, tt.desc); "OK "+got != tt.want {
				t.Errorf("codes OK %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDescriptorsOfOneRequest(t *testing.T) {
	s, _, _ := newTestService(t, Config{Limits: []Limit{
		perIP(1, Minute),
		{Name: "per-key", Descriptors: []DescriptorMatch{{Key: "api_key"}}, RequestsPerUnit: 2, Unit: Minute},
	}})
	ip, key, unmatched := desc(KeyRemoteAddress, "192.0.2.1"), desc("api_key", "a"), desc("other", "x")
	resp := check(t, s, ip, key, unmatched)
	if resp.OverallCode != rlsv3.RateLimitResponse_OK {
		t.Fatalf("first request: %v", resp.OverallCode)
	}
	if st := resp.Statuses[2]; st.Code != rlsv3.RateLimitResponse_OK || st.CurrentLimit != nil {
		t.Errorf("unmatched descriptor: %v, want OK without a limit", st)
	}
	// The IP is over its limit while the key is not: one limit over is enough to reject, and
	// each status says which.
	resp = check(t, s, ip, key, unmatched)
	if resp.OverallCode != rlsv3.RateLimitResponse_OVER_LIMIT ||
		resp.Statuses[0].Code != rlsv3.RateLimitResponse_OVER_LIMIT || resp.Statuses[1].Code != rlsv3.RateLimitResponse_OK {
		t.Errorf("second request: overall %v, statuses %v %v", resp.OverallCode, resp.Statuses[0].Code, resp.Statuses[1].Code)
	}
}

func TestHitsAddend(t *testing.T) {
	s, _, _ := newTestService(t, Config{Limits: []Limit{perIP(5, Minute)}})
	resp, err := s.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{
		Domain: testDomain, HitsAddend: 4, Descriptors: []*commonrl.RateLimitDescriptor{desc(KeyRemoteAddress, "192.0.2.1")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Statuses[0].LimitRemaining; got != 1 {
		t.Fatalf("remaining after 4 hits: %d, want 1", got)
	}
	if got, want := checkN(t, s, 2, desc(KeyRemoteAddress, "192.0.2.1")), "OK OVER_LIMIT"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
}

func TestShadowLimitCountsButNeverRejects(t *testing.T) {
	shadow := perIP(2, Minute)
	shadow.Shadow = true
	s, _, reg := newTestService(t, Config{Limits: []Limit{shadow}})
	ip := desc(KeyRemoteAddress, "192.0.2.1")
	for i := range 5 {
		st := check(t, s, ip).Statuses[0]
		if st.Code != rlsv3.RateLimitResponse_OK {
			t.Fatalf("request %d: %v, want OK under a shadow limit", i+1, st.Code)
		}
		if st.CurrentLimit != nil {
			t.Errorf("request %d: status names shadow limit %v; clients would see its headers", i+1, st.CurrentLimit)
		}
	}
	wantDecisions(t, reg, "per-ip", map[string]float64{"allowed": 2, "shadowed": 3, "limited": 0})
}

func TestSetLimits(t *testing.T) {
	s, _, _ := newTestService(t, Config{Limits: []Limit{perIP(1, Minute)}})
	ip := desc(KeyRemoteAddress, "192.0.2.1")
	checkN(t, s, 1, ip)
	err := s.SetLimits([]Limit{perIP(0, Minute), {Name: "per-ip"}})
	if err == nil {
		t.Fatal("SetLimits accepted invalid limits")
	}
	if got, want := checkN(t, s, 1, ip), "OVER_LIMIT"; got != want {
		t.Fatalf("after a rejected update: %s, want %s (the old limits keep applying)", got, want)
	}
	if err := s.SetLimits([]Limit{perIP(3, Minute)}); err != nil {
		t.Fatal(err)
	}
	// The counter carries on under the same name: 2 counted, 1 left.
	if got, want := checkN(t, s, 2, ip), "OK OVER_LIMIT"; got != want {
		t.Errorf("after raising the limit: %s, want %s", got, want)
	}
}

func TestInvalidLimits(t *testing.T) {
	_, err := New(Config{Domain: testDomain, Limits: []Limit{
		{Name: "a", Descriptors: []DescriptorMatch{{Key: "k"}, {Key: "k"}}, RequestsPerUnit: 1, Unit: Minute},
		{Name: "a", Descriptors: []DescriptorMatch{{Key: "k"}}, RequestsPerUnit: 1, Unit: Minute},
		{Descriptors: []DescriptorMatch{{Key: ""}}, RequestsPerUnit: 0, Unit: Unit(9)},
		{Name: "none", RequestsPerUnit: 1, Unit: Second},
	}})
	if err == nil {
		t.Fatal("New accepted invalid limits")
	}
	for _, want := range []string{
		`limits[0] "a": descriptors[1]: key "k" appears twice`,
		`limits[1] "a": name is already used by limits[0]`,
		`limits[2]: name is empty`,
		`limits[2] "": descriptors[0]: key is empty`,
		`limits[2] "": requests per unit is 0: use at least 1`,
		`limits[2] "": unit Unit(9) is not one of second, minute, hour, day`,
		`limits[3] "none": no descriptors`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestWrongDomainIsRefused(t *testing.T) {
	s, _, _ := newTestService(t, Config{Limits: []Limit{perIP(1, Minute)}})
	_, err := s.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "other"})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("got %v, want InvalidArgument", err)
	}
}

// unreachableRedis returns a store whose address refuses connections: a port that was just
// free on loopback.
func unreachableRedis(t *testing.T) *RedisStore {
	t.Helper()
	r, err := NewRedisStore(RedisConfig{Addr: fmt.Sprintf("127.0.0.1:%d", envoytest.FreePort(t))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestStoreFailurePolicy(t *testing.T) {
	shadow := Limit{Name: "shadow", Descriptors: []DescriptorMatch{{Key: "api_key"}}, RequestsPerUnit: 1, Unit: Minute, Shadow: true}
	tests := []struct {
		name       string
		failClosed bool
		want       rlsv3.RateLimitResponse_Code
		decision   string
	}{
		{"fail open", false, rlsv3.RateLimitResponse_OK, "allowed"},
		{"fail closed", true, rlsv3.RateLimitResponse_OVER_LIMIT, "limited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, reg := newTestService(t, Config{Limits: []Limit{perIP(100, Minute), shadow}, Store: unreachableRedis(t), FailClosed: tt.failClosed})
			if st := s.Status(); st.Degraded || st.StoreErrors != 0 {
				t.Fatalf("status before any request: %+v", st)
			}
			for range 3 {
				if got := check(t, s, desc(KeyRemoteAddress, "192.0.2.1")).OverallCode; got != tt.want {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
			// A shadow limit never rejects, even failing closed.
			if got := check(t, s, desc("api_key", "a")).OverallCode; got != rlsv3.RateLimitResponse_OK {
				t.Errorf("shadow limit with a failed store: %v, want OK", got)
			}
			st := s.Status()
			if !st.Degraded || st.StoreErrors != 4 || st.LastError == nil || !st.DegradedSince.Equal(t0) {
				t.Errorf("status %+v, want degraded since %v after 4 errors", st, t0)
			}
			if got := metricValue(t, reg, "portico_ratelimit_store_errors_total", nil); got != 4 {
				t.Errorf("store errors metric %v, want 4", got)
			}
			if got := metricValue(t, reg, "portico_ratelimit_store_degraded", nil); got != 1 {
				t.Errorf("degraded metric %v, want 1", got)
			}
			wantDecisions(t, reg, "per-ip", map[string]float64{tt.decision: 3})
		})
	}
}

// wantDecisions compares the decision counters of one limit.
func wantDecisions(t *testing.T, reg *prometheus.Registry, limit string, want map[string]float64) {
	t.Helper()
	for decision, n := range want {
		labels := map[string]string{"limit": limit, "decision": decision}
		if got := metricValue(t, reg, "portico_ratelimit_decisions_total", labels); got != n {
			t.Errorf("limit %s: %s decisions %v, want %v", limit, decision, got, n)
		}
	}
}

// metricValue reads the counter name whose labels include labels from reg; 0 if absent.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue metrics
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func TestMetricsNeedTheirOwnRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	for i, wantErr := range []bool{false, true} {
		_, err := New(Config{Domain: testDomain, Registerer: reg})
		if (err != nil) != wantErr {
			t.Errorf("New #%d on one registry: err %v, want error %v", i+1, err, wantErr)
		}
	}
}

func TestMemoryStoreDropsEndedWindows(t *testing.T) {
	m := NewMemoryStore()
	counts := make([]Count, 1)
	add := func(now time.Time, key string) {
		t.Helper()
		if err := m.Add(context.Background(), now, []Hit{{Key: key, Hits: 1, Window: time.Second}}, counts); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		add(t0, fmt.Sprint("client-", i))
	}
	if len(m.counters) != 100 {
		t.Fatalf("%d counters, want 100", len(m.counters))
	}
	// Ended windows survive until the next sweep, then go: memory follows active clients.
	add(t0.Add(2*time.Second), "late")
	if len(m.counters) != 101 {
		t.Fatalf("before the sweep: %d counters, want 101", len(m.counters))
	}
	add(t0.Add(sweepInterval), "later")
	if len(m.counters) != 1 {
		t.Fatalf("after the sweep: %d counters, want 1 (only the open window)", len(m.counters))
	}
}

func TestNewRedisStoreRejectsBadConfig(t *testing.T) {
	for _, tt := range []struct {
		cfg  RedisConfig
		want string
	}{
		{RedisConfig{}, "redis store: address is empty"},
		{RedisConfig{Addr: "localhost"}, `redis store: address "localhost" is not host:port`},
		{RedisConfig{Addr: "127.0.0.1:6379", Timeout: -time.Second}, "must not be negative"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			_, err := NewRedisStore(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestSetStore swaps a failing store failing closed for a memory store failing open: the next
// checks are counted in the new store, under the new policy.
func TestSetStore(t *testing.T) {
	s, _, reg := newTestService(t, Config{Limits: []Limit{perIP(2, Minute)}, Store: unreachableRedis(t), FailClosed: true})
	if got := check(t, s, desc(KeyRemoteAddress, "192.0.2.1")).OverallCode; got != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatalf("failing store, fail closed: got %v, want OVER_LIMIT", got)
	}
	s.SetStore(nil, false)
	var got []rlsv3.RateLimitResponse_Code
	for range 3 {
		got = append(got, check(t, s, desc(KeyRemoteAddress, "192.0.2.1")).OverallCode)
	}
	want := []rlsv3.RateLimitResponse_Code{rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OVER_LIMIT}
	if !slices.Equal(got, want) {
		t.Errorf("after SetStore(memory): %v, want %v", got, want)
	}
	if st := s.Status(); st.Degraded {
		t.Errorf("status after a successful count: %+v, want not degraded", st)
	}
	if got := metricValue(t, reg, "portico_ratelimit_store_degraded", nil); got != 0 {
		t.Errorf("degraded metric %v after recovery, want 0", got)
	}
}
