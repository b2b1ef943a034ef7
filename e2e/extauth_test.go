package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/portico-gw/portico/internal/envoytest"
)

// grpcAuthz is a user's ext_authz server: it allows requests with x-token: let-me-in, adding
// x-authz-user, and denies the others with 403 and its own body.
type grpcAuthz struct {
	authv3.UnimplementedAuthorizationServer
}

func (grpcAuthz) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	attrs := req.GetAttributes()
	if attrs.GetRequest().GetHttp().GetHeaders()["x-token"] != "let-me-in" {
		return &authv3.CheckResponse{
			Status: &status.Status{Code: int32(codes.PermissionDenied)},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
				Body:   "denied by grpc\n",
			}},
		}, nil
	}
	return &authv3.CheckResponse{
		Status: &status.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{{
				Header:       &corev3.HeaderValue{Key: "x-authz-user", Value: "grpc-user@" + attrs.GetContextExtensions()["virtual_service"]},
				AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
			}},
		}},
	}, nil
}

// startGRPCAuthz serves grpcAuthz on loopback; stop ends it.
func startGRPCAuthz(t *testing.T) (port int, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(srv, grpcAuthz{})
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return l.Addr().(*net.TCPAddr).Port, srv.Stop
}

// startHTTPAuthz is a user's HTTP authorization server: under /check, x-token: let-me-in gets
// 200 with x-user, anything else 401 with its own body and header.
func startHTTPAuthz(t *testing.T) (port int, stop func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/check/") || r.Header.Get("x-token") != "let-me-in" {
			w.Header().Set("x-denied-by", "http-authz")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprintf(w, "denied by http for %s\n", r.URL.Path)
			return
		}
		w.Header().Set("x-user", "http-user")
		w.Header().Set("x-not-forwarded", "secret")
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port, func() { srv.Close() }
}

// authzHeaderEcho answers with the headers the authorization servers may add.
func authzHeaderEcho(t *testing.T) *backend {
	t.Helper()
	return namedBackend(t, "api", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "x-authz-user=%s x-user=%s x-not-forwarded=%s failure-mode-allowed=%s",
			r.Header.Get("x-authz-user"), r.Header.Get("x-user"), r.Header.Get("x-not-forwarded"),
			r.Header.Get("x-envoy-auth-failure-mode-allowed"))
	})
}

func extAuthConfig(grpcPort, httpPort int) string {
	return fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: authz-grpc}
spec:
  static: {hosts: [{address: 127.0.0.1, port: %d}]}
  options: {http2: true}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: authz-http}
spec:
  static: {hosts: [{address: 127.0.0.1, port: %d}]}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: grpc}
spec:
  domains: [grpc.test]
  security:
    extAuth: {grpc: {upstream: authz-grpc}, timeout: 500ms}
  routes:
  - match: {prefix: /open}
    upstream: api
    security: {extAuth: {disabled: true}}
  - match: {prefix: /}
    upstream: api
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: lenient}
spec:
  domains: [lenient.test]
  security:
    extAuth: {grpc: {upstream: authz-grpc}, timeout: 500ms, failureMode: allow}
  routes:
  - match: {prefix: /}
    upstream: api
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: http}
spec:
  domains: [http.test]
  security:
    extAuth:
      http: {upstream: authz-http, pathPrefix: /check, requestHeaders: [x-token], upstreamHeaders: [x-user]}
      timeout: 500ms
  routes:
  - match: {prefix: /}
    upstream: api
`, grpcPort, httpPort)
}

// hostGet sends GET url with Host host and headers.
func hostGet(t *testing.T, host, url string, headers map[string]string) authResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s (Host %s): %v", url, host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return authResponse{resp.StatusCode, string(body), resp.Header}
}

func TestExternalAuthorization(t *testing.T) {
	api := authzHeaderEcho(t)
	grpcPort, stopGRPC := startGRPCAuthz(t)
	httpPort, stopHTTP := startHTTPAuthz(t)
	dir := t.TempDir()
	port := envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+extAuthConfig(grpcPort, httpPort)+api.upstreamYAML())
	startReady(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	token := map[string]string{"x-token": "let-me-in"}
	eventually(t, 15*time.Second, "the gRPC authorization server is reached", func() error {
		if r := hostGet(t, "grpc.test", base+"/", token); r.status != 200 {
			return fmt.Errorf("got %d %q", r.status, r.body)
		}
		return nil
	})

	t.Run("gRPC: allowed with the server's header, denied with the server's answer", func(t *testing.T) {
		r := hostGet(t, "grpc.test", base+"/a", token)
		if r.status != 200 || !strings.HasPrefix(r.body, "x-authz-user=grpc-user@grpc ") {
			t.Errorf("allowed: %d %q, want the server's x-authz-user naming the VirtualService", r.status, r.body)
		}
		r = hostGet(t, "grpc.test", base+"/a", map[string]string{"x-token": "nope", "x-authz-user": "forged"})
		if r.status != 403 || r.body != "denied by grpc\n" {
			t.Errorf("denied: %d %q, want the server's 403", r.status, r.body)
		}
	})
	t.Run("gRPC: an opted-out route is not asked", func(t *testing.T) {
		if r := hostGet(t, "grpc.test", base+"/open", nil); r.status != 200 {
			t.Errorf("got %d %q", r.status, r.body)
		}
	})
	t.Run("HTTP: allowed with the listed header only, denied with the server's answer", func(t *testing.T) {
		r := hostGet(t, "http.test", base+"/orders", token)
		if r.status != 200 || r.body != "x-authz-user= x-user=http-user x-not-forwarded= failure-mode-allowed=" {
			t.Errorf("allowed: %d %q, want x-user only", r.status, r.body)
		}
		r = hostGet(t, "http.test", base+"/orders", nil)
		if r.status != 401 || r.body != "denied by http for /check/orders\n" || r.header.Get("x-denied-by") != "http-authz" {
			t.Errorf("denied: %d %q %v, want the server's 401 (path prefixed)", r.status, r.body, r.header)
		}
	})
	t.Run("server down: deny mode answers 403, allow mode lets requests through", func(t *testing.T) {
		stopGRPC()
		stopHTTP()
		eventually(t, 10*time.Second, "deny mode answers 403 without its server", func() error {
			if r := hostGet(t, "grpc.test", base+"/", token); r.status != 403 {
				return fmt.Errorf("gRPC deny mode: %d %q", r.status, r.body)
			}
			if r := hostGet(t, "http.test", base+"/", token); r.status != 403 {
				return fmt.Errorf("HTTP deny mode: %d %q", r.status, r.body)
			}
			return nil
		})
		r := hostGet(t, "lenient.test", base+"/", nil)
		if r.status != 200 || !strings.HasSuffix(r.body, "failure-mode-allowed=true") {
			t.Errorf("allow mode: %d %q, want the request through, marked", r.status, r.body)
		}
	})
}
