package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// Bounds on what the tests wait for. Envoy starts in well under a second on an idle machine;
// the margins absorb a loaded one.
const (
	readyTimeout = 20 * time.Second
	returnBound  = 20 * time.Second
)

// directBody is what the test listener answers on every path but /slow.
const directBody = "hello from envoy"

// bootstrapYAML is a static Envoy configuration: admin on a kernel-chosen loopback port, and a
// listener that answers directBody itself and sends /slow to a backend cluster.
const bootstrapYAML = `admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 0 }
static_resources:
  listeners:
  - name: test
    address:
      socket_address: { address: 127.0.0.1, port_value: %d }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: test
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/slow" }
                route: { cluster: backend, timeout: 60s }
              - match: { prefix: "/" }
                direct_response: { status: 200, body: { inline_string: %q } }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: backend
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: backend
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: { address: 127.0.0.1, port_value: %d }
`

// writeBootstrap writes the test bootstrap into dir and returns its path.
func writeBootstrap(t *testing.T, dir string, listenPort, backendPort int) string {
	t.Helper()
	path := filepath.Join(dir, "bootstrap.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, bootstrapYAML, listenPort, directBody, backendPort), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// recordCapture collects the JSON records of a slog handler.
type recordCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *recordCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *recordCapture) records(t *testing.T) []map[string]any {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for line := range bytes.Lines(c.buf.Bytes()) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("decode log record %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// find returns the records whose attributes include every key/value in want.
func (c *recordCapture) find(t *testing.T, want map[string]any) []map[string]any {
	t.Helper()
	var found []map[string]any
	for _, rec := range c.records(t) {
		match := true
		for k, v := range want {
			if rec[k] != v {
				match = false
				break
			}
		}
		if match {
			found = append(found, rec)
		}
	}
	return found
}

// runningSupervisor is a Supervisor whose Run is in progress on its own goroutine.
type runningSupervisor struct {
	*Supervisor
	cancel   context.CancelFunc
	returned chan struct{} // closed when Run has returned
	err      error         // Run's result, valid once returned is closed
	logs     *recordCapture
}

// startSupervisor runs a Supervisor for opts until the test ends.
func startSupervisor(t *testing.T, opts Options) *runningSupervisor {
	t.Helper()
	logs := &recordCapture{}
	opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	rs := &runningSupervisor{Supervisor: New(opts), cancel: cancel, returned: make(chan struct{}), logs: logs}
	go func() {
		rs.err = rs.Run(ctx)
		close(rs.returned)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-rs.returned:
		case <-time.After(returnBound):
			t.Errorf("Run did not return within %s of cancellation", returnBound)
		}
		if t.Failed() {
			t.Logf("supervisor log:\n%s", logs.buf.String())
		}
	})
	return rs
}

// waitReturned waits for Run to return and gives its result.
func (rs *runningSupervisor) waitReturned(t *testing.T, bound time.Duration) error {
	t.Helper()
	select {
	case <-rs.returned:
		return rs.err
	case <-time.After(bound):
		t.Fatalf("Run did not return within %s", bound)
		return nil
	}
}

func (rs *runningSupervisor) waitReady(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	if err := rs.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
}

// testOptions returns Options for a real Envoy with one worker in a fresh run directory.
func testOptions(t *testing.T, bootstrap string) Options {
	// Hot restart sockets need a path short enough for sun_path, which a subtest's TempDir
	// may not be.
	sockets, err := os.MkdirTemp("", "p")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockets) })
	return Options{
		EnvoyPath:     envoytest.Binary(t),
		BootstrapPath: bootstrap,
		RunDir:        filepath.Join(t.TempDir(), "run"),
		SocketDir:     sockets,
		Concurrency:   1,
	}
}

// noKeepAlive is a client whose every request opens a fresh connection, so a request never
// lands on a connection to an Envoy that has since died.
var noKeepAlive = &http.Client{
	Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
	Timeout:   5 * time.Second,
}

// get fetches url and returns the body of a 200 response.
func get(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	return string(body), nil
}

