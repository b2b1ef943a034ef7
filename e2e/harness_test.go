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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
	"github.com/portico-gw/portico/internal/syncbuf"
)

// porticoBin is the binary under test, built once by TestMain.
var porticoBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "portico-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	porticoBin = filepath.Join(dir, "portico")
	build := exec.Command("go", "build", "-o", porticoBin, "../cmd/portico")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build portico:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// portico is one running portico process.
type portico struct {
	t        *testing.T
	cmd      *exec.Cmd
	stateDir string
	stdout   *syncbuf.Buffer
	stderr   *syncbuf.Buffer
	done     chan struct{}
	exitErr  error
}

// start runs portico with args plus a private state dir and the test Envoy, without waiting.
func start(t *testing.T, dir string, env []string, args ...string) *portico {
	t.Helper()
	p := &portico{t: t, stateDir: filepath.Join(t.TempDir(), "state"), stdout: &syncbuf.Buffer{}, stderr: &syncbuf.Buffer{}, done: make(chan struct{})}
	full := append([]string{"run", "--state-dir", p.stateDir, "--concurrency", "1", "--log-level", "debug"}, args...)
	p.cmd = exec.Command(porticoBin, full...)
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start portico: %v", err)
	}
	go func() {
		p.exitErr = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("portico stdout:\n%s\nportico stderr:\n%s", p.stdout, p.stderr)
		}
	})
	return p
}

// startReady runs portico with config file cfg and the test Envoy and waits for the ready line.
func startReady(t *testing.T, cfg string, extra ...string) *portico {
	t.Helper()
	args := append([]string{"-c", cfg, "--envoy-path", envoytest.Binary(t)}, extra...)
	p := start(t, filepath.Dir(cfg), nil, args...)
	p.waitReady()
	return p
}

func (p *portico) waitReady() {
	p.t.Helper()
	eventually(p.t, 60*time.Second, "portico prints its ready line", func() error {
		select {
		case <-p.done:
			p.t.Fatalf("portico exited before ready: %v\nstderr:\n%s", p.exitErr, p.stderr)
		default:
		}
		if !strings.Contains(p.stdout.String(), "portico: gateway ready on ") {
			return fmt.Errorf("no ready line yet")
		}
		return nil
	})
}

// stop sends SIGTERM and waits for portico to exit; a second call is a no-op.
func (p *portico) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("portico did not exit within 30s of SIGTERM")
	}
}

// envoyPID reads the pid of the running Envoy from portico's run directory.
func (p *portico) envoyPID() int {
	p.t.Helper()
	b, err := os.ReadFile(filepath.Join(p.stateDir, "run", "envoy.pid"))
	if err != nil {
		p.t.Fatalf("read envoy pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		p.t.Fatalf("parse envoy pid %q: %v", b, err)
	}
	return pid
}

// eventually polls check until it returns nil or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for {
		if err = check(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// backend is a Go HTTP server on loopback that answers with its name and the request path.
type backend struct {
	name string
	addr *net.TCPAddr
}

func newBackend(t *testing.T, name string) *backend {
	t.Helper()
	return namedBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	})
}

// upstreamYAML declares an Upstream named after the backend.
func (b *backend) upstreamYAML() string {
	return fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: %s}
spec:
  static:
    hosts: [{address: 127.0.0.1, port: %d}]
`, b.name, b.addr.Port)
}

// gatewayYAML declares a Gateway on 127.0.0.1:port.
func gatewayYAML(port int) string {
	return fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: web}
spec: {bindAddress: 127.0.0.1, bindPort: %d}
`, port)
}

var client = &http.Client{Timeout: 5 * time.Second}

// get sends GET url with an optional Host header and returns status and body.
func get(host, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// expectBody polls until GET url (with Host host) answers status with exactly body.
func expectBody(t *testing.T, host, url string, status int, body string) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("GET %s (Host %q) -> %d %q", url, host, status, body), func() error {
		code, got, err := get(host, url)
		if err != nil {
			return err
		}
		if code != status || got != body {
			return fmt.Errorf("got %d %q", code, got)
		}
		return nil
	})
}

// writeFile writes content to path atomically, the way editors save: a temp file renamed over it.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// processGone reports whether pid no longer exists (or is a zombie nobody reaped yet).
func processGone(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	fields := strings.Fields(string(b))
	return len(fields) > 2 && fields[2] == "Z"
}

// namedBackend serves h on a loopback port (serveBackend) as the backend name.
func namedBackend(t *testing.T, name string, h http.HandlerFunc) *backend {
	t.Helper()
	return &backend{name: name, addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: serveBackend(t, h)}}
}
