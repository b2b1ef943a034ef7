package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestHTTPSGateway runs an HTTPS Gateway with two certificates and checks that the SNI name a
// client sends picks the certificate, that a request through either answers from the route, and
// that ALPN negotiates HTTP/2 when the client offers it (and HTTP/1.1 when it does not).
func TestHTTPSGateway(t *testing.T) {
	dir := t.TempDir()
	roots := x509.NewCertPool()
	for _, name := range []string{"a.example.com", "b.example.com"} {
		roots.AddCert(writeSelfSigned(t, dir, name))
	}
	port := envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	// Relative paths: they resolve against the configuration file's directory.
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: secure}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  protocol: HTTPS
  tls:
    certificates:
    - {certFile: a.example.com.crt, keyFile: a.example.com.key, serverNames: [a.example.com]}
    - {certFile: b.example.com.crt, keyFile: b.example.com.key}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: site}
spec:
  routes:
  - match: {prefix: /}
    directResponse: {status: 200, body: "secure\n"}
`, port))
	p := startReady(t, cfg)

	url := fmt.Sprintf("https://127.0.0.1:%d/", port)
	if ready := "portico: gateway ready on " + strings.TrimSuffix(url, "/") + " "; !strings.Contains(p.stdout.String(), ready) {
		t.Errorf("stdout lacks %q:\n%s", ready, p.stdout)
	}
	for _, tc := range []struct {
		serverName string
		offerH2    bool
		wantProto  string
	}{
		{"a.example.com", true, "HTTP/2.0"},
		{"b.example.com", true, "HTTP/2.0"},
		{"a.example.com", false, "HTTP/1.1"},
	} {
		t.Run(fmt.Sprintf("%s/h2=%v", tc.serverName, tc.offerH2), func(t *testing.T) {
			tr := &http.Transport{
				TLSClientConfig:   &tls.Config{ServerName: tc.serverName, RootCAs: roots},
				ForceAttemptHTTP2: tc.offerH2,
			}
			if !tc.offerH2 {
				// A non-nil empty map turns Go's HTTP/2 off, so the client offers only http/1.1.
				tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
			}
			t.Cleanup(tr.CloseIdleConnections)
			c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
			eventually(t, 15*time.Second, "HTTPS request to "+tc.serverName, func() error {
				resp, err := c.Get(url)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					return err
				}
				if resp.StatusCode != http.StatusOK || string(body) != "secure\n" {
					return fmt.Errorf("got %d %q", resp.StatusCode, body)
				}
				if got := resp.TLS.PeerCertificates[0].DNSNames; !slices.Equal(got, []string{tc.serverName}) {
					t.Fatalf("certificate for %v, want %s", got, tc.serverName)
				}
				if resp.Proto != tc.wantProto {
					t.Fatalf("protocol %s, want %s (ALPN %q)", resp.Proto, tc.wantProto, resp.TLS.NegotiatedProtocol)
				}
				return nil
			})
		})
	}
}
