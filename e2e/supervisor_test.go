package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portico-gw/portico/controller"
	"github.com/portico-gw/portico/internal/envoytest"
	"github.com/portico-gw/portico/internal/syncbuf"
)

// slowBackend answers every request after holding it for hold, and reports each arrival.
func slowBackend(t *testing.T, hold time.Duration) (port int, arrived <-chan struct{}) {
	t.Helper()
	ch := make(chan struct{}, 16)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ch <- struct{}{}
		select {
		case <-time.After(hold):
			io.WriteString(w, "slow done")
		case <-r.Context().Done():
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port, ch
}

// slowConfig routes everything to an Upstream "slow" on backendPort.
func slowConfig(port, backendPort int) string {
	return gatewayYAML(port) + fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: slow}
spec:
  routes:
  - match: {prefix: /}
    upstream: slow
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: slow}
spec:
  static:
    hosts: [{address: 127.0.0.1, port: %d}]
`, backendPort)
}

type response struct {
	code int
	body string
	err  error
	at   time.Time
}

// getAsync sends GET url on a fresh connection and delivers the outcome.
func getAsync(url string) <-chan response {
	out := make(chan response, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: time.Minute}
		resp, err := c.Get(url)
		if err != nil {
			out <- response{err: err, at: time.Now()}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		out <- response{code: resp.StatusCode, body: string(body), err: err, at: time.Now()}
	}()
	return out
}

func waitArrival(t *testing.T, arrived <-chan struct{}) {
	t.Helper()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request did not reach the backend within 10s")
	}
}

func (p *portico) waitExit(bound time.Duration) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(bound):
		p.t.Fatalf("portico did not exit within %s", bound)
	}
}

// TestSlowRequestSurvivesSigterm: after SIGTERM, a request already in flight completes with 200,
// while new connections are refused at once.
func TestSlowRequestSurvivesSigterm(t *testing.T) {
	backendPort, arrived := slowBackend(t, 2*time.Second)
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, slowConfig(port, backendPort))
	p := startReady(t, cfg, "--drain-timeout", "10s")
	pid := p.envoyPID()
	url := fmt.Sprintf("http://127.0.0.1:%d/slow", port)

	inFlight := getAsync(url)
	waitArrival(t, arrived)
	signalled := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var refusedAt time.Time
	eventually(t, 2*time.Second, "new connections are refused", func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return errors.New("a new connection was accepted")
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		refusedAt = time.Now()
		return nil
	})
	res := <-inFlight
	if res.err != nil || res.code != 200 || res.body != "slow done" {
		t.Fatalf("in-flight request = %d %q %v; want 200 slow done", res.code, res.body, res.err)
	}
	if !refusedAt.Before(res.at) {
		t.Errorf("new connections were refused only %s after the in-flight request completed", refusedAt.Sub(res.at))
	}
	if held := res.at.Sub(signalled); held < time.Second {
		t.Errorf("in-flight request completed %s after SIGTERM; the backend holds 2s", held)
	}
	p.waitExit(15 * time.Second)
	if p.exitErr != nil {
		t.Errorf("portico exited with %v, want 0", p.exitErr)
	}
	if !processGone(pid) {
		t.Errorf("envoy %d still runs after portico exited", pid)
	}
}

// TestSecondSignalStopsAtOnce: a second SIGTERM during the drain kills Envoy without waiting for
// a request that would hold the drain for its whole timeout.
func TestSecondSignalStopsAtOnce(t *testing.T) {
	backendPort, arrived := slowBackend(t, time.Minute)
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, slowConfig(port, backendPort))
	p := startReady(t, cfg, "--drain-timeout", "60s")
	pid := p.envoyPID()

	inFlight := getAsync(fmt.Sprintf("http://127.0.0.1:%d/", port))
	waitArrival(t, arrived)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "portico says it drains", func() error {
		if !strings.Contains(p.stderr.String(), "stopping: draining envoy") {
			return errors.New("no drain message yet")
		}
		return nil
	})
	second := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitExit(10 * time.Second)
	if took := time.Since(second); took > 5*time.Second {
		t.Errorf("portico took %s to exit after the second signal", took)
	}
	var ee *exec.ExitError
	if !errors.As(p.exitErr, &ee) || ee.ExitCode() != 1 {
		t.Errorf("portico exit = %v, want exit status 1", p.exitErr)
	}
	if !strings.Contains(p.stderr.String(), "error: stopped at once by a second signal") {
		t.Errorf("stderr lacks the forced-stop error:\n%s", p.stderr)
	}
	if !processGone(pid) {
		t.Errorf("envoy %d survived the forced stop", pid)
	}
	if res := <-inFlight; res.err == nil && res.code == 200 {
		t.Errorf("the held request succeeded (%q) although envoy was killed", res.body)
	}
}

// TestSigkillOfPorticoLeavesNoEnvoy: however portico dies, its Envoy dies with it.
func TestSigkillOfPorticoLeavesNoEnvoy(t *testing.T) {
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+directVS("alive"))
	p := startReady(t, cfg)
	expectBody(t, "", fmt.Sprintf("http://127.0.0.1:%d/", port), 200, "alive")
	pid := p.envoyPID()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.waitExit(5 * time.Second)
	eventually(t, 5*time.Second, "envoy is gone", func() error {
		if !processGone(pid) {
			return fmt.Errorf("envoy %d still runs after portico was killed", pid)
		}
		return nil
	})
}

func directVS(body string) string {
	return fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: direct}
spec:
  routes:
  - match: {prefix: /}
    directResponse: {status: 200, body: %q}
`, body)
}

