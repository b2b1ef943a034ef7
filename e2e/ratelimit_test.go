package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
	"github.com/portico-gw/portico/internal/syncbuf"
)

// rlResponse is what a rate limit test looks at in one answer.
type rlResponse struct {
	status int
	body   string
	header http.Header
}

// getWithKey sends GET url with x-api-key (when key is not empty).
func getWithKey(t *testing.T, url, key string) rlResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("x-api-key", key)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", url, err)
	}
	return rlResponse{resp.StatusCode, string(body), resp.Header}
}

// awaitRateLimitService waits until Envoy reaches the rate limit service for url: until then
// Envoy fails open and adds no RateLimit headers. It spends requests of key, which must be a
// key no assertion uses.
func awaitRateLimitService(t *testing.T, url, key string) {
	t.Helper()
	eventually(t, 15*time.Second, "envoy asks the rate limit service", func() error {
		r := getWithKey(t, url, key)
		if r.header.Get("x-ratelimit-limit") == "" {
			return fmt.Errorf("got %d without x-ratelimit-limit", r.status)
		}
		return nil
	})
}

// clearOfMinuteBoundary returns once at least 10s of the current UTC minute remain, so that a
// per-minute window cannot restart in the middle of the requests that follow.
func clearOfMinuteBoundary(t *testing.T) {
	t.Helper()
	now := time.Now()
	if left := now.Truncate(time.Minute).Add(time.Minute).Sub(now); left < 10*time.Second {
		t.Logf("waiting %s for the next minute window", left.Round(time.Millisecond))
		time.Sleep(left + 50*time.Millisecond)
	}
}

// expectStatuses sends len(want) requests with key and compares the statuses in order.
func expectStatuses(t *testing.T, url, key string, want ...int) []rlResponse {
	t.Helper()
	var got []int
	var rs []rlResponse
	for range want {
		r := getWithKey(t, url, key)
		got = append(got, r.status)
		rs = append(rs, r)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("GET %s with key %q: statuses %v, want %v", url, key, got, want)
	}
	return rs
}

// rateLimitGateway declares Gateway "web" on 127.0.0.1:port with the given spec.rateLimit.
func rateLimitGateway(port int, rateLimit string) string {
	return fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: web}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  rateLimit: %s
`, port, rateLimit)
}

const rateLimitConfig = `---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - name: keyed
    match: {prefix: /keyed}
    upstream: api
    rateLimit:
      global:
      - {name: per-key, requestsPerUnit: 3, unit: minute, key: {header: x-api-key}}
  - name: shadow
    match: {prefix: /shadow}
    upstream: api
    rateLimit:
      global:
      - {name: watched, requestsPerUnit: 1, unit: minute, shadow: true}
  - name: local
    match: {prefix: /local}
    upstream: api
    rateLimit:
      local: {requests: 1, interval: 1m, burst: 2}
