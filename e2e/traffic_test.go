package e2e

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/internal/envoytest"
)

// serveBackend runs handler on a loopback port and returns its port.
func serveBackend(t *testing.T, handler http.Handler) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// staticUpstreamYAML declares an Upstream with one loopback host.
func staticUpstreamYAML(name string, port int) string {
	return fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: %s}
spec:
  static:
    hosts: [{address: 127.0.0.1, port: %d}]
`, name, port)
}

// startConfig writes cfg, checks that it loads without warnings (a shadowed route would make a
// subtest pass or fail for the wrong reason) and starts portico on it.
func startConfig(t *testing.T, cfg string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, path, cfg)
	loaded, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Warnings) > 0 {
		t.Fatalf("test configuration has warnings:\n%v", loaded.Warnings)
	}
	startReady(t, path)
}

// flakyBackend fails the first attempt of every distinct x-attempt-key with the status in the
// x-fail-status header, and answers later attempts with 200; it counts attempts per key.
type flakyBackend struct {
	mu       sync.Mutex
	attempts map[string]int
}

func (f *flakyBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("X-Attempt-Key")
	f.mu.Lock()
	f.attempts[key]++
	n := f.attempts[key]
	f.mu.Unlock()
	if n == 1 && r.Header.Get("X-Fail-Status") != "" {
		var status int
		fmt.Sscan(r.Header.Get("X-Fail-Status"), &status)
		w.WriteHeader(status)
		fmt.Fprintf(w, "attempt %d failed", n)
		return
	}
	fmt.Fprintf(w, "attempt %d ok", n)
}

func (f *flakyBackend) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.attempts[key]
}

func TestRouteOptions(t *testing.T) {
	// echo answers with what the upstream sees of the request.
	echo := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "echo")
		w.Header().Set("Cache-Control", "public")
		fmt.Fprintf(w, "%s host=%s tenant=%v debug=%v", r.URL.Path, r.Host, r.Header.Values("X-Tenant"), r.Header.Values("X-Debug"))
	}))
	flaky := &flakyBackend{attempts: map[string]int{}}
	flakyPort := serveBackend(t, flaky)
	// slow answers after 3s, or when the gateway gives up on it.
	slow := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
			fmt.Fprint(w, "slow")
		case <-r.Context().Done():
		}
	}))
	port := envoytest.FreePort(t)
	startConfig(t, gatewayYAML(port)+`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - match: {prefix: /v1/}
    upstream: echo
    options:
      prefixRewrite: /api/
      hostRewrite: api.internal
      requestHeadersToSet: [{name: x-tenant, value: shop}]
      requestHeadersToRemove: [x-debug]
      responseHeadersToSet: [{name: cache-control, value: no-store}]
      responseHeadersToRemove: [server]
      responseHeadersToAdd: [{name: x-route, value: v1}]
  - match: {regex: '/users/[0-9]+/profile'}
    upstream: echo
    options:
      regexRewrite: {pattern: '^/users/([0-9]+)/profile$', substitution: '/profiles/\1'}
  - match: {prefix: /by-header}
    upstream: echo
    options: {hostRewriteHeader: x-target-host}
  - match: {prefix: /retry}
    upstream: flaky
    options:
      retries: {retryOn: [5xx], numRetries: 2, backoff: {baseInterval: 10ms}}
  - match: {prefix: /codes}
    upstream: flaky
    options:
      retries: {retryOn: [retriable-status-codes], retriableStatusCodes: [409]}
  - match: {prefix: /no-retry}
    upstream: flaky
    options:
      retries: {retryOn: [connect-failure]}
  - match: {prefix: /slow}
    upstream: slow
    options: {timeout: 300ms}
`+staticUpstreamYAML("echo", echo)+staticUpstreamYAML("flaky", flakyPort)+staticUpstreamYAML("slow", slow))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "", base+"/by-header/x", 200, fmt.Sprintf("/by-header/x host=127.0.0.1:%d tenant=[] debug=[]", port))

	t.Run("prefix rewrite, host rewrite and route headers", func(t *testing.T) {
		r := send(t, "GET", base+"/v1/items", "X-Tenant: spoofed", "X-Debug: 1")
		if want := "/api/items host=api.internal tenant=[shop] debug=[]"; r.status != 200 || r.body != want {
			t.Errorf("got %d %q, want 200 %q", r.status, r.body, want)
		}
		if got := r.header.Values("Cache-Control"); len(got) != 1 || got[0] != "no-store" {
			t.Errorf("cache-control = %q, want [no-store] (set replaces the upstream's)", got)
		}
		if got := r.header.Get("Server"); got == "echo" {
			t.Errorf("server = %q, want the upstream's removed", got)
		}
		if got := r.header.Get("X-Route"); got != "v1" {
			t.Errorf("x-route = %q, want v1", got)
		}
	})
	t.Run("regex rewrite with a capture group", func(t *testing.T) {
		expect(t, "GET", base+"/users/42/profile", 200, fmt.Sprintf("/profiles/42 host=127.0.0.1:%d tenant=[] debug=[]", port))
	})
	t.Run("host rewrite from a request header", func(t *testing.T) {
		expect(t, "GET", base+"/by-header", 200, "/by-header host=b.example tenant=[] debug=[]", "X-Target-Host: b.example")
	})
	t.Run("a failed first attempt is retried and succeeds", func(t *testing.T) {
		expect(t, "GET", base+"/retry", 200, "attempt 2 ok", "X-Attempt-Key: retry", "X-Fail-Status: 503")
		if n := flaky.count("retry"); n != 2 {
			t.Errorf("backend saw %d attempts, want 2", n)
		}
	})
	t.Run("retriable status codes", func(t *testing.T) {
		expect(t, "GET", base+"/codes", 200, "attempt 2 ok", "X-Attempt-Key: codes", "X-Fail-Status: 409")
		// 503 is not among the route's conditions, so it reaches the client.
		expect(t, "GET", base+"/codes", 503, "attempt 1 failed", "X-Attempt-Key: codes-503", "X-Fail-Status: 503")
	})
	t.Run("without a matching condition the failure reaches the client", func(t *testing.T) {
		expect(t, "GET", base+"/no-retry", 503, "attempt 1 failed", "X-Attempt-Key: no-retry", "X-Fail-Status: 503")
		if n := flaky.count("no-retry"); n != 1 {
			t.Errorf("backend saw %d attempts, want 1", n)
		}
	})
	t.Run("a route timeout answers 504 within its bound", func(t *testing.T) {
		began := time.Now()
		r := send(t, "GET", base+"/slow")
		took := time.Since(began)
		if r.status != 504 {
			t.Errorf("got %d %q, want 504", r.status, r.body)
		}
		// The backend takes 3s; the route allows 300ms. Envoy's timers have millisecond
		// granularity and may fire a little early; the upper bound leaves room for a loaded
		// machine while staying far below the backend's time.
		if took < 250*time.Millisecond || took > 2*time.Second {
			t.Errorf("answered after %s, want between 250ms and 2s", took)
		}
	})
}
