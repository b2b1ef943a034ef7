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
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/h2c"
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
	if n == 1 && r.Header.Get("X-Stall-First") != "" {
		// Hold the first attempt until the gateway gives up on it.
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
			return
		}
	}
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
		w.Header().Set("X-Frame-Options", "SAMEORIGIN")
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
  options:
    responseHeadersToSet: [{name: x-frame-options, value: DENY}]
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
  - match: {prefix: /auto-host}
    upstream: echo-by-name
    options: {autoHostRewrite: true}
  - match: {prefix: /retry}
    upstream: flaky
    options:
      retries: {retryOn: [5xx], numRetries: 2, backoff: {baseInterval: 10ms}}
  - match: {prefix: /codes}
    upstream: flaky
    options:
      retries: {retryOn: [retriable-status-codes], retriableStatusCodes: [409]}
  - match: {prefix: /per-try}
    upstream: flaky
    options:
      timeout: 3s
      retries: {retryOn: [5xx], perTryTimeout: 200ms}
  - match: {prefix: /idle}
    upstream: slow
    options: {idleTimeout: 200ms, timeout: 10s}
  - match: {prefix: /no-retry}
    upstream: flaky
    options:
      retries: {retryOn: [connect-failure]}
  - match: {prefix: /slow}
    upstream: slow
    options: {timeout: 300ms}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: echo-by-name}
