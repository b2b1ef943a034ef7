package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestDelegatedRouteSecurity puts every security setting on the routes of a RouteTable that a
// VirtualService delegates to. The VirtualService has no authorization policy, requires JWT and
// asks an HTTP authorization server; the RouteTable's routes add their own IP policy (with its
// own 403 body), opt out of JWT, extAuth or everything, and ask for an API key. Each must behave
// as it would on the VirtualService's own routes.
func TestDelegatedRouteSecurity(t *testing.T) {
	dir := t.TempDir()
	signer := newECSigner(t, "ec-1")
	writeFile(t, filepath.Join(dir, "jwks.json"), string(jwks(t, signer)))
	const apiKey = "team-key-0123456789abcdef"
	writeFile(t, filepath.Join(dir, "keys.txt"), "team:"+apiKey+"\n")
	authzPort, _ := startHTTPAuthz(t)
	api := echoBackend(t)
	port := envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+api.upstreamYAML()+fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: authz-http}
spec:
  static: {hosts: [{address: 127.0.0.1, port: %d}]}
---
apiVersion: portico.dev/v1
kind: Secret
metadata: {name: team-keys}
spec: {type: apiKeys, file: keys.txt}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: portal}
spec:
  security:
    jwt:
      providers:
      - {name: corp, issuer: "https://issuer.test", audiences: [portal], jwks: {file: jwks.json}}
    extAuth:
      http: {upstream: authz-http, pathPrefix: /check, requestHeaders: [x-token]}
      timeout: 500ms
  routes:
  - match: {prefix: /team/}
    delegate: {name: team}
  - match: {prefix: /}
    upstream: api
---
apiVersion: portico.dev/v1
kind: RouteTable
metadata: {name: team}
spec:
  routes:
  - name: admin
    match: {prefix: /team/admin}
    upstream: api
    security:
      authorization: {deny: [127.0.0.0/8], deniedBody: "team admins only\n"}
  - name: lan
    match: {prefix: /team/lan}
    upstream: api
    security:
      authorization: {allow: [127.0.0.1]}
      jwt: {disabled: true}
      extAuth: {disabled: true}
  - name: public
    match: {prefix: /team/public}
    upstream: api
    security: {disabled: true}
  - name: nojwt
    match: {prefix: /team/nojwt}
    upstream: api
    security: {jwt: {disabled: true}}
  - name: keys
    match: {prefix: /team/keys}
    upstream: api
    security:
      jwt: {disabled: true}
      extAuth: {disabled: true}
      apiKey: {secrets: [team-keys]}
  - name: private
    match: {prefix: /team/private}
    upstream: api
`, authzPort))
	startReady(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	token := signer.token(t, claims("https://issuer.test", "portal", map[string]any{"sub": "alice"}))

	for _, c := range []struct {
		name    string
		path    string
		headers map[string]string
		status  int
		bodyHas string
		why     string
	}{
		{"own policy refuses with its own body", "/team/admin", nil, 403, "team admins only", "an IP policy on a RouteTable route of a VirtualService without one"},
		{"own policy refuses even a fully authenticated request", "/team/admin", map[string]string{"authorization": "Bearer " + token, "x-token": "let-me-in"}, 403, "team admins only", "authorization runs before authentication"},
		{"own allow policy lets the client through", "/team/lan", nil, 200, "identity=", "allow: [127.0.0.1] with JWT and extAuth off"},
		{"opted out of everything", "/team/public", nil, 200, "identity=", "security: {disabled: true}"},
		{"inherited JWT: no token", "/team/private", map[string]string{"x-token": "let-me-in"}, 401, "Jwt is missing", "the VirtualService requires a token"},
		{"inherited JWT and extAuth: both satisfied", "/team/private", map[string]string{"authorization": "Bearer " + token, "x-token": "let-me-in"}, 200, "identity=", "a valid token and the server's consent"},
		{"inherited extAuth refuses", "/team/nojwt", nil, 401, "denied by http for /check/team/nojwt", "JWT is off, extAuth still asks the server"},
		{"inherited extAuth consents", "/team/nojwt", map[string]string{"x-token": "let-me-in"}, 200, "identity=", "the server lets x-token: let-me-in through"},
		{"own API key: none", "/team/keys", nil, 401, "", "apiKey on a RouteTable route"},
		{"own API key: valid", "/team/keys", map[string]string{"x-api-key": apiKey}, 200, "identity=team", "the key's identity goes upstream"},
	} {
		t.Run(c.name, func(t *testing.T) {
			eventually(t, 15*time.Second, fmt.Sprintf("GET %s -> %d (%s)", c.path, c.status, c.why), func() error {
				r := getWith(t, base+c.path, c.headers)
				if r.status != c.status || !strings.Contains(r.body, c.bodyHas) {
					return fmt.Errorf("got %d %q", r.status, r.body)
				}
				return nil
			})
		})
	}
}
