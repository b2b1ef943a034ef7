package ratelimit

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
	"github.com/portico-gw/portico/internal/syncbuf"
	"github.com/portico-gw/portico/internal/unixsock"
)

// serveOnSocket serves s on a Unix socket, 0600 in a fresh 0700 directory, until the test
// ends. The directory comes from os.MkdirTemp: t.TempDir paths can be too long for a socket.
func serveOnSocket(t *testing.T, s *Service) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "prl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "rls.sock")
	l, err := unixsock.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(waitFor):
			t.Errorf("Serve did not return %s after its context ended", waitFor)
		}
	})
	return path
}

// The route sends two descriptors Envoy builds itself: the client's address, and the x-api-key
// header under the key api_key (only when the header is present). The route forwards to a
// loopback backend: Envoy 1.40's rate limit filter skips direct_response routes altogether,
// even with rate_limits in their RateLimitPerRoute config.
const envoyBootstrap = `
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: 0}}
static_resources:
  listeners:
  - name: http
    address: {socket_address: {address: 127.0.0.1, port_value: %d}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: http
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: "/"}
                route:
                  cluster: backend
                  rate_limits:
                  - actions: [{remote_address: {}}]
                  - actions: [{request_headers: {header_name: x-api-key, descriptor_key: api_key}}]
          http_filters:
          - name: envoy.filters.http.ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit
              domain: portico
              failure_mode_deny: false
              enable_x_ratelimit_headers: DRAFT_VERSION_03
              timeout: 2s
              rate_limit_service:
                transport_api_version: V3
                grpc_service: {envoy_grpc: {cluster_name: ratelimit}}
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
        - endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: %d}}}
  - name: ratelimit
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: ratelimit
      endpoints:
      - lb_endpoints:
        - endpoint: {address: {pipe: {path: %q}}}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
`

// startEnvoy runs Envoy with envoyBootstrap until the test ends and returns its listener's URL
// once Envoy is ready.
func startEnvoy(t *testing.T, socketPath string) string {
	t.Helper()
	bin := envoytest.Binary(t)
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	t.Cleanup(backend.Close)
	backendPort := backend.Listener.Addr().(*net.TCPAddr).Port
	port := envoytest.FreePort(t)

	dir := t.TempDir()
	bootstrap := filepath.Join(dir, "bootstrap.yaml")
	adminPath := filepath.Join(dir, "admin-address")
	if err := os.WriteFile(bootstrap, fmt.Appendf(nil, envoyBootstrap, port, backendPort, socketPath), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &syncbuf.Buffer{}
	// Hot restart is off so that concurrent Envoys on this machine do not share memory.
	cmd := exec.Command(bin, "-c", bootstrap, "--concurrency", "1", "-l", "warn",
		"--admin-address-path", adminPath, "--disable-hot-restart")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start envoy: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("envoy output:\n%s", out.String())
		}
	})
	eventually(t, "Envoy is ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("envoy exited:\n%s", out.String())
		default:
		}
		admin, err := os.ReadFile(adminPath)
		if err != nil || len(admin) == 0 {
			return false
		}
		resp, err := httpClient.Get("http://" + strings.TrimSpace(string(admin)) + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return fmt.Sprintf("http://127.0.0.1:%d/", port)
}

var httpClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// get sends one request, with x-api-key when apiKey is not empty.
func get(t *testing.T, url, apiKey string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if apiKey != "" {
		req.Header.Set("x-api-key", apiKey)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestEnvoyEnforcesLimits(t *testing.T) {
	perIPShadow := perIP(2, Minute)
	perIPShadow.Name = "per-ip-shadow"
	perIPShadow.Shadow = true
	perKey := Limit{Name: "per-key", Descriptors: []DescriptorMatch{{Key: "api_key"}}, RequestsPerUnit: 3, Unit: Minute}
	// The fixed clock keeps every request in one window: 50s remain in it.
	s, _, reg := newTestService(t, Config{Limits: []Limit{perIPShadow, perKey}})
	url := startEnvoy(t, serveOnSocket(t, s))

	// Envoy connects to the service lazily and fails open until it has: wait until a decision
	// is made, with a key of its own so that the counts below start from zero.
	eventually(t, "Envoy asks the rate limit service", func() bool {
		get(t, url, "warm-up")
		return metricValue(t, reg, "portico_ratelimit_decisions_total", map[string]string{"limit": "per-key"}) > 0
	})

	for _, key := range []string{"alice", "bob"} {
		t.Run(key, func(t *testing.T) {
			for i := range 3 {
				resp := get(t, url, key)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("request %d: status %d, want 200", i+1, resp.StatusCode)
				}
				wantHeaders(t, resp, fmt.Sprint(2-i))
			}
			resp := get(t, url, key)
			if resp.StatusCode != http.StatusTooManyRequests {
				t.Fatalf("request 4: status %d, want 429", resp.StatusCode)
			}
			wantHeaders(t, resp, "0")
		})
	}

	t.Run("shadow limit never blocks", func(t *testing.T) {
		before := metricValue(t, reg, "portico_ratelimit_decisions_total", map[string]string{"limit": "per-ip-shadow", "decision": "shadowed"})
		for i := range 5 {
			resp := get(t, url, "")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("request %d without a key: status %d, want 200", i+1, resp.StatusCode)
			}
			if h := resp.Header.Get("x-ratelimit-limit"); h != "" {
				t.Errorf("request %d: x-ratelimit-limit %q from a shadow limit", i+1, h)
			}
		}
		// The per-IP count was past 2 before these: every one of them was over the shadow limit.
		if got := metricValue(t, reg, "portico_ratelimit_decisions_total", map[string]string{"limit": "per-ip-shadow", "decision": "shadowed"}); got != before+5 {
			t.Errorf("shadowed decisions %v, want %v", got, before+5)
		}
	})
}

// wantHeaders checks the DRAFT_VERSION_03 RateLimit headers of the per-key limit.
func wantHeaders(t *testing.T, resp *http.Response, remaining string) {
	t.Helper()
	if got, want := resp.Header.Get("x-ratelimit-limit"), `3, 3;w=60;name="per-key"`; got != want {
		t.Errorf("x-ratelimit-limit %q, want %q", got, want)
	}
	if got := resp.Header.Get("x-ratelimit-remaining"); got != remaining {
		t.Errorf("x-ratelimit-remaining %q, want %q", got, remaining)
	}
	if got, want := resp.Header.Get("x-ratelimit-reset"), "50"; got != want {
		t.Errorf("x-ratelimit-reset %q, want %q", got, want)
	}
}