`

func TestRateLimits(t *testing.T) {
	api := newBackend(t, "api")
	dir := t.TempDir()
	port := envoytest.FreePort(t)
	gw := rateLimitGateway(port, `{body: "slow down\n"}`)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, gw+rateLimitConfig+api.upstreamYAML())
	admin, flag := adminAddr(t)
	startReady(t, cfg, flag...)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	awaitRateLimitService(t, base+"/keyed", "warm-up")
	clearOfMinuteBoundary(t)

	t.Run("N per minute, then 429 with headers", func(t *testing.T) {
		rs := expectStatuses(t, base+"/keyed", "alice", 200, 200, 200, 429, 429)
		for i, r := range rs {
			if got := r.header.Get("x-ratelimit-limit"); !strings.HasPrefix(got, "3") {
				t.Errorf("request %d: x-ratelimit-limit %q, want 3 (and its window)", i+1, got)
			}
			if r.header.Get("x-ratelimit-reset") == "" {
				t.Errorf("request %d: no x-ratelimit-reset", i+1)
			}
		}
		if got := rs[2].header.Get("x-ratelimit-remaining"); got != "0" {
			t.Errorf("third request: x-ratelimit-remaining %q, want 0", got)
		}
		if rs[3].body != "slow down\n" {
			t.Errorf("limited answer body %q, want the Gateway's rateLimit.body", rs[3].body)
		}
	})
	t.Run("keys are limited independently", func(t *testing.T) {
		expectStatuses(t, base+"/keyed", "bob", 200, 200, 200, 429)
		expectStatuses(t, base+"/keyed", "alice", 429)
	})
	t.Run("requests without the key header are not limited by it", func(t *testing.T) {
		expectStatuses(t, base+"/keyed", "", 200, 200, 200, 200)
	})
	t.Run("shadow never blocks", func(t *testing.T) {
		rs := expectStatuses(t, base+"/shadow", "", 200, 200, 200, 200, 200)
		for i, r := range rs {
			if h := r.header.Get("x-ratelimit-limit"); h != "" {
				t.Errorf("request %d: shadow limit leaked x-ratelimit-limit %q to the client", i+1, h)
			}
		}
	})
	t.Run("local token bucket: burst, then 429", func(t *testing.T) {
		rs := expectStatuses(t, base+"/local", "", 200, 200, 429)
		if got := rs[2].header.Get("x-ratelimit-limit"); got == "" {
			t.Errorf("local limit: no x-ratelimit-limit header")
		}
		if rs[2].body != "slow down\n" {
			t.Errorf("local limit: body %q, want the Gateway's rateLimit.body", rs[2].body)
		}
		// The other routes have buckets of their own, or none.
		expectStatuses(t, base+"/shadow", "", 200)
	})
	t.Run("decisions are counted in the admin metrics", func(t *testing.T) {
		_, body, err := get("", "http://"+admin+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		// alice: 2 then 1 more over the limit, bob: 1; the shadow limit let 5 of 6 pass over it.
		for _, want := range []string{
			`portico_ratelimit_decisions_total{decision="limited",limit="shop/keyed/per-key"} 4`,
			`portico_ratelimit_decisions_total{decision="shadowed",limit="shop/shadow/watched"} 5`,
			`portico_ratelimit_decisions_total{decision="allowed",limit="shop/shadow/watched"} 1`,
		} {
			if !strings.Contains(body, want+"\n") {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})
	t.Run("a reload changes a limit", func(t *testing.T) {
		// Envoy's routes stay the same: only the rate limit service learns the new number.
		writeFile(t, cfg, gw+strings.Replace(rateLimitConfig, "requestsPerUnit: 3", "requestsPerUnit: 1", 1)+api.upstreamYAML())
		i := 0
		eventually(t, 15*time.Second, "one request per minute per key", func() error {
			i++
			key := fmt.Sprintf("reload-%d", i)
			first, second := getWithKey(t, base+"/keyed", key), getWithKey(t, base+"/keyed", key)
			if first.status != 200 || second.status != 429 {
				return fmt.Errorf("key %s: %d then %d", key, first.status, second.status)
			}
			return nil
		})
	})
}

// redisServer runs redis-server on a free loopback port until stop or the test's end.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
	done chan struct{}
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server is not on PATH; CI must install it (Debian package redis-server)")
		}
		t.Skip("redis-server is not on PATH; install it to run the shared-limit tests")
	}
	port := envoytest.FreePort(t)
	out := &syncbuf.Buffer{}
	r := &redisServer{addr: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan struct{})}
	r.cmd = exec.Command(bin, "--bind", "127.0.0.1", "--port", fmt.Sprint(port), "--save", "", "--appendonly", "no",
		"--dir", t.TempDir())
	r.cmd.Stdout, r.cmd.Stderr = out, out
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	go func() {
		r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("redis-server output:\n%s", out)
		}
	})
	eventually(t, 10*time.Second, "redis-server accepts connections", func() error {
		c, err := net.DialTimeout("tcp", r.addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
	return r
}

func (r *redisServer) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	_ = r.cmd.Process.Kill()
	<-r.done
}

// TestRateLimitsSharedInRedis runs two portico instances counting in one Redis: they enforce
// one combined limit, and keep serving, failing open, once Redis is gone.
func TestRateLimitsSharedInRedis(t *testing.T) {
	redis := startRedis(t)
	api := newBackend(t, "api")
	type instance struct {
		base, admin string
	}
	var instances []instance
	for _, name := range []string{"a", "b"} {
		dir := filepath.Join(t.TempDir(), name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		port := envoytest.FreePort(t)
		gw := rateLimitGateway(port, fmt.Sprintf("{redis: {address: %q}}", redis.addr))
		cfg := filepath.Join(dir, "portico.yaml")
		writeFile(t, cfg, gw+rateLimitConfig+api.upstreamYAML())
		addr, flag := adminAddr(t)
		startReady(t, cfg, flag...)
		instances = append(instances, instance{fmt.Sprintf("http://127.0.0.1:%d", port), addr})
	}
	for i, in := range instances {
		awaitRateLimitService(t, in.base+"/keyed", fmt.Sprintf("warm-up-%d", i))
	}
	clearOfMinuteBoundary(t)

	// Three per minute across both: a, b, a pass; then both refuse.
	var got []int
	for _, in := range []instance{instances[0], instances[1], instances[0], instances[1], instances[0]} {
		got = append(got, getWithKey(t, in.base+"/keyed", "carol").status)
	}
	if want := []int{200, 200, 200, 429, 429}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("alternating between instances: %v, want %v (one combined limit)", got, want)
	}

	redis.stop()
	// Fail open: with Redis gone, even a key over its limit passes, on both instances.
	for _, in := range instances {
		expectStatuses(t, in.base+"/keyed", "carol", 200, 200, 200, 200)
	}
	for _, in := range instances {
		st, err := porticoStatus(t, in.admin)
		if err != nil {
			t.Fatal(err)
		}
		rl := st.RateLimit
		if rl == nil || !rl.Degraded || rl.FailureMode != "open" || rl.StoreErrors == 0 || !strings.HasPrefix(rl.Store, "redis ") {
			t.Errorf("status of %s: rate limit %+v, want degraded, redis store, failing open", in.admin, rl)
		}
		if _, body, err := get("", "http://"+in.admin+"/metrics"); err != nil || !strings.Contains(body, "\nportico_ratelimit_store_degraded 1\n") {
			t.Errorf("/metrics of %s: %v; want portico_ratelimit_store_degraded 1", in.admin, err)
		}
		out, err := exec.Command(porticoBin, "status", "--admin-address", in.admin).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "DEGRADED") {
			t.Errorf("portico status: %v\n%s\nwant the rate limit line to say DEGRADED", err, out)
		}
	}
}
