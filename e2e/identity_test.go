package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"github.com/portico-gw/portico/internal/envoytest"
)

// identityWitness is a user's ext_authz server that allows everything and tells the upstream,
// in x-witnessed-identity, which x-portico-identity it was shown ("none" without one): what a
// server that trusts the header would have believed.
type identityWitness struct {
	authv3.UnimplementedAuthorizationServer
}

func (identityWitness) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	seen := req.GetAttributes().GetRequest().GetHttp().GetHeaders()["x-portico-identity"]
	if seen == "" {
		seen = "none"
	}
	return &authv3.CheckResponse{
		Status: &status.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{{
				Header:       &corev3.HeaderValue{Key: "x-witnessed-identity", Value: seen},
				AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
			}},
		}},
	}, nil
}

// TestExternalServerSeesOnlyVerifiedIdentity: a user's authorization server runs after
// Portico's API keys and is documented to see their verified identity. It must never see an
// x-portico-identity the client wrote: not on a route that opts out of API keys, not on a
// VirtualService without them, and not next to a real one. Nor may a client pass off an
// answered check as a failed-open one with its own x-envoy-auth-failure-mode-allowed.
func TestExternalServerSeesOnlyVerifiedIdentity(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(srv, identityWitness{})
	go srv.Serve(l)
	t.Cleanup(srv.Stop)

	api := identityEcho(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "keys.txt"), "a:"+keyPartnerA+"\n")
	port := envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: Secret
metadata: {name: partners}
spec: {type: apiKeys, file: keys.txt}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: witness}
spec:
  static: {hosts: [{address: 127.0.0.1, port: %d}]}
  options: {http2: true}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: keyed}
spec:
  domains: [keyed.test]
  security:
    apiKey: {secrets: [partners]}
    extAuth: {grpc: {upstream: witness}, timeout: 2s}
  routes:
  - match: {prefix: /open}
    upstream: api
    security: {apiKey: {disabled: true}}
  - match: {prefix: /}
    upstream: api
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: unkeyed}
spec:
  domains: [unkeyed.test]
  security:
    extAuth: {grpc: {upstream: witness}, timeout: 2s, failureMode: allow}
  routes:
  - match: {prefix: /}
    upstream: api
`, l.Addr().(*net.TCPAddr).Port)+api.upstreamYAML())
	startReady(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	forged := map[string]string{"x-portico-identity": "admin", "x-envoy-auth-failure-mode-allowed": "true"}
	eventually(t, 15*time.Second, "both authorization servers answer", func() error {
		if r := hostGet(t, "keyed.test", base+"/", map[string]string{"x-api-key": keyPartnerA}); r.status != 200 {
			return fmt.Errorf("got %d %q", r.status, r.body)
		}
		return nil
	})

	for _, c := range []struct {
		name, host, path string
		headers          map[string]string
		want             string
	}{
		{"authenticated: the verified identity", "keyed.test", "/", map[string]string{"x-api-key": keyPartnerA, "x-portico-identity": "admin"}, "server=a upstream=a failopen="},
		{"route without API keys", "keyed.test", "/open", forged, "server=none upstream= failopen="},
		{"VirtualService without API keys", "unkeyed.test", "/", forged, "server=none upstream= failopen="},
	} {
		t.Run(c.name, func(t *testing.T) {
			if r := hostGet(t, c.host, base+c.path, c.headers); r.status != 200 || r.body != c.want {
				t.Errorf("got %d %q, want %q", r.status, r.body, c.want)
			}
		})
	}
}

// identityEcho answers with the identity the authorization server saw, the one that reached
// the upstream, and the fail-open mark.
func identityEcho(t *testing.T) *backend {
	t.Helper()
	return namedBackend(t, "api", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "server=%s upstream=%s failopen=%s", r.Header.Get("x-witnessed-identity"),
			strings.Join(r.Header.Values("x-portico-identity"), ","), r.Header.Get("x-envoy-auth-failure-mode-allowed"))
	})
}