// TestGivesUpOnCrashLoop: an Envoy that exits at every start makes portico exit non-zero with
// the reason, after its restarts.
func TestGivesUpOnCrashLoop(t *testing.T) {
	dir := t.TempDir()
	wrapper := filepath.Join(dir, "envoy")
	// It answers --version as Envoy does, so it is accepted, and fails on every real start.
	script := fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = --version ]; then exec %q --version; fi\nexec %q \"$@\" --no-such-flag\n",
		envoytest.Binary(t), envoytest.Binary(t))
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, gatewayYAML(envoytest.FreePort(t))+directVS("never"))
	p := start(t, dir, nil, "-c", cfg, "--envoy-path", wrapper)
	p.waitExit(60 * time.Second)
	var ee *exec.ExitError
	if !errors.As(p.exitErr, &ee) || ee.ExitCode() == 0 {
		t.Fatalf("portico exit = %v, want non-zero", p.exitErr)
	}
	for _, want := range []string{"error: envoy exited 5 times within 1m0s, giving up", "last exit: exit code 1", "no-such-flag"} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, p.stderr)
		}
	}
	if strings.Contains(p.stdout.String(), "gateway ready") {
		t.Error("portico printed a ready line for an Envoy that never started")
	}
}

// TestPortInUse: a Gateway port another process holds fails the start, naming port and Gateway.
func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+directVS("never"))
	p := start(t, filepath.Dir(cfg), nil, "-c", cfg, "--envoy-path", envoytest.Binary(t))
	p.waitExit(30 * time.Second)
	if p.exitErr == nil {
		t.Fatal("portico started on a port already in use")
	}
	for _, want := range []string{
		"error: " + cfg + ":4:",
		fmt.Sprintf(`gateway "web": port %d on 127.0.0.1 is already in use by another process`, port),
	} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, p.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(p.stateDir, "run", "envoy.pid")); err == nil {
		t.Error("envoy was started although the port check failed")
	}
}

// load sends requests to url from three clients without a pause until wait is called or
// the bound d has passed, counting those not answered 200 with body.
type load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	wg         sync.WaitGroup
}

func startLoad(t *testing.T, url, body string, d time.Duration) *load {
	t.Helper()
	kc := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	t.Cleanup(kc.CloseIdleConnections)
	l := &load{}
	deadline := time.Now().Add(d)
	for range 3 {
		l.wg.Go(func() {
			for time.Now().Before(deadline) {
				resp, err := kc.Get(url)
				if err == nil {
					got, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					if rerr == nil && resp.StatusCode == 200 && string(got) == body {
						l.ok.Add(1)
						continue
					}
					err = fmt.Errorf("%d %q %v", resp.StatusCode, got, rerr)
				}
				l.failed.Add(1)
				l.firstErr.CompareAndSwap(nil, err.Error())
			}
		})
	}
	return l
}