// eventually polls cond until it returns nil, failing the test with cond's last error after
// timeout.
func eventually(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// servesDirectBody checks that the listener on port answers with directBody.
func servesDirectBody(port int) func() error {
	return func() error {
		body, err := get(noKeepAlive, fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return err
		}
		if body != directBody {
			return fmt.Errorf("body %q, want %q", body, directBody)
		}
		return nil
	}
}

// exists reports whether pid names a process, zombies included: for a process this test's
// supervisor started, Run reaps it, so it must be gone entirely.
func exists(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// dead reports whether pid is gone or a zombie. An orphan is reaped by whoever adopts it, and
// the init process of a container may never do so: a zombie has nonetheless stopped running.
func dead(pid int) bool {
	if !exists(pid) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, fs.ErrNotExist)
	}
	// The state follows the parenthesised command name, which may itself contain spaces.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}

func readPIDFile(t *testing.T, runDir string) int {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(runDir, pidFile))
	if err != nil {
		t.Fatalf("read pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatalf("pid file holds %q: %v", raw, err)
	}
	return pid
}

func TestServesTrafficAndRecordsState(t *testing.T) {
	t.Parallel()
	port := envoytest.FreePort(t)
	opts := testOptions(t, writeBootstrap(t, t.TempDir(), port, envoytest.FreePort(t)))
	// An admin address left by an earlier run must not be taken for the new Envoy's.
	const stale = "127.0.0.1:1"
	if err := os.MkdirAll(opts.RunDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opts.RunDir, adminAddressFile), []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	rs := startSupervisor(t, opts)
	rs.waitReady(t)

	if err := servesDirectBody(port)(); err != nil {
		t.Fatalf("GET through the listener: %v", err)
	}
	pid := rs.PID()
	if pid == 0 {
		t.Fatal("PID() = 0 while Envoy runs")
	}
	if got := readPIDFile(t, opts.RunDir); got != pid {
		t.Errorf("pid file holds %d, PID() = %d", got, pid)
	}
	addr := rs.AdminAddress()
	if addr == "" || addr == stale {
		t.Fatalf("AdminAddress() = %q, want the new Envoy's", addr)
	}
	if body, err := get(noKeepAlive, "http://"+addr+"/ready"); err != nil || strings.TrimSpace(body) != "LIVE" {
		t.Errorf("GET admin /ready = %q, %v; want LIVE", body, err)
	}
	if rs.Restarts() != 0 {
		t.Errorf("Restarts() = %d, want 0", rs.Restarts())
	}

	t.Run("run directory is private", func(t *testing.T) {
		info, err := os.Stat(opts.RunDir)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o700 {
			t.Errorf("run directory mode %o, want 700", perm)
		}
	})

	t.Run("envoy output reaches envoy.log and the logger", func(t *testing.T) {
		raw, err := os.ReadFile(filepath.Join(opts.RunDir, envoyLogFile))
		if err != nil {
			t.Fatal(err)
		}
		// Every parsed line of the file must have become a record with Envoy's level and logger.
		checked := 0
		for line := range strings.Lines(string(raw)) {
			parsed, ok := parseEnvoyLine(strings.TrimSuffix(line, "\n"))
			if !ok || parsed.level != slog.LevelInfo || checked == 5 {
				continue
			}
			recs := rs.logs.find(t, map[string]any{
				"component": "envoy", "level": "INFO", "logger": parsed.logger, "msg": parsed.msg,
			})
			if len(recs) == 0 {
				t.Errorf("no log record for envoy.log line %q", line)
			}
			checked++
		}
		if checked == 0 {
			t.Fatalf("envoy.log has no info line in Envoy's format:\n%s", raw)
		}
	})
}

func TestRestartsAfterEnvoyIsKilled(t *testing.T) {
	t.Parallel()
	port := envoytest.FreePort(t)
	opts := testOptions(t, writeBootstrap(t, t.TempDir(), port, envoytest.FreePort(t)))
	rs := startSupervisor(t, opts)
	rs.waitReady(t)
	first := rs.PID()

	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatalf("kill envoy: %v", err)
	}
	// The backoff is 200ms and a start takes about a second: 10s is ample.
	eventually(t, 10*time.Second, func() error {
		if pid := rs.PID(); pid == 0 || pid == first {
			return fmt.Errorf("PID() = %d, want a new Envoy (killed %d)", pid, first)
		}
		return servesDirectBody(port)()
	})
	if rs.Restarts() != 1 {
		t.Errorf("Restarts() = %d, want 1", rs.Restarts())
	}
	if got := readPIDFile(t, opts.RunDir); got != rs.PID() {
		t.Errorf("pid file holds %d, PID() = %d", got, rs.PID())
	}
	warns := rs.logs.find(t, map[string]any{
		"level": "WARN", "msg": "envoy exited unexpectedly; restarting", "pid": float64(first),
	})
	if len(warns) != 1 || warns[0]["exit"] != "signal SIGKILL" {
		t.Errorf("want one restart warning naming signal SIGKILL, got %v", warns)
	}
}

