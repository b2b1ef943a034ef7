package ratelimit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"

	"github.com/portico-gw/portico/internal/envoytest"
)

// waitFor bounds every poll in this package's tests.
const waitFor = 10 * time.Second

// redisServer is a redis-server child process on loopback.
type redisServer struct {
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
}

// startRedis runs redis-server from PATH on a free loopback port, without persistence, until
// the test ends. Outside CI a missing redis-server skips the test; under CI=true it fails it.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "no redis-server on PATH: install the redis-server package"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return runRedis(t, bin, envoytest.FreePort(t))
}

func runRedis(t *testing.T, bin string, port int) *redisServer {
	t.Helper()
	r := &redisServer{addr: fmt.Sprintf("127.0.0.1:%d", port), exited: make(chan struct{})}
	r.cmd = exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	out := &strings.Builder{}
	r.cmd.Stdout, r.cmd.Stderr = out, out
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	go func() {
		r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(r.stop)
	eventually(t, "redis-server answers PING on "+r.addr, func() bool {
		select {
		case <-r.exited:
			t.Fatalf("redis-server exited: %s", out.String())
		default:
		}
		return r.ping() == nil
	})
	return r
}

func (r *redisServer) ping() error {
	conn, err := net.DialTimeout("tcp", r.addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	c := newRESPConn(conn)
	c.command("PING")
	if err := c.flush(); err != nil {
		return err
	}
	_, err = c.readSimple()
	return err
}

// stop kills redis-server and waits for it to exit.
func (r *redisServer) stop() {
	r.cmd.Process.Kill()
	<-r.exited
}

func newRedisStore(t *testing.T, cfg RedisConfig) *RedisStore {
	t.Helper()
	s, err := NewRedisStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", waitFor, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRedisInstancesShareOneLimit(t *testing.T) {
	redis := startRedis(t)
	limits := []Limit{perIP(5, Minute)}
	a, _, _ := newTestService(t, Config{Limits: limits, Store: newRedisStore(t, RedisConfig{Addr: redis.addr})})
	b, _, _ := newTestService(t, Config{Limits: limits, Store: newRedisStore(t, RedisConfig{Addr: redis.addr})})
	ip := desc(KeyRemoteAddress, "192.0.2.1")
	var got []string
	for i := range 8 {
		s := a
		if i%2 == 1 {
			s = b
		}
		got = append(got, check(t, s, ip).OverallCode.String())
	}
	if want := "OK OK OK OK OK OVER_LIMIT OVER_LIMIT OVER_LIMIT"; strings.Join(got, " ") != want {
		t.Errorf("alternating between two instances: %s, want %s", strings.Join(got, " "), want)
	}
	// Another client's counter is untouched.
	if got := check(t, b, desc(KeyRemoteAddress, "192.0.2.2")).OverallCode; got != rlsv3.RateLimitResponse_OK {
		t.Errorf("another IP: %v, want OK", got)
	}
	if st := a.Status(); st.Degraded || st.StoreErrors != 0 {
		t.Errorf("status %+v, want healthy", st)
	}
}

func TestRedisStoppedFailsOpenAndRecovers(t *testing.T) {
	redis := startRedis(t)
	s, _, reg := newTestService(t, Config{Limits: []Limit{perIP(2, Minute)}, Store: newRedisStore(t, RedisConfig{Addr: redis.addr})})
	ip := desc(KeyRemoteAddress, "192.0.2.1")
	if got, want := checkN(t, s, 3, ip), "OK OK OVER_LIMIT"; got != want {
		t.Fatalf("with redis: %s, want %s", got, want)
	}
	redis.stop()
	if got, want := checkN(t, s, 3, ip), "OK OK OK"; got != want {
		t.Fatalf("redis stopped: %s, want %s (fail open)", got, want)
	}
	st := s.Status()
	if !st.Degraded || st.StoreErrors != 3 || st.LastError == nil {
		t.Fatalf("status %+v, want degraded after 3 errors", st)
	}
	if got := metricValue(t, reg, "portico_ratelimit_store_errors_total", nil); got != 3 {
		t.Errorf("store errors metric %v, want 3", got)
	}

	// Redis comes back on the same address, empty: the service recovers by itself once the
	// store redials.
	runRedis(t, redis.cmd.Path, redis.port(t))
	eventually(t, "the service is healthy again", func() bool {
		check(t, s, desc(KeyRemoteAddress, "192.0.2.9"))
		return !s.Status().Degraded
	})
	if got, want := checkN(t, s, 3, ip), "OK OK OVER_LIMIT"; got != want {
		t.Errorf("after recovery: %s, want %s", got, want)
	}
}

func (r *redisServer) port(t *testing.T) int {
	_, p, err := net.SplitHostPort(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}

func TestRedisSlidingWindow(t *testing.T) {
	redis := startRedis(t)
	s, c, _ := newTestService(t, Config{Limits: []Limit{perIP(10, Minute)}, Store: newRedisStore(t, RedisConfig{Addr: redis.addr, Sliding: true})})
	ip := desc(KeyRemoteAddress, "192.0.2.1")
	if got, want := checkN(t, s, 11, ip), strings.Repeat("OK ", 10)+"OVER_LIMIT"; got != want {
		t.Fatalf("first minute: %s, want %s", got, want)
	}
	// At the start of the next minute the previous one still weighs fully: 11 + 1 > 10. A fixed
	// window would allow 10 more here, 20 within a few seconds.
	c.advance(50 * time.Second)
	if got, want := checkN(t, s, 1, ip), "OVER_LIMIT"; got != want {
		t.Fatalf("start of the next minute: %s, want %s", got, want)
	}
	// Halfway through it weighs half: ceil(11/2) = 6, plus this minute's 2 makes 8; 2 remain.
	c.advance(30 * time.Second)
	st := check(t, s, ip).Statuses[0]
	if st.Code != rlsv3.RateLimitResponse_OK || st.LimitRemaining != 2 {
		t.Fatalf("halfway: %v remaining %d, want OK remaining 2", st.Code, st.LimitRemaining)
	}
	if got := st.GetDurationUntilReset().AsDuration(); got != 30*time.Second {
		t.Errorf("halfway: duration until reset %s, want 30s", got)
	}
	if got, want := checkN(t, s, 3, ip), "OK OK OVER_LIMIT"; got != want {
		t.Errorf("halfway: %s, want %s", got, want)
	}
	// Once a whole empty minute has passed, the busy minute no longer weighs at all.
	c.advance(90 * time.Second)
	if got, want := checkN(t, s, 1, ip), "OK"; got != want {
		t.Errorf("two minutes later: %s, want %s", got, want)
	}
}

func TestRedisErrorReplyIsAStoreError(t *testing.T) {
	redis := startRedis(t)
	store := newRedisStore(t, RedisConfig{Addr: redis.addr, KeyPrefix: "p:"})
	// A key that holds text makes INCRBY fail with an error reply.
	now := t0
	key := "p:k:" + fmt.Sprint(now.Truncate(time.Minute).Unix())
	conn, err := net.Dial("tcp", redis.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := newRESPConn(conn)
	c.command("SET", key, "text")
	if err := c.flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.readSimple(); err != nil {
		t.Fatal(err)
	}
	counts := make([]Count, 1)
	err = store.Add(context.Background(), now, []Hit{{Key: "k", Hits: 1, Window: time.Minute}}, counts)
	if err == nil || !strings.Contains(err.Error(), "not an integer") {
		t.Fatalf("Add on a text key: %v, want Redis's error", err)
	}
	// The failed connection was dropped, and a fresh one works for other keys.
	if err := store.Add(context.Background(), now, []Hit{{Key: "other", Hits: 2, Window: time.Minute}}, counts); err != nil || counts[0].Used != 2 {
		t.Fatalf("Add after an error: used %d, err %v", counts[0].Used, err)
	}
}