// check waits for the load to end and fails t if any request failed or too few were sent to
// cover what happened meanwhile.
func (l *load) check(t *testing.T, during string) {
	t.Helper()
	l.wg.Wait()
	if l.failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during %s; first: %v", l.failed.Load(), l.failed.Load()+l.ok.Load(), during, l.firstErr.Load())
	}
	if l.ok.Load() < 100 {
		t.Errorf("only %d requests succeeded: the load did not cover %s", l.ok.Load(), during)
	}
}

// TestHotRestartUnderLoad: SIGUSR1 replaces Envoy by hot restart while requests flow without
// a pause; none fails, and a new process serves.
func TestHotRestartUnderLoad(t *testing.T) {
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+directVS("steady"))
	p := startReady(t, cfg, "--drain-timeout", "1s")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	expectBody(t, "", url, 200, "steady")
	before := p.envoyPID()

	l := startLoad(t, url, "steady", 3*time.Second) // bounded load
	time.Sleep(300 * time.Millisecond)              // let the load run before the restart
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	l.check(t, "the hot restart")

	p.waitHotRestart(before)
	expectBody(t, "", url, 200, "steady")
}

// waitHotRestart waits until a hot restart has replaced the Envoy with pid before, and until
// that Envoy has exited.
func (p *portico) waitHotRestart(before int) {
	t := p.t
	t.Helper()
	eventually(t, 10*time.Second, "the hot restart completes", func() error {
		if !strings.Contains(p.stderr.String(), "hot restart done") {
			return errors.New("no hot restart message yet")
		}
		return nil
	})
	if after := p.envoyPID(); after == before {
		t.Errorf("envoy pid is still %d after the hot restart", before)
	}
	eventually(t, 10*time.Second, "the previous epoch exits", func() error {
		if !processGone(before) {
			return fmt.Errorf("envoy %d still runs", before)
		}
		return nil
	})
}

// envoyArg returns the value after flag on the command line of process pid.
func envoyArg(t *testing.T, pid int, flag string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatalf("read envoy's command line: %v", err)
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatalf("envoy %d runs without %s: %q", pid, flag, args)
	return ""
}