// TestCrashCountForgetsHealthyRuns kills Envoy twice with MaxExits 2: that is a crash loop only
// if the Envoy in between never stayed ready for HealthyAfter.
func TestCrashCountForgetsHealthyRuns(t *testing.T) {
	t.Parallel()
	const healthyAfter = 300 * time.Millisecond
	tests := []struct {
		name     string
		healthy  bool // whether each Envoy stays ready for HealthyAfter before it is killed
		wantGone bool // whether Run gives up after the second kill
	}{
		{name: "ready long enough", healthy: true, wantGone: false},
		{name: "killed straight after ready", healthy: false, wantGone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			port := envoytest.FreePort(t)
			opts := testOptions(t, writeBootstrap(t, t.TempDir(), port, envoytest.FreePort(t)))
			opts.MaxExits, opts.HealthyAfter, opts.RestartBackoff = 2, healthyAfter, 10*time.Millisecond
			rs := startSupervisor(t, opts)

			var killed []int
			for range 2 {
				rs.waitReady(t)
				if tt.healthy {
					// Envoy was ready before WaitReady returned: after this long it has been
					// ready for at least HealthyAfter.
					time.Sleep(healthyAfter)
				}
				pid := rs.PID()
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
					t.Fatalf("kill envoy: %v", err)
				}
				killed = append(killed, pid)
				if len(killed) == 1 {
					eventually(t, 10*time.Second, func() error {
						if p := rs.PID(); p == 0 || p == pid {
							return fmt.Errorf("no replacement for killed Envoy %d yet", pid)
						}
						return nil
					})
				}
			}

			if tt.wantGone {
				err := rs.waitReturned(t, returnBound)
				if err == nil || !strings.Contains(err.Error(), "exited 2 times") ||
					!strings.Contains(err.Error(), "signal SIGKILL") {
					t.Fatalf("Run = %v, want it to give up naming SIGKILL", err)
				}
				return
			}
			eventually(t, 10*time.Second, func() error {
				if p := rs.PID(); p == 0 || slices.Contains(killed, p) {
					return fmt.Errorf("no replacement for killed Envoys %v yet", killed)
				}
				return servesDirectBody(port)()
			})
			if rs.Restarts() != 2 {
				t.Errorf("Restarts() = %d, want 2", rs.Restarts())
			}
			select {
			case <-rs.returned:
				t.Fatalf("Run gave up after exits of healthy Envoys: %v", rs.err)
			default:
			}
		})
	}
}

