package e2e

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// connCountingBackend serves name on loopback and counts the connections it accepts.
func connCountingBackend(t *testing.T, name string) (port int, conns *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = new(atomic.Int64)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, name) }),
		// ConnState runs before the connection's first request is read, so a connection is
		// counted before its response can reach the client.
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port, conns
}

// TestConnectionPoolMaxRequestsPerConnection proves connectionPool.maxRequestsPerConnection: 1
// makes Envoy open a new host connection for every request, while an Upstream without it
// reuses one connection for sequential requests.
func TestConnectionPoolMaxRequestsPerConnection(t *testing.T) {
	const n = 10
	limitedPort, limitedConns := connCountingBackend(t, "limited")
	pooledPort, pooledConns := connCountingBackend(t, "pooled")
	port := envoytest.FreePort(t)
	cfg := gatewayYAML(port) + fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - match: {prefix: /limited}
    upstream: limited
  - match: {prefix: /}
    upstream: pooled
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: limited}
spec:
  static:
    hosts: [{address: 127.0.0.1, port: %d}]
  options:
    connectionPool: {maxRequestsPerConnection: 1, idleTimeout: 1m, maxConnectionDuration: 10m}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: pooled}
spec:
  static:
    hosts: [{address: 127.0.0.1, port: %d}]
`, limitedPort, pooledPort)
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, path, cfg)
	startReady(t, path)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	for _, tc := range []struct {
		name, path string
		conns      *atomic.Int64
		check      func(opened int64) error
	}{
		{"limited", "/limited", limitedConns, func(opened int64) error {
			if opened != n {
				return fmt.Errorf("%d requests opened %d connections, want one each", n, opened)
			}
			return nil
		}},
		{"pooled", "/", pooledConns, func(opened int64) error {
			if opened > 2 {
				return fmt.Errorf("%d sequential requests opened %d connections, want them reused (at most 2)", n, opened)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := base + tc.path
			eventually(t, 10*time.Second, tc.name+" route answers", func() error {
				code, body, err := get("", url)
				if err != nil {
					return err
				}
				if code != 200 || body != tc.name {
					return fmt.Errorf("got %d %q", code, body)
				}
				return nil
			})
			before := tc.conns.Load()
			for range n {
				expectBody(t, "", url, 200, tc.name)
			}
			if err := tc.check(tc.conns.Load() - before); err != nil {
				t.Fatal(err)
			}
		})
	}
}