func proxyYAML(concurrency int, logLevel string) string {
	return fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: Proxy
metadata: {name: envoy}
spec: {concurrency: %d, logLevel: %s, drainTimeout: 1s}
`, concurrency, logLevel)
}

// TestProxySettingsHotRestart: the Proxy document overrides the flags at start, and changing
// its concurrency in the file under continuous load replaces Envoy by hot restart with the new
// --concurrency, failing no request. A change that leaves the settings alone restarts nothing.
func TestProxySettingsHotRestart(t *testing.T) {
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+directVS("steady")+proxyYAML(1, "info"))
	// The flags say warning; the document's info wins.
	p := startReady(t, cfg, "--envoy-log-level", "warning")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	expectBody(t, "", url, 200, "steady")
	before := p.envoyPID()
	if got := envoyArg(t, before, "-l"); got != "info" {
		t.Errorf("envoy started with -l %s, want the Proxy document's info over the flag's warning", got)
	}
	if got := envoyArg(t, before, "--concurrency"); got != "1" {
		t.Fatalf("envoy started with --concurrency %s, want 1", got)
	}

	// A change elsewhere in the file applies without a new Envoy.
	writeFile(t, cfg, gatewayYAML(port)+directVS("steady ")+proxyYAML(1, "info"))
	expectBody(t, "", url, 200, "steady ")
	if strings.Contains(p.stderr.String(), "hot restarting envoy") || p.envoyPID() != before {
		t.Fatal("a configuration change with the same Proxy settings restarted envoy")
	}
	writeFile(t, cfg, gatewayYAML(port)+directVS("steady")+proxyYAML(1, "info"))
	expectBody(t, "", url, 200, "steady")

	l := startLoad(t, url, "steady", 3*time.Second) // bounded load
	time.Sleep(300 * time.Millisecond)              // let the load run before the change
	writeFile(t, cfg, gatewayYAML(port)+directVS("steady")+proxyYAML(2, "info"))
	l.check(t, "the hot restart for concurrency 2")

	p.waitHotRestart(before)
	after := p.envoyPID()
	if got := envoyArg(t, after, "--concurrency"); got != "2" {
		t.Errorf("the new envoy runs with --concurrency %s, want 2", got)
	}
	if !strings.Contains(p.stderr.String(), "concurrency=\"1 -> 2\"") {
		t.Errorf("the log does not say which setting changed:\n%s", p.stderr)
	}
	expectBody(t, "", url, 200, "steady")
}

// TestNewGatewayPortInUse: a reload adding a Gateway on a port another process holds is
// rejected as a whole, naming the port, the Gateway and its line; the running Gateway keeps
// serving, and once the port is free the same change applies.
func TestNewGatewayPortInUse(t *testing.T) {
	port := envoytest.FreePort(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() })
	takenPort := taken.Addr().(*net.TCPAddr).Port
	adminAddr := fmt.Sprintf("127.0.0.1:%d", envoytest.FreePort(t))

	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+directVS("steady"))
	p := startReady(t, cfg, "--admin-address", adminAddr)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	expectBody(t, "", url, 200, "steady")

	second := fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: second}
spec: {bindAddress: 127.0.0.1, bindPort: %d}
`, takenPort)
	change := gatewayYAML(port) + directVS("changed") + second
	writeFile(t, cfg, change)
	wants := []string{
		fmt.Sprintf("at=%s:17:42 ", cfg),
		fmt.Sprintf(`Gateway \"second\" spec.bindPort: port %d on 127.0.0.1 is already in use by another process`, takenPort),
	}
	eventually(t, 15*time.Second, "the reload is rejected, naming the port", func() error {
		for _, want := range wants {
			if !strings.Contains(p.stderr.String(), want) {
				return fmt.Errorf("no log line with %q", want)
			}
		}
		return nil
	})
	var st controller.Status
	code, body, err := get("", "http://"+adminAddr+"/status")
	if err != nil || code != 200 {
		t.Fatalf("GET /status = %d, %v", code, err)
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if st.LastReload == nil || st.LastReload.Result != controller.ResultInvalid {
		t.Errorf("last reload = %+v, want %s", st.LastReload, controller.ResultInvalid)
	}
	found := false
	for _, r := range st.Resources {
		if r.Kind == "Gateway" && r.Name == "second" {
			found = true
			if r.State != controller.StateRejected || len(r.Reasons) == 0 || !strings.Contains(r.Reasons[0], strconv.Itoa(takenPort)) {
				t.Errorf("gateway second status = %+v, want rejected naming port %d", r, takenPort)
			}
		}
	}
	if !found {
		t.Errorf("no status for gateway second: %+v", st.Resources)
	}
	// Nothing of the change applied: the old body is still served.
	if code, got, err := get("", url); err != nil || code != 200 || got != "steady" {
		t.Errorf("GET %s = %d %q %v; want the previous configuration's 200 \"steady\"", url, code, got, err)
	}

	taken.Close()
	writeFile(t, cfg, change+"# saved again\n")
	expectBody(t, "", url, 200, "changed")
	expectBody(t, "", fmt.Sprintf("http://127.0.0.1:%d/", takenPort), 200, "changed")
}

