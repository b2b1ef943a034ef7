package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestJWTTokenRemoval checks what docs/security.md says about a verified token: it is removed
// before the request goes upstream when it came in a header or a query parameter, and left in
// place when it came in a cookie (Envoy's jwt_authn does not edit the Cookie header).
func TestJWTTokenRemoval(t *testing.T) {
	envoytest.Binary(t)
	dir := t.TempDir()
	signer := newECSigner(t, "ec-1")
	writeFile(t, filepath.Join(dir, "jwks.json"), string(jwks(t, signer)))
	api := namedBackend(t, "api", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "auth=%q query=%q cookie=%q", r.Header.Get("authorization"), r.URL.RawQuery, r.Header.Get("cookie"))
	})
	port := envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: api}
spec:
  security:
    jwt:
      providers:
      - name: corp
        issuer: https://login.example.com/
        jwks: {file: jwks.json}
        tokenFrom:
          headers: [{name: authorization, prefix: "Bearer "}]
          queryParameters: [token]
          cookies: [session]
  routes:
  - match: {prefix: /}
    upstream: api
`+api.upstreamYAML())
	startReady(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	token := signer.token(t, claims("https://login.example.com/", "", nil))
	eventually(t, 15*time.Second, "a bearer token is accepted", func() error {
		if r := sendTo(t, http.MethodGet, base+"/", "x", bearer(token)); r.status != 200 {
			return fmt.Errorf("got %d %q", r.status, r.body)
		}
		return nil
	})
	for _, c := range []struct {
		name, path, header, want string
	}{
		{"header: removed", "/?page=2", bearer(token), `auth="" query="page=2" cookie=""`},
		{"query parameter: removed", "/?page=2&token=" + token, "", `auth="" query="page=2" cookie=""`},
		{"cookie: left in place", "/?page=2", "Cookie: theme=dark; session=" + token, fmt.Sprintf(`auth="" query="page=2" cookie="theme=dark; session=%s"`, token)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var headers []string
			if c.header != "" {
				headers = append(headers, c.header)
			}
			if r := sendTo(t, http.MethodGet, base+c.path, "x", headers...); r.status != 200 || r.body != c.want {
				t.Errorf("got %d %q, want 200 %q", r.status, r.body, c.want)
			}
		})
	}
}
