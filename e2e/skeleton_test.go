package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// routingConfig is a gateway with a prefix route, an exact route and a direct response.
func routingConfig(port int, api, exact *backend) string {
	return gatewayYAML(port) + `---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - match: {exact: /exact}
    upstream: exact
  - match: {prefix: /api}
    upstream: api
  - match: {prefix: /}
    directResponse: {status: 200, body: "hello from portico\n"}
` + api.upstreamYAML() + exact.upstreamYAML()
}

func TestRouting(t *testing.T) {
	api, exact := newBackend(t, "api"), newBackend(t, "exact")
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, routingConfig(port, api, exact))
	startReady(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	t.Run("prefix route reaches its backend", func(t *testing.T) {
		expectBody(t, "", base+"/api/items", 200, "api /api/items")
	})
	t.Run("exact route matches only the exact path", func(t *testing.T) {
		expectBody(t, "", base+"/exact", 200, "exact /exact")
		// /exact/more is not /exact: it falls through to the direct response.
		expectBody(t, "", base+"/exact/more", 200, "hello from portico\n")
	})
	t.Run("direct response", func(t *testing.T) {
		expectBody(t, "", base+"/", 200, "hello from portico\n")
	})
}

func TestHostSelection(t *testing.T) {
	shop, blog := newBackend(t, "shop"), newBackend(t, "blog")
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  domains: [shop.example.com]
  routes:
  - match: {prefix: /}
    upstream: shop
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: blog}
spec:
  domains: [blog.example.com]
  routes:
  - match: {prefix: /}
    upstream: blog
`+shop.upstreamYAML()+blog.upstreamYAML())
	startReady(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "shop.example.com", base+"/x", 200, "shop /x")
	expectBody(t, "blog.example.com", base+"/x", 200, "blog /x")
	// No VirtualService claims this host: Envoy answers 404.
	expectBody(t, "other.example.com", base+"/x", 404, "")
}

func TestLiveReload(t *testing.T) {
	api, exact := newBackend(t, "api"), newBackend(t, "exact")
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, routingConfig(port, api, exact))
	p := startReady(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "", base+"/api/x", 200, "api /api/x")
	pid := p.envoyPID()

	// Send /api to the other backend: an editor-style rename save.
	writeFile(t, cfg, strings.Replace(routingConfig(port, api, exact), "upstream: api", "upstream: exact", 1))
	expectBody(t, "", base+"/api/x", 200, "exact /api/x")
	if got := p.envoyPID(); got != pid {
		t.Fatalf("envoy was restarted for a route change: pid %d -> %d", pid, got)
	}

	t.Run("invalid edit keeps serving and names file and line", func(t *testing.T) {
		bad := strings.Replace(routingConfig(port, api, exact), "upstream: exact\n", "upstream: nowhere\n", 1)
		writeFile(t, cfg, bad)
		line := 1 + strings.Count(bad[:strings.Index(bad, "upstream: nowhere")], "\n")
		want := fmt.Sprintf("%s:%d", cfg, line)
		eventually(t, 10*time.Second, "reload error naming "+want, func() error {
			if !strings.Contains(p.stderr.String(), want) || !strings.Contains(p.stderr.String(), `nowhere`) {
				return fmt.Errorf("no error naming %s and the missing upstream in the log yet", want)
			}
			return nil
		})
		expectBody(t, "", base+"/api/x", 200, "exact /api/x")
		expectBody(t, "", base+"/exact", 200, "exact /exact")
		if got := p.envoyPID(); got != pid {
			t.Fatalf("envoy restarted after an invalid edit: pid %d -> %d", pid, got)
		}
	})

	t.Run("fixing the file applies it", func(t *testing.T) {
		writeFile(t, cfg, routingConfig(port, api, exact))
		expectBody(t, "", base+"/api/x", 200, "api /api/x")
	})
}

func TestEnvoyCrashIsRestarted(t *testing.T) {
	api, exact := newBackend(t, "api"), newBackend(t, "exact")
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, routingConfig(port, api, exact))
	p := startReady(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "", base+"/api/x", 200, "api /api/x")

	old := p.envoyPID()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, "a new envoy serves the same routes", func() error {
		code, body, err := get("", base+"/api/x")
		if err != nil {
			return err
		}
		if code != 200 || body != "api /api/x" {
			return fmt.Errorf("got %d %q", code, body)
		}
		b, err := os.ReadFile(filepath.Join(p.stateDir, "run", "envoy.pid"))
		if err != nil || strings.TrimSpace(string(b)) == fmt.Sprint(old) {
			return fmt.Errorf("envoy pid file still names the killed process")
		}
		return nil
	})
}

func TestSigtermLeavesNoEnvoy(t *testing.T) {
	api, exact := newBackend(t, "api"), newBackend(t, "exact")
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, routingConfig(port, api, exact))
	p := startReady(t, cfg)
	pid := p.envoyPID()
	p.stop()
	if p.exitErr != nil {
		t.Fatalf("portico exited with %v after SIGTERM, want 0", p.exitErr)
	}
	eventually(t, 5*time.Second, "envoy is gone", func() error {
		if !processGone(pid) {
			return fmt.Errorf("envoy pid %d still exists", pid)
		}
		return nil
	})
	if _, _, err := get("", fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
		t.Fatal("the gateway port still answers after portico stopped")
	}
}

// TestDemo runs portico with no configuration at all: it serves the built-in demo on
// 127.0.0.1:8080, as the README promises.
func TestDemo(t *testing.T) {
	dir := t.TempDir() // no portico.yaml here
	p := start(t, dir, nil, "--envoy-path", envoytest.Binary(t))
	p.waitReady()
	if !strings.Contains(p.stdout.String(), "portico: gateway ready on http://127.0.0.1:8080 (envoy 1.40.0, ") {
		t.Fatalf("unexpected ready line: %q", p.stdout.String())
	}
	eventually(t, 10*time.Second, "the demo answers", func() error {
		code, body, err := get("", "http://127.0.0.1:8080/")
		if err != nil {
			return err
		}
		if code != 200 || !strings.Contains(body, "Welcome to Portico") {
			return fmt.Errorf("got %d %q", code, body)
		}
		return nil
	})
}