// TestStaleEnvoyIsKilled leaves an Envoy behind in a state directory, with its pid file and
// holding the gateway port, as a crashed run would; the next portico kills it and serves.
func TestStaleEnvoyIsKilled(t *testing.T) {
	stateDir := filepath.Join(t.TempDir(), "state")
	runDir := filepath.Join(stateDir, "run")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		t.Fatal(err)
	}
	port := envoytest.FreePort(t)
	bootstrap := filepath.Join(runDir, "bootstrap.yaml")
	if err := os.WriteFile(bootstrap, []byte(staleBootstrap(port)), 0o600); err != nil {
		t.Fatal(err)
	}
	stale := exec.Command(envoytest.Binary(t), "-c", bootstrap, "--concurrency", "1", "--disable-hot-restart", "-l", "error")
	stale.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := stale.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { stale.Wait(); close(reaped) }()
	t.Cleanup(func() { stale.Process.Kill(); <-reaped })
	expectBody(t, "", fmt.Sprintf("http://127.0.0.1:%d/", port), 200, "stale")
	if err := os.WriteFile(filepath.Join(runDir, "envoy.pid"), []byte(strconv.Itoa(stale.Process.Pid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+directVS("fresh"))
	p := start(t, filepath.Dir(cfg), nil, "-c", cfg, "--envoy-path", envoytest.Binary(t), "--state-dir", stateDir)
	p.stateDir = stateDir
	p.waitReady()
	select {
	case <-reaped:
	case <-time.After(5 * time.Second):
		t.Fatalf("the stale envoy %d still runs", stale.Process.Pid)
	}
	expectBody(t, "", fmt.Sprintf("http://127.0.0.1:%d/", port), 200, "fresh")
	if !strings.Contains(p.stderr.String(), "killing an envoy left behind by an earlier run") {
		t.Errorf("no warning about the stale envoy:\n%s", p.stderr)
	}
}

func staleBootstrap(port int) string {
	return fmt.Sprintf(`admin:
  address:
    socket_address: { address: 127.0.0.1, port_value: 0 }
static_resources:
  listeners:
  - name: stale
    address:
      socket_address: { address: 127.0.0.1, port_value: %d }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: stale
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                direct_response: { status: 200, body: { inline_string: "stale" } }
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
`, port)
}

// TestRunLogsKept: every run gets a log directory in the state directory, and envoy.log in the
// run directory is the current run's.
func TestRunLogsKept(t *testing.T) {
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+directVS("logged"))
	p := startReady(t, cfg, "--envoy-log-level", "info")
	runs, err := os.ReadDir(filepath.Join(p.stateDir, "runs"))
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs directory: %v, %d entries; want one", err, len(runs))
	}
	raw, err := os.ReadFile(filepath.Join(p.stateDir, "run", "envoy.log"))
	if err != nil || !strings.Contains(string(raw), "[info][main]") {
		t.Errorf("envoy.log = %d bytes, %v; want Envoy's info lines", len(raw), err)
	}
}