func TestCancelStopsEnvoy(t *testing.T) {
	t.Parallel()
	port := envoytest.FreePort(t)
	opts := testOptions(t, writeBootstrap(t, t.TempDir(), port, envoytest.FreePort(t)))
	rs := startSupervisor(t, opts)
	rs.waitReady(t)
	pid := rs.PID()

	rs.cancel()
	if err := rs.waitReturned(t, returnBound); err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	if exists(pid) {
		t.Errorf("envoy %d still exists after Run returned", pid)
	}
	if _, err := os.Stat(filepath.Join(opts.RunDir, pidFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("pid file after stop: %v, want it removed", err)
	}
	if rs.PID() != 0 {
		t.Errorf("PID() after stop = %d, want 0", rs.PID())
	}
	if len(rs.logs.find(t, map[string]any{"msg": "envoy drained", "pid": float64(pid)})) != 1 {
		t.Error("an idle Envoy was not drained before it was stopped")
	}
}

func TestGivesUpWhenEnvoyKeepsFailing(t *testing.T) {
	t.Parallel()
	bootstrap := filepath.Join(t.TempDir(), "bootstrap.yaml")
	if err := os.WriteFile(bootstrap, []byte("admin: [\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t, bootstrap)
	opts.RestartBackoff, opts.MaxRestartBackoff, opts.MaxExits = 10*time.Millisecond, 40*time.Millisecond, 3
	rs := startSupervisor(t, opts)

	err := rs.waitReturned(t, returnBound)
	if err == nil {
		t.Fatal("Run = nil for a bootstrap Envoy cannot load, want an error")
	}
	// Envoy's own explanation is its critical line; the error must carry it.
	raw, readErr := os.ReadFile(filepath.Join(opts.RunDir, envoyLogFile))
	if readErr != nil {
		t.Fatal(readErr)
	}
	var reason string
	for line := range strings.Lines(string(raw)) {
		if parsed, ok := parseEnvoyLine(strings.TrimSuffix(line, "\n")); ok && parsed.level == levelCritical {
			reason = strings.TrimSuffix(line, "\n")
		}
	}
	if reason == "" {
		t.Fatalf("envoy.log has no critical line:\n%s", raw)
	}
	for _, want := range []string{"exited 3 times", "exit code 1", reason} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Run error does not contain %q:\n%v", want, err)
		}
	}
	if rs.Restarts() != 2 {
		t.Errorf("Restarts() = %d, want 2", rs.Restarts())
	}
	if err := rs.WaitReady(context.Background()); err == nil || !strings.Contains(err.Error(), "exited 3 times") {
		t.Errorf("WaitReady after giving up = %v, want Run's error", err)
	}
}

// TestKillsEnvoyThatNeverStarts runs a stand-in for Envoy that never writes an admin address
// and leaves a child of its own behind: the supervisor must kill the whole process group.
func TestKillsEnvoyThatNeverStarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	childPIDFile := filepath.Join(dir, "child.pid")
	script := filepath.Join(dir, "fake-envoy")
	body := fmt.Sprintf("#!/bin/sh\nsleep 60 &\necho $! > %q\nwait\n", childPIDFile)
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	opts := Options{
		EnvoyPath: script, BootstrapPath: filepath.Join(dir, "unused.yaml"), RunDir: filepath.Join(dir, "run"),
		StartTimeout: 300 * time.Millisecond, RestartBackoff: 10 * time.Millisecond, MaxExits: 2,
	}
	rs := startSupervisor(t, opts)

	err := rs.waitReturned(t, returnBound)
	if err == nil || !strings.Contains(err.Error(), "signal SIGKILL (killed by the supervisor: envoy did not write its admin address") {
		t.Fatalf("Run = %v, want the start timeout named", err)
	}
	raw, readErr := os.ReadFile(childPIDFile)
	if readErr != nil {
		t.Fatal(readErr)
	}
	child, convErr := strconv.Atoi(strings.TrimSpace(string(raw)))
	if convErr != nil {
		t.Fatal(convErr)
	}
	eventually(t, 5*time.Second, func() error {
		if !dead(child) {
			return fmt.Errorf("child %d of the killed process is still running", child)
		}
		return nil
	})
}

func TestDrainOnStop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		hold         time.Duration // how long the backend holds the response
		drainTimeout time.Duration
		wantServed   bool
		// Run must return within returnWithin of cancellation, and not before returnAfter.
		returnAfter, returnWithin time.Duration
	}{
		{
			name: "in-flight request completes", hold: 1500 * time.Millisecond, drainTimeout: 30 * time.Second,
			wantServed: true,
			// Far below the drain timeout: the drain ends when the last connection closes.
			returnAfter: 0, returnWithin: 10 * time.Second,
		},
		{
			name: "drain timeout bounds the wait", hold: time.Minute, drainTimeout: time.Second,
			wantServed:  false,
			returnAfter: time.Second, returnWithin: 6 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			arrived := make(chan struct{}, 1)
			backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				select {
				case <-time.After(tt.hold):
					io.WriteString(w, "slow done")
				case <-r.Context().Done():
				}
			}))
			t.Cleanup(backend.Close)
			backendURL, err := url.Parse(backend.URL)
			if err != nil {
				t.Fatal(err)
			}
			backendPort, err := strconv.Atoi(backendURL.Port())
			if err != nil {
				t.Fatal(err)
			}
			port := envoytest.FreePort(t)
			opts := testOptions(t, writeBootstrap(t, t.TempDir(), port, backendPort))
			opts.DrainTimeout = tt.drainTimeout
			rs := startSupervisor(t, opts)
			rs.waitReady(t)

			type result struct {
				body string
				err  error
				at   time.Time
			}
			// A keep-alive client: the connection closes only because draining Envoy says so.
			client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 2 * time.Minute}
			t.Cleanup(client.CloseIdleConnections)
			done := make(chan result, 1)
			go func() {
				body, err := get(client, fmt.Sprintf("http://127.0.0.1:%d/slow", port))
				done <- result{body, err, time.Now()}
			}()
			select {
			case <-arrived:
			case <-time.After(10 * time.Second):
				t.Fatal("request did not reach the backend within 10s")
			}

			cancelled := time.Now()
			rs.cancel()
			if err := rs.waitReturned(t, returnBound); err != nil {
				t.Fatalf("Run = %v, want nil", err)
			}
			returned := time.Now()
			res := <-done

			if took := returned.Sub(cancelled); took < tt.returnAfter || took > tt.returnWithin {
				t.Errorf("Run returned %s after cancellation, want between %s and %s", took, tt.returnAfter, tt.returnWithin)
			}
			if tt.wantServed {
				if res.err != nil || res.body != "slow done" {
					t.Fatalf("in-flight request = %q, %v; want 200 slow done", res.body, res.err)
				}
				if res.at.After(returned) {
					t.Errorf("Run returned %s before the in-flight request completed", res.at.Sub(returned))
				}
			} else if res.err == nil {
				t.Errorf("request held past the drain timeout succeeded with %q; want it cut off", res.body)
			}
		})
	}
}