spec:
  dns:
    lookupFamily: V4
    hosts: [{hostname: localhost, port: `+fmt.Sprint(echo)+`}]
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
	t.Run("host rewrite to the upstream host's name", func(t *testing.T) {
		// Envoy resolves the name in the background after the cluster arrives.
		expectBody(t, "", base+"/auto-host", 200, "/auto-host host=localhost tenant=[] debug=[]")
	})
	t.Run("a VirtualService's headers to set replace the upstream's", func(t *testing.T) {
		r := send(t, "GET", base+"/by-header")
		if got := r.header.Values("X-Frame-Options"); len(got) != 1 || got[0] != "DENY" {
			t.Errorf("x-frame-options = %q, want [DENY]", got)
		}
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
	t.Run("a per-try timeout retries a stalled attempt", func(t *testing.T) {
		began := time.Now()
		expect(t, "GET", base+"/per-try", 200, "attempt 2 ok", "X-Attempt-Key: per-try", "X-Stall-First: 1")
		if took := time.Since(began); took > 2*time.Second {
			t.Errorf("answered after %s; the stalled attempt should have been abandoned after 200ms", took)
		}
	})
	t.Run("an idle timeout answers 504 when the upstream is silent", func(t *testing.T) {
		began := time.Now()
		r := send(t, "GET", base+"/idle")
		took := time.Since(began)
		// Envoy's body tells the idle timeout from the route timeout (upstream request timeout).
		if r.status != 504 || r.body != "stream timeout" {
			t.Errorf("got %d %q, want 504 %q", r.status, r.body, "stream timeout")
		}
		// The backend is silent for 3s; the route allows 200ms of silence.
		if took < 150*time.Millisecond || took > 2*time.Second {
			t.Errorf("answered after %s, want between 150ms and 2s", took)
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
  - match: {prefix: /half-abort}
    upstream: primary
    options:
      faults: {abort: {status: 503, percentage: 25}}
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
	t.Run("abort fault hits its percentage of requests", func(t *testing.T) {
		const n = 400
		aborted := 0
		for range n {
			switch r := send(t, "GET", base+"/half-abort"); r.status {
			case 503:
				aborted++
			case 200:
			default:
				t.Fatalf("got %d %q", r.status, r.body)
			}
		}
		// Binomial(400, 0.25): mean 100, standard deviation 8.7; +-40 is over four and a half
		// standard deviations.
		if aborted < 60 || aborted > 140 {
			t.Errorf("%d of %d aborted, want about a quarter (60-140)", aborted, n)
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

// hostBackend answers with its name, counts the requests it serves, and answers its health
// check path with 200 while healthy and 503 otherwise.
type hostBackend struct {
	name     string
	healthy  atomic.Bool
	status   int // the status of ordinary requests; 0 means 200
	requests atomic.Int64
}

func newHostBackend(t *testing.T, name string, status int) (*hostBackend, int) {
	h := &hostBackend{name: name, status: status}
	h.healthy.Store(true)
	return h, serveBackend(t, h)
}

func (h *hostBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/healthz" {
		if !h.healthy.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		return
	}
	h.requests.Add(1)
	if h.status != 0 {
		w.WriteHeader(h.status)
	}
	fmt.Fprint(w, h.name)
}

// hostsUpstreamYAML declares an Upstream over loopback ports with the given options block.
func hostsUpstreamYAML(name, options string, ports ...int) string {
	hosts := make([]string, len(ports))
	for i, p := range ports {
		hosts[i] = fmt.Sprintf("{address: 127.0.0.1, port: %d}", p)
	}
	return fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: %s}
spec:
  static:
    hosts: [%s]
  options:
%s`, name, strings.Join(hosts, ", "), options)
}

func TestUpstreamPolicies(t *testing.T) {
	hcA, hcAPort := newHostBackend(t, "a", 0)
	hcB, hcBPort := newHostBackend(t, "b", 0)
	_, tcpLivePort := newHostBackend(t, "live", 0)
	odOK, odOKPort := newHostBackend(t, "ok", 0)
	odBad, odBadPort := newHostBackend(t, "bad", http.StatusInternalServerError)
	var ringPorts []int
	for _, name := range []string{"r1", "r2", "r3"} {
		_, p := newHostBackend(t, name, 0)
		ringPorts = append(ringPorts, p)
	}
	protoPort := serveBackend(t, h2c.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Proto)
	}), &http2.Server{}))
	release := make(chan struct{})
	var held atomic.Int64
	heldPort := serveBackend(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		held.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		fmt.Fprint(w, "released")
	}))
	port := envoytest.FreePort(t)
	startConfig(t, gatewayYAML(port)+`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - match: {prefix: /checked}
    upstream: checked
  - match: {prefix: /tcp-checked}
    upstream: tcp-checked
  - match: {prefix: /outlier}
    upstream: outlier
  - match: {prefix: /ring}
    upstream: ring
    options:
      hashPolicy: [{header: x-user}]
  - match: {prefix: /maglev}
    upstream: maglev
    options:
      hashPolicy: [{cookie: session}]
  - match: {prefix: /h2c}
    upstream: h2c
  - match: {prefix: /h1}
    upstream: h1
  - match: {prefix: /held}
    upstream: held
  - match: {exact: /ready}
    directResponse: {status: 200, body: ready}
`+hostsUpstreamYAML("checked", `    healthCheck:
      http: {path: /healthz}
      interval: 100ms
      unhealthyThreshold: 1
      healthyThreshold: 1
`, hcAPort, hcBPort)+hostsUpstreamYAML("tcp-checked", `    healthCheck: {tcp: true, interval: 100ms, unhealthyThreshold: 1}
`, tcpLivePort, envoytest.FreePort(t))+hostsUpstreamYAML("outlier", `    outlierDetection: {consecutive5xx: 3, baseEjectionTime: 1m, maxEjectionPercent: 50}
`, odOKPort, odBadPort)+hostsUpstreamYAML("ring", `    loadBalancer: ringHash
`, ringPorts...)+hostsUpstreamYAML("maglev", `    loadBalancer: maglev
`, ringPorts...)+hostsUpstreamYAML("h2c", `    http2: true
`, protoPort)+hostsUpstreamYAML("h1", `    connectTimeout: 1s
`, protoPort)+hostsUpstreamYAML("held", `    circuitBreakers: {maxConnections: 1, maxPendingRequests: 1}
`, heldPort))
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "", base+"/ready", 200, "ready")

	t.Run("a host failing its health check stops receiving traffic", func(t *testing.T) {
		eventually(t, 15*time.Second, "both hosts serve", func() error {
			seen := map[string]bool{}
			for range 10 {
				if r := send(t, "GET", base+"/checked"); r.status == 200 {
					seen[r.body] = true
				}
			}
			if !seen["a"] || !seen["b"] {
				return fmt.Errorf("served by %v", seen)
			}
			return nil
		})
		hcB.healthy.Store(false)
		eventually(t, 15*time.Second, "only the healthy host serves", func() error {
			for range 20 {
				if r := send(t, "GET", base+"/checked"); r.status != 200 || r.body != "a" {
					return fmt.Errorf("got %d %q", r.status, r.body)
				}
			}
			return nil
		})
		before := hcB.requests.Load()
		for range 20 {
			expect(t, "GET", base+"/checked", 200, "a")
		}
		if after := hcB.requests.Load(); after != before {
			t.Errorf("the unhealthy host got %d more requests", after-before)
		}
		if hcA.requests.Load() == 0 {
			t.Errorf("the healthy host served nothing")
		}
	})
	t.Run("a TCP health check takes a host that refuses connections out", func(t *testing.T) {
		// Without the check, round robin would send every other request to the closed port.
		eventually(t, 15*time.Second, "only the live host serves", func() error {
			for range 20 {
				if r := send(t, "GET", base+"/tcp-checked"); r.status != 200 || r.body != "live" {
					return fmt.Errorf("got %d %q", r.status, r.body)
				}
			}
			return nil
		})
	})
	t.Run("a host is ejected after consecutive 5xx", func(t *testing.T) {
		failures := 0
		for i := 0; failures < 3; i++ {
			if i == 20 {
				t.Fatalf("only %d failures in 20 requests, want 3 from round robin's every other", failures)
			}
			switch r := send(t, "GET", base+"/outlier"); {
			case r.status == 500 && r.body == "bad":
				failures++
			case r.status != 200 || r.body != "ok":
				t.Fatalf("got %d %q", r.status, r.body)
			}
		}
		// Envoy ejects on its main thread, so one more request may reach the host before the
		// worker learns of the ejection; after that, the failing host gets nothing for the
		// ejection's minute.
		eventually(t, 5*time.Second, "only the healthy host serves", func() error {
			for range 10 {
				if r := send(t, "GET", base+"/outlier"); r.status != 200 {
					return fmt.Errorf("got %d %q", r.status, r.body)
				}
			}
			return nil
		})
		ejected := odBad.requests.Load()
		for range 20 {
			expect(t, "GET", base+"/outlier", 200, "ok")
		}
		if got := odBad.requests.Load(); got != ejected || got > 4 {
			t.Errorf("the failing host got %d requests, %d after its ejection; want at most 4, none after", got, got-ejected)
		}
		if odOK.requests.Load() < 30 {
			t.Errorf("the healthy host served %d requests, want at least 30", odOK.requests.Load())
		}
	})
	for _, tc := range []struct{ lb, path, header string }{
		{"ring hash by header", "/ring", "X-User: user-%d"},
		{"maglev by cookie", "/maglev", "Cookie: session=s%d"},
	} {
		t.Run(tc.lb+" keeps each client on one host", func(t *testing.T) {
			hosts := map[string]bool{}
			for u := range 12 {
				client := fmt.Sprintf(tc.header, u)
				first := send(t, "GET", base+tc.path, client)
				for range 5 {
					if r := send(t, "GET", base+tc.path, client); r.status != 200 || r.body != first.body {
						t.Errorf("%s: got %d %q, then %q", client, r.status, r.body, first.body)
					}
				}
				hosts[first.body] = true
			}
			// Twelve clients over three equal hosts all landing on one happens with
			// probability 3^-11: the hash spreads clients rather than pinning every request
			// to one host.
			if len(hosts) < 2 {
				t.Errorf("every client went to %v", hosts)
			}
		})
	}
	t.Run("http2 speaks h2c to the upstream", func(t *testing.T) {
		expect(t, "GET", base+"/h2c", 200, "HTTP/2.0")
		expect(t, "GET", base+"/h1", 200, "HTTP/1.1")
	})
	t.Run("circuit breakers fail what exceeds the limits at once", func(t *testing.T) {
		type result struct{ status int }
		results := make(chan result, 5)
		for range 5 {
			go func() {
				code, _, err := get("", base+"/held")
				if err != nil {
					code = -1
				}
				results <- result{code}
			}()
		}
		// One request holds the only connection and one waits for it; the other three
		// overflow and get 503 while the backend still holds the first.
		counts := map[int]int{}
		deadline := time.After(10 * time.Second)
		for counts[503] < 3 {
			select {
			case r := <-results:
				counts[r.status]++
			case <-deadline:
				t.Fatalf("results so far %v, want three 503s while the backend holds", counts)
			}
		}
		close(release)
		for counts[200]+counts[503] < 5 {
			select {
			case r := <-results:
				counts[r.status]++
			case <-deadline:
				t.Fatalf("results %v, want the two admitted requests answered after release", counts)
			}
		}
		if counts[503] != 3 || counts[200] != 2 || held.Load() != 2 {
			t.Errorf("results %v with %d reaching the backend, want three 503 and two 200 reaching it", counts, held.Load())
		}
	})
}