// porticoCmd runs a portico command to completion with env added.
func porticoCmd(t *testing.T, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(porticoBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut syncbuf.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// isolatedEnv gives portico an empty home and data directory, no envoy on PATH, and srv as the
// versions URL.
func isolatedEnv(t *testing.T, versionsURL string) (env []string, dataHome string) {
	home := t.TempDir()
	dataHome = filepath.Join(home, "data")
	return []string{
		"HOME=" + home, "XDG_DATA_HOME=" + dataHome, "PATH=/usr/bin:/bin",
		"PORTICO_ENVOY_PATH=", "PORTICO_OFFLINE=", "PORTICO_ENVOY_VERSIONS_URL=" + versionsURL,
	}, dataHome
}

// TestEnvoyCommands installs Envoy from two portico processes at once, then lists, shows the
// available versions and which binary run would use.
func TestEnvoyCommands(t *testing.T) {
	archive, sum := envoytest.ReleaseArchive(t)
	srv := envoytest.NewReleaseServer(t, archive, sum)
	env, dataHome := isolatedEnv(t, srv.VersionsURL())
	installed := filepath.Join(dataHome, "portico", "envoy-versions", envoytest.Version, "bin", "envoy")

	out, _, err := porticoCmd(t, env, "envoy", "which")
	if err != nil || out != installed+"\tenvoy "+envoytest.Version+", not installed yet: run downloads it to this path\n" {
		t.Errorf("which before install = %q, %v", out, err)
	}

	type result struct {
		stdout, stderr string
		err            error
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			o, e, err := porticoCmd(t, env, "envoy", "install")
			results <- result{o, e, err}
		}()
	}
	var outputs []string
	for range 2 {
		r := <-results
		if r.err != nil {
			t.Fatalf("envoy install: %v\n%s", r.err, r.stderr)
		}
		outputs = append(outputs, r.stdout)
	}
	joined := strings.Join(outputs, "")
	for _, want := range []string{
		"envoy " + envoytest.Version + " downloaded and installed: " + installed + "\n",
		"envoy " + envoytest.Version + " already installed: " + installed + "\n",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("install outputs lack %q: %q", want, outputs)
		}
	}
	if n := srv.ArchiveRequests.Load(); n != 1 {
		t.Errorf("two concurrent installs downloaded the archive %d times, want 1", n)
	}
	if v, err := exec.Command(installed, "--version").CombinedOutput(); err != nil || !strings.Contains(string(v), "/"+envoytest.Version+"/") {
		t.Errorf("installed envoy --version: %v %s", err, v)
	}

	t.Run("list", func(t *testing.T) {
		out, _, err := porticoCmd(t, env, "envoy", "list")
		if err != nil || !strings.HasPrefix(out, envoytest.Version+"  "+installed+"  ok\n") {
			t.Errorf("list = %q, %v", out, err)
		}
	})
	t.Run("versions", func(t *testing.T) {
		out, _, err := porticoCmd(t, env, "envoy", "versions")
		if err != nil || !strings.Contains(out, envoytest.Version+"  2026-01-13  latest, default, installed\n") {
			t.Errorf("versions = %q, %v", out, err)
		}
		_, errOut, err := porticoCmd(t, env, "envoy", "versions", "--offline")
		if err == nil || !strings.Contains(errOut, "offline") {
			t.Errorf("versions --offline = %v, %q; want a refusal naming offline", err, errOut)
		}
	})
	t.Run("which", func(t *testing.T) {
		out, _, err := porticoCmd(t, env, "envoy", "which")
		if err != nil || out != installed+"\tenvoy "+envoytest.Version+", from the cache\n" {
			t.Errorf("which = %q, %v", out, err)
		}
	})
}

// TestRunOffline: offline, portico neither downloads nor waits on the network, and says why it
// found no Envoy; with one on PATH it runs that.
func TestRunOffline(t *testing.T) {
	archive, sum := envoytest.ReleaseArchive(t)
	srv := envoytest.NewReleaseServer(t, archive, sum)
	env, _ := isolatedEnv(t, srv.VersionsURL())
	env = append(env, "PORTICO_OFFLINE=1")
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(envoytest.FreePort(t))+directVS("offline"))
	p := start(t, filepath.Dir(cfg), env, "-c", cfg)
	p.waitExit(30 * time.Second)
	if p.exitErr == nil {
		t.Fatal("portico ran offline with no envoy in the cache or on PATH")
	}
	for _, want := range []string{"offline: no download was tried", "download: skipped, offline", "PATH: no envoy found"} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, p.stderr)
		}
	}
	if n := srv.VersionRequests.Load() + srv.ArchiveRequests.Load(); n != 0 {
		t.Errorf("offline portico made %d requests to the versions URL", n)
	}

	binDir := t.TempDir()
	if err := os.Symlink(envoytest.Binary(t), filepath.Join(binDir, "envoy")); err != nil {
		t.Fatal(err)
	}
	port := envoytest.FreePort(t)
	writeFile(t, cfg, gatewayYAML(port)+directVS("offline"))
	p = start(t, filepath.Dir(cfg), append(env, "PATH="+binDir+":/usr/bin:/bin"), "-c", cfg)
	p.waitReady()
	expectBody(t, "", fmt.Sprintf("http://127.0.0.1:%d/", port), 200, "offline")
	if n := srv.VersionRequests.Load() + srv.ArchiveRequests.Load(); n != 0 {
		t.Errorf("offline portico made %d requests to the versions URL", n)
	}
}
