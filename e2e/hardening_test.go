package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestSafeDefaults runs one VirtualService behind two Gateways: "edge" with Portico's safe
// defaults (and a cap of two connections), "loose" with each default turned off. Every attack
// request is sent to both, so the test shows both that the default stops it and that the
// request would otherwise have got through: a default that did nothing would fail here.
func TestSafeDefaults(t *testing.T) {
	dir := t.TempDir()
	public := newBackend(t, "public")
	edgePort, loosePort := envoytest.FreePort(t), envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: edge}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  options: {maxConnections: 2}
---
apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: loose}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  options:
    normalizePath: false
    mergeSlashes: false
    escapedSlashesAction: KEEP_UNCHANGED
    headersWithUnderscoresAction: ALLOW
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: site}
spec:
  routes:
  - name: admin
    match: {prefix: /admin}
    directResponse: {status: 403, body: "admin is closed\n"}
  - name: public
    match: {prefix: /public}
    upstream: public
`+public.upstreamYAML(), edgePort, loosePort))
	p := startReady(t, cfg, "--envoy-max-heap-mib", "512")
	edge := fmt.Sprintf("127.0.0.1:%d", edgePort)
	loose := fmt.Sprintf("127.0.0.1:%d", loosePort)
	// Not Go's client: its pooled connection would count against edge's cap of two.
	eventually(t, 15*time.Second, "edge serves the public route", func() error {
		resp, body, err := rawDo(edge, "GET /public/page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || body != "public /public/page" {
			return fmt.Errorf("got %d %q", resp.StatusCode, body)
		}
		return nil
	})
	expectBody(t, "", "http://"+loose+"/public/page", http.StatusOK, "public /public/page")

	t.Run("path traversal does not reach a closed prefix", func(t *testing.T) {
		// Normalized, /public/../admin is /admin: the admin route answers, not the backend.
		expectRaw(t, edge, "GET /public/../admin HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusForbidden, "admin is closed\n")
		// ".." removes the empty segment between the slashes (RFC 3986), then slashes merge:
		// the backend gets a path that is truly under /public.
		expectRaw(t, edge, "GET /public//..//admin HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusOK, "public /public/admin")
		// Without normalization the public route matches, and the backend receives a path
		// that resolves to /admin.
		expectRaw(t, loose, "GET /public/../admin HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusOK, "public /public/../admin")
	})

	t.Run("escaped slashes are redirected", func(t *testing.T) {
		resp, _ := rawRequest(t, edge, "GET /public%2F..%2Fadmin HTTP/1.1\r\nHost: x\r\n\r\n")
		loc := resp.Header.Get("Location")
		if resp.StatusCode != http.StatusTemporaryRedirect || loc == "" || strings.Contains(strings.ToUpper(loc), "%2F") {
			t.Fatalf("edge: got %d Location %q, want 307 to the unescaped path", resp.StatusCode, loc)
		}
		// Following the redirect, the path is normalized like any other.
		expectRaw(t, edge, "GET "+loc+" HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusForbidden, "admin is closed\n")
		expectRaw(t, loose, "GET /public%2F..%2Fadmin HTTP/1.1\r\nHost: x\r\n\r\n", http.StatusOK, "public /public/../admin")
	})

	t.Run("headers with underscores are rejected", func(t *testing.T) {
		resp, _ := rawRequest(t, edge, "GET /public/page HTTP/1.1\r\nHost: x\r\nx_user: admin\r\n\r\n")
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("edge: got %d, want 400", resp.StatusCode)
		}
		expectRaw(t, loose, "GET /public/page HTTP/1.1\r\nHost: x\r\nx_user: admin\r\n\r\n", http.StatusOK, "public /public/page")
		expectRaw(t, edge, "GET /public/page HTTP/1.1\r\nHost: x\r\nx-user: admin\r\n\r\n", http.StatusOK, "public /public/page")
	})

	t.Run("connections above maxConnections are closed", func(t *testing.T) {
		// Two connections that have each completed a request are open and counted. Envoy
		// notices the earlier subtests' closed connections asynchronously, so wait for room.
		var held []net.Conn
		t.Cleanup(func() {
			for _, c := range held {
				c.Close()
			}
		})
		for len(held) < 2 {
			eventually(t, 5*time.Second, "a connection under the cap is served", func() error {
				c, err := keepAlive(edge)
				if err == nil {
					held = append(held, c)
				}
				return err
			})
		}
		third, err := net.DialTimeout("tcp", edge, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer third.Close()
		_ = third.SetDeadline(time.Now().Add(5 * time.Second))
		fmt.Fprint(third, "GET /public/page HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(third), nil); err == nil {
			t.Fatalf("a third connection was served (%d); want it closed at the cap of 2", resp.StatusCode)
		}
		// The cap counts open connections: once one closes, a new one is served.
		held[0].Close()
		eventually(t, 5*time.Second, "a new connection is served after one closed", func() error {
			c, err := net.DialTimeout("tcp", edge, time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			fmt.Fprint(c, "GET /public/page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return err
			}
			resp.Body.Close()
			return nil
		})
	})

	t.Run("overload manager is running", func(t *testing.T) {
		bs, err := os.ReadFile(filepath.Join(p.stateDir, "run", "bootstrap.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(bs), `max_heap_size_bytes: "536870912"`) {
			t.Errorf("bootstrap lacks the 512 MiB heap limit from --envoy-max-heap-mib:\n%s", bs)
		}
		admin, err := os.ReadFile(filepath.Join(p.stateDir, "run", "admin-address.txt"))
		if err != nil {
			t.Fatal(err)
		}
		// Envoy reports a pressure for each monitor it runs; the gauges exist only if the
		// overload manager took the bootstrap's configuration.
		_, stats, err := get("", "http://"+strings.TrimSpace(string(admin))+"/stats?filter=^overload")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"overload.envoy.resource_monitors.fixed_heap.pressure", "overload.envoy.overload_actions.stop_accepting_requests.active"} {
			if !strings.Contains(stats, want) {
				t.Errorf("Envoy stats lack %s:\n%s", want, stats)
			}
		}
	})
}

// rawRequest sends raw, exactly as written (Go's client would clean some of these paths), on a
// new connection and returns the response with its body read.
func rawRequest(t *testing.T, addr, raw string) (*http.Response, string) {
	t.Helper()
	resp, body, err := rawDo(addr, raw)
	if err != nil {
		t.Fatalf("%s to %s: %v", strings.SplitN(raw, "\r\n", 2)[0], addr, err)
	}
	return resp, body
}

func rawDo(addr, raw string) (*http.Response, string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		return nil, "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), err
}

// expectRaw sends raw and expects status and body.
func expectRaw(t *testing.T, addr, raw string, status int, body string) {
	t.Helper()
	resp, got := rawRequest(t, addr, raw)
	if resp.StatusCode != status || got != body {
		t.Errorf("%s to %s: got %d %q, want %d %q", strings.SplitN(raw, "\r\n", 2)[0], addr, resp.StatusCode, got, status, body)
	}
}

// keepAlive opens a connection, completes one request on it and returns it still open.
func keepAlive(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "GET /public/page HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return c, nil
}
