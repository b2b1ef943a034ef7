package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestHSTS runs an HTTPS Gateway with tls.hsts next to a plain HTTP Gateway serving the same
// VirtualService: every HTTPS response (proxied, direct, refused by authorization, no route)
// must carry the Gateway's Strict-Transport-Security, replacing a backend's own; no plain HTTP
// response may carry one from the Gateway.
func TestHSTS(t *testing.T) {
	dir := t.TempDir()
	writeSelfSigned(t, dir, "site")
	be := namedBackend(t, "app", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", "max-age=1")
		fmt.Fprint(w, "app")
	})
	secure, plain := envoytest.FreePort(t), envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: secure}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  protocol: HTTPS
  tls:
    certificates: [{certFile: site.crt, keyFile: site.key}]
    hsts: {maxAge: 31536000, includeSubDomains: true, preload: true}
---
apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: plain}
spec: {bindAddress: 127.0.0.1, bindPort: %d}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: site}
spec:
  domains: [site]
  routes:
  - match: {prefix: /app}
    upstream: app
  - match: {prefix: /denied}
    directResponse: {status: 200, body: "never\n"}
    security: {authorization: {deny: [127.0.0.0/8]}}
  - match: {prefix: /}
    directResponse: {status: 200, body: "direct\n"}
%s`, secure, plain, be.upstreamYAML()))
	startReady(t, cfg)

	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: "site", InsecureSkipVerify: true},
	}}
	t.Cleanup(c.CloseIdleConnections)
	call := func(url, host string) (int, string, error) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return 0, "", err
		}
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Strict-Transport-Security"), nil
	}
	const want = "max-age=31536000; includeSubDomains; preload"
	for _, tc := range []struct {
		name, scheme string
		port         int
		path, host   string
		status       int
		hsts         string
	}{
		{"direct response", "https", secure, "/", "site", 200, want},
		{"proxied, the backend's own header replaced", "https", secure, "/app", "site", 200, want},
		{"refused by authorization", "https", secure, "/denied", "site", 403, want},
		{"no route for the host", "https", secure, "/", "elsewhere", 404, want},
		{"plain HTTP: no header from the gateway", "http", plain, "/", "site", 200, ""},
		{"plain HTTP: the backend's own header passes", "http", plain, "/app", "site", 200, "max-age=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := fmt.Sprintf("%s://127.0.0.1:%d%s", tc.scheme, tc.port, tc.path)
			eventually(t, 15*time.Second, "GET "+url, func() error {
				status, hsts, err := call(url, tc.host)
				if err != nil {
					return err
				}
				if status != tc.status || hsts != tc.hsts {
					return fmt.Errorf("got %d with strict-transport-security %q, want %d with %q", status, hsts, tc.status, tc.hsts)
				}
				return nil
			})
		})
	}
}