// orphanHelperEnv switches the test binary into TestOrphanHelperProcess's supervisor process.
const orphanHelperEnv = "PORTICO_SUPERVISOR_ORPHAN_HELPER"

// TestOrphanHelperProcess is not a test: TestEnvoyDiesWithSupervisor runs the test binary as a
// separate process that executes it, so that it can kill a whole supervising process.
func TestOrphanHelperProcess(t *testing.T) {
	if os.Getenv(orphanHelperEnv) != "1" {
		t.Skip("runs only as TestEnvoyDiesWithSupervisor's helper process")
	}
	s := New(Options{
		EnvoyPath:     os.Getenv(orphanHelperEnv + "_ENVOY"),
		BootstrapPath: os.Getenv(orphanHelperEnv + "_BOOTSTRAP"),
		RunDir:        os.Getenv(orphanHelperEnv + "_RUNDIR"),
		Concurrency:   1,
	})
	// The parent kills this process long before the timeout, which only keeps a helper whose
	// parent died from running forever.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		if err := s.WaitReady(ctx); err == nil {
			fmt.Printf("envoy-pid=%d\n", s.PID())
		}
	}()
	if err := s.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestEnvoyDiesWithSupervisor(t *testing.T) {
	t.Parallel()
	envoy := envoytest.Binary(t)
	dir := t.TempDir()
	port := envoytest.FreePort(t)
	helper := exec.Command(os.Args[0], "-test.run=^TestOrphanHelperProcess$")
	helper.Env = append(os.Environ(),
		orphanHelperEnv+"=1",
		orphanHelperEnv+"_ENVOY="+envoy,
		orphanHelperEnv+"_BOOTSTRAP="+writeBootstrap(t, dir, port, envoytest.FreePort(t)),
		orphanHelperEnv+"_RUNDIR="+filepath.Join(dir, "run"),
	)
	var helperErr bytes.Buffer
	helper.Stderr = &helperErr
	stdout, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		helper.Process.Kill()
		helper.Wait()
	})

	pids := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "envoy-pid="); ok {
				if pid, err := strconv.Atoi(v); err == nil {
					pids <- pid
				}
			}
		}
	}()
	var pid int
	select {
	case pid = <-pids:
	case <-time.After(30 * time.Second):
		t.Fatalf("helper did not report a ready Envoy within 30s; stderr:\n%s", helperErr.String())
	}
	// Whatever happens below, this test must not be the one leaving Envoy behind.
	t.Cleanup(func() {
		if !dead(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		t.Fatalf("reported pid %d: %v", pid, err)
	}
	if want, _ := filepath.EvalSymlinks(envoy); exe != want {
		t.Fatalf("pid %d runs %s, want %s", pid, exe, want)
	}
	if err := servesDirectBody(port)(); err != nil {
		t.Fatalf("helper's Envoy does not serve: %v", err)
	}

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	helper.Wait()
	eventually(t, 5*time.Second, func() error {
		if !dead(pid) {
			return fmt.Errorf("envoy %d still runs after its supervisor was killed", pid)
		}
		return nil
	})
}

func TestRunRejectsWhatCannotWork(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{
			name: "missing fields",
			opts: Options{Concurrency: -1},
			want: "envoy path is empty\nbootstrap path is empty\nrun directory is empty\nconcurrency -1 is negative",
		},
		{
			name: "binary does not exist",
			opts: Options{EnvoyPath: filepath.Join(dir, "no-envoy"), BootstrapPath: "b.yaml", RunDir: filepath.Join(dir, "run")},
			want: "start envoy " + filepath.Join(dir, "no-envoy") + ":",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.opts)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := s.Run(ctx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.want)
			}
			if err := s.Run(ctx); err == nil || !strings.Contains(err.Error(), "more than once") {
				t.Errorf("second Run = %v, want it refused", err)
			}
		})
	}
}
