package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// uriBackend answers every request with its request URI: path and query as received.
func uriBackend(t *testing.T, name string) *backend {
	t.Helper()
	return namedBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.URL.RequestURI())
	})
}

// TestHTTPSRedirect checks both one-line redirects through the real Envoy: an HTTP Gateway
// with options.httpsRedirect sends every request to the HTTPS Gateway's port, and a
// VirtualService with options.httpsRedirect redirects on a plain HTTP Gateway (to the default
// 443) while a VirtualService next to it is served. Locations keep the host, path and query,
// and following one reaches the route over TLS.
func TestHTTPSRedirect(t *testing.T) {
	dir := t.TempDir()
	cert := writeSelfSigned(t, dir, "app.example.com")
	be := uriBackend(t, "app")
	web, secure, plain := envoytest.FreePort(t), envoytest.FreePort(t), envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: web}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  options: {httpsRedirect: true, httpsRedirectPort: %d}
---
apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: secure}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  protocol: HTTPS
  tls:
    certificates: [{certFile: app.example.com.crt, keyFile: app.example.com.key}]
---
apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: plain}
spec: {bindAddress: 127.0.0.1, bindPort: %d}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: app}
spec:
  domains: [app.example.com, shop.example.com]
  options: {httpsRedirect: true}
  routes:
  - match: {prefix: /}
    upstream: app
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: blog}
spec:
  domains: [blog.example.com]
  routes:
  - match: {prefix: /}
    directResponse: {status: 200, body: "blog\n"}
%s`, web, secure, secure, plain, be.upstreamYAML()))
	startReady(t, cfg)

	roots := x509.NewCertPool()
	roots.AddCert(cert)
	// Every host name resolves to loopback; the port is the one the URL names.
	dialer := &net.Dialer{Timeout: 2 * time.Second}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", port))
		},
		DisableKeepAlives: true,
	}
	noFollow := &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	follow := &http.Client{Transport: tr, Timeout: 5 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			// Domains match Host headers without a port, as a browser sends them for 443.
			req.Host = req.URL.Hostname()
			return nil
		}}

	for _, tc := range []struct {
		name, url    string
		status       int
		location     string
		followedBody string
	}{
		{"gateway redirect", fmt.Sprintf("http://app.example.com:%d/a/b?x=1&y=two%%20words", web),
			http.StatusMovedPermanently, fmt.Sprintf("https://app.example.com:%d/a/b?x=1&y=two%%20words", secure), "/a/b?x=1&y=two%20words"},
		{"gateway redirect of any host", fmt.Sprintf("http://unknown.example.net:%d/?q", web),
			http.StatusMovedPermanently, fmt.Sprintf("https://unknown.example.net:%d/?q", secure), ""},
		{"virtual service redirect", fmt.Sprintf("http://shop.example.com:%d/cart?id=7", plain),
			http.StatusMovedPermanently, "https://shop.example.com:443/cart?id=7", ""},
		{"neighbour served", fmt.Sprintf("http://blog.example.com:%d/post", plain), http.StatusOK, "", ""},
		{"same virtual service over https", fmt.Sprintf("https://app.example.com:%d/direct?z=9", secure), http.StatusOK, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Domains match Host headers without a port, as browsers send them for 80 and 443.
			req.Host = req.URL.Hostname()
			var resp *http.Response
			eventually(t, 15*time.Second, "GET "+tc.url, func() error {
				resp, err = noFollow.Do(req)
				if err != nil {
					return err
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					return fmt.Errorf("status %d, want %d", resp.StatusCode, tc.status)
				}
				return nil
			})
			if got := resp.Header.Get("Location"); got != tc.location {
				t.Fatalf("Location %q, want %q", got, tc.location)
			}
			if tc.followedBody == "" {
				return
			}
			freq, err := http.NewRequest(http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			freq.Host = freq.URL.Hostname()
			fresp, err := follow.Do(freq)
			if err != nil {
				t.Fatalf("following the redirect: %v", err)
			}
			defer fresp.Body.Close()
			body, err := io.ReadAll(fresp.Body)
			if err != nil || fresp.StatusCode != http.StatusOK || string(body) != tc.followedBody || fresp.TLS == nil {
				t.Fatalf("after the redirect: %d %q (tls %v, %v), want 200 %q over TLS", fresp.StatusCode, body, fresp.TLS != nil, err, tc.followedBody)
			}
		})
	}
}
