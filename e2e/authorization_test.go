package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// clientFrom returns an HTTP client whose connections come from the loopback address ip, so
// that one host can play several clients. Each request gets a new connection.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext:       d.DialContext,
		DisableKeepAlives: true,
	}}
}

// TestAuthorization runs IP and header rules through Envoy's RBAC filter, with clients on
// distinct loopback addresses. "edge" trusts no proxy; "behind" trusts one, as behind a load
// balancer, so there the client address comes from x-forwarded-for.
func TestAuthorization(t *testing.T) {
	dir := t.TempDir()
	app := newBackend(t, "app")
	edgePort, behindPort := envoytest.FreePort(t), envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: edge}
spec: {bindAddress: 127.0.0.1, bindPort: %d}
---
apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: behind}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  options: {xffNumTrustedHops: 1}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: site}
spec:
  security:
    authorization:
      allow: [127.0.0.0/24]
      deny: [127.0.0.3]
      headers: [{name: x-env, exact: blocked, action: deny}]
      deniedBody: "denied by site policy\n"
  routes:
  - name: open
    match: {prefix: /open}
    upstream: app
    security: {authorization: {disabled: true}}
  - name: admin
    match: {prefix: /admin}
    upstream: app
    security:
      authorization:
        allow: [127.0.0.2]
        headers: [{name: x-admin, present: true, action: allow}]
  - match: {prefix: /}
    upstream: app
`+app.upstreamYAML(), edgePort, behindPort))
	startReady(t, cfg)
	edge := fmt.Sprintf("http://127.0.0.1:%d", edgePort)
	behind := fmt.Sprintf("http://127.0.0.1:%d", behindPort)
	const siteDenied = "denied by site policy\n"
	const defaultDenied = "access denied: the gateway's authorization rules refuse this request\n"

	eventually(t, 15*time.Second, "edge serves an allowed client", func() error {
		code, body, err := sendFrom(clientFrom("127.0.0.2"), edge+"/", nil)
		if err != nil {
			return err
		}
		if code != http.StatusOK || body != "app /" {
			return fmt.Errorf("got %d %q", code, body)
		}
		return nil
	})

	for _, tc := range []struct {
		name     string
		from     string
		url      string
		headers  map[string]string
		wantCode int
		wantBody string
	}{
		{"allowed address", "127.0.0.2", edge + "/page", nil, 200, "app /page"},
		{"denied address, even though allow covers it", "127.0.0.3", edge + "/page", nil, 403, siteDenied},
		{"address outside allow", "127.0.1.5", edge + "/page", nil, 403, siteDenied},
		{"deny header rule matches", "127.0.0.2", edge + "/page", map[string]string{"x-env": "blocked"}, 403, siteDenied},
		{"deny header rule does not match", "127.0.0.2", edge + "/page", map[string]string{"x-env": "fine"}, 200, "app /page"},
		{"route opted out", "127.0.0.3", edge + "/open", nil, 200, "app /open"},
		{"route policy: allow header missing", "127.0.0.2", edge + "/admin", nil, 403, defaultDenied},
		{"route policy: allowed", "127.0.0.2", edge + "/admin", map[string]string{"x-admin": "1"}, 200, "app /admin"},
		{"route policy replaces the site's: allowed there, not here", "127.0.0.4", edge + "/admin", map[string]string{"x-admin": "1"}, 403, defaultDenied},
		// Without trusted hops a client's x-forwarded-for is not believed.
		{"forged x-forwarded-for ignored", "127.0.0.3", edge + "/page", map[string]string{"x-forwarded-for": "127.0.0.2"}, 403, siteDenied},
		// One trusted hop: the peer is the load balancer, the client is the rightmost entry.
		{"behind a proxy: client from x-forwarded-for denied", "127.0.0.2", behind + "/page", map[string]string{"x-forwarded-for": "127.0.0.3"}, 403, siteDenied},
		{"behind a proxy: client from x-forwarded-for allowed", "127.0.0.3", behind + "/page", map[string]string{"x-forwarded-for": "127.0.0.2"}, 200, "app /page"},
		{"behind a proxy: entries left of the trusted hop ignored", "127.0.0.3", behind + "/page", map[string]string{"x-forwarded-for": "127.0.0.3, 127.0.0.2"}, 200, "app /page"},
		{"behind a proxy: no x-forwarded-for, the peer is the client", "127.0.0.3", behind + "/page", nil, 403, siteDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body, err := sendFrom(clientFrom(tc.from), tc.url, tc.headers)
			if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode || body != tc.wantBody {
				t.Errorf("from %s: got %d %q, want %d %q", tc.from, code, body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

// sendFrom does GET url with headers through c and returns status and body.
func sendFrom(c *http.Client, url string, headers map[string]string) (int, string, error) {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
