package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"

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

// recorder answers with its name and remembers the path and Host of every request it gets.
type recorder struct {
	name string
	mu   sync.Mutex
	seen []string // "host path"
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.seen = append(r.seen, req.Host+" "+req.URL.Path)
	r.mu.Unlock()
	fmt.Fprintf(w, "%s %s", r.name, req.URL.Path)
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

func TestTrafficPolicies(t *testing.T) {
	primary, shadow := &recorder{name: "primary"}, &recorder{name: "shadow"}
	primaryPort, shadowPort := serveBackend(t, primary), serveBackend(t, shadow)
	wsPort := serveBackend(t, websocket.Handler(func(ws *websocket.Conn) { io.Copy(ws, ws) }))
	port := envoytest.FreePort(t)
	startConfig(t, gatewayYAML(port)+`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  options:
    cors:
      allowOrigins: [{exact: "https://shop.example.com"}, {regex: 'https://[a-z]+\.shop\.example\.com'}]
      allowMethods: [GET, POST]
      allowHeaders: [content-type, x-requested-with]
      exposeHeaders: [x-request-id]
      maxAge: 10m
      allowCredentials: true
  routes:
  - match: {prefix: /mirror}
    upstream: primary
    options:
      mirror: {upstream: shadow}
  - match: {prefix: /abort}
    upstream: primary
    options:
      faults: {abort: {status: 418}}
  - match: {prefix: /delay}
    upstream: primary
    options:
      faults: {delay: {fixed: 500ms}}
  - match: {prefix: /public}
    upstream: primary
    options:
      cors: {allowOrigins: [{exact: "*"}], allowMethods: [PUT]}
  - match: {prefix: /ws}
    upstream: ws
    options: {websocket: true}
  - match: {prefix: /no-ws}
    upstream: ws
  - match: {prefix: /}
    upstream: primary
`+staticUpstreamYAML("primary", primaryPort)+staticUpstreamYAML("shadow", shadowPort)+staticUpstreamYAML("ws", wsPort))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "", base+"/ready", 200, "primary /ready")

	t.Run("mirror receives copies, the client gets the primary's answer", func(t *testing.T) {
		const n = 5
		for i := range n {
			expect(t, "GET", fmt.Sprintf("%s/mirror/%d", base, i), 200, fmt.Sprintf("primary /mirror/%d", i))
		}
		// Envoy sends the copies without waiting for them, so they may arrive after the answers;
		// it marks them by adding -shadow to the host.
		host := fmt.Sprintf("127.0.0.1-shadow:%d", port)
		eventually(t, 5*time.Second, "the shadow upstream sees every mirrored request", func() error {
			got := shadow.requests()
			for i := range n {
				if want := fmt.Sprintf("%s /mirror/%d", host, i); !slices.Contains(got, want) {
					return fmt.Errorf("missing %q in %q", want, got)
				}
			}
			if len(got) != n {
				return fmt.Errorf("got %d requests, want %d: %q", len(got), n, got)
			}
			return nil
		})
	})
	t.Run("abort fault answers with its status instead of the upstream", func(t *testing.T) {
		before := len(primary.requests())
		for range 3 {
			if r := send(t, "GET", base+"/abort"); r.status != 418 {
				t.Errorf("got %d %q, want 418", r.status, r.body)
			}
		}
		if after := len(primary.requests()); after != before {
			t.Errorf("the upstream saw %d aborted requests, want none", after-before)
		}
	})
	t.Run("delay fault adds its latency", func(t *testing.T) {
		began := time.Now()
		expect(t, "GET", base+"/delay", 200, "primary /delay")
		if took := time.Since(began); took < 450*time.Millisecond || took > 3*time.Second {
			t.Errorf("answered after %s, want about 500ms", took)
		}
		began = time.Now()
		expect(t, "GET", base+"/other", 200, "primary /other")
		if took := time.Since(began); took > 400*time.Millisecond {
			t.Errorf("an undelayed route took %s", took)
		}
	})
	t.Run("CORS preflight is answered by the gateway", func(t *testing.T) {
		before := len(primary.requests())
		r := send(t, "OPTIONS", base+"/cart", "Origin: https://app.shop.example.com", "Access-Control-Request-Method: POST")
		want := map[string]string{
			"Access-Control-Allow-Origin":      "https://app.shop.example.com",
			"Access-Control-Allow-Methods":     "GET,POST",
			"Access-Control-Allow-Headers":     "content-type,x-requested-with",
			"Access-Control-Max-Age":           "600",
			"Access-Control-Allow-Credentials": "true",
		}
		if r.status != 200 {
			t.Errorf("preflight got %d %q, want 200", r.status, r.body)
		}
		for k, v := range want {
			if got := r.header.Get(k); got != v {
				t.Errorf("%s = %q, want %q", k, got, v)
			}
		}
		if after := len(primary.requests()); after != before {
			t.Errorf("the preflight reached the upstream")
		}
		// An actual request from an allowed origin is told which headers it may read.
		r = send(t, "GET", base+"/cart", "Origin: https://shop.example.com")
		if r.header.Get("Access-Control-Allow-Origin") != "https://shop.example.com" || r.header.Get("Access-Control-Expose-Headers") != "x-request-id" {
			t.Errorf("simple request headers %v, want allow-origin and expose-headers", r.header)
		}
		// Another origin gets no permission.
		r = send(t, "OPTIONS", base+"/cart", "Origin: https://evil.example", "Access-Control-Request-Method: POST")
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("disallowed origin got access-control-allow-origin %q", got)
		}
	})
	t.Run("a route's CORS policy replaces the VirtualService's", func(t *testing.T) {
		r := send(t, "OPTIONS", base+"/public", "Origin: https://evil.example", "Access-Control-Request-Method: PUT")
		if got := r.header.Get("Access-Control-Allow-Origin"); got != "https://evil.example" {
			t.Errorf("access-control-allow-origin = %q, want the origin (any is allowed)", got)
		}
		if got := r.header.Get("Access-Control-Allow-Methods"); got != "PUT" {
			t.Errorf("access-control-allow-methods = %q, want PUT", got)
		}
	})
	t.Run("WebSocket echo through the gateway", func(t *testing.T) {
		ws, err := websocket.Dial(fmt.Sprintf("ws://127.0.0.1:%d/ws", port), "", "http://localhost/")
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer ws.Close()
		ws.SetDeadline(time.Now().Add(5 * time.Second))
		for _, msg := range []string{"hello", "again"} {
			if err := websocket.Message.Send(ws, msg); err != nil {
				t.Fatal(err)
			}
			var got string
			if err := websocket.Message.Receive(ws, &got); err != nil {
				t.Fatal(err)
			}
			if got != msg {
				t.Errorf("echo %q, want %q", got, msg)
			}
		}
	})
	t.Run("without websocket the upgrade is refused", func(t *testing.T) {
		_, err := websocket.Dial(fmt.Sprintf("ws://127.0.0.1:%d/no-ws", port), "", "http://localhost/")
		if err == nil || !strings.Contains(err.Error(), "bad status") {
			t.Errorf("dial: %v, want the upgrade refused", err)
		}
	})
}
