package e2e

import (
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestUpstreamTLS sends plain HTTP through the gateway to Go HTTPS backends and checks that
// Envoy originates TLS with the configured SNI and verifies the backend against the configured
// CA (a different CA fails with 503), and that a backend requiring a client certificate
// answers only the Upstream that has certFile/keyFile (503 without them).
func TestUpstreamTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	newTestCA(t, dir, "other-ca")
	serverCert := ca.issue(t, dir, "backend.example.com", x509.ExtKeyUsageServerAuth)
	ca.issue(t, dir, "client.portico", x509.ExtKeyUsageClientAuth)

	plain := newHTTPSBackend(t, "plain-tls", &tls.Config{Certificates: []tls.Certificate{serverCert}})
	mutual := newHTTPSBackend(t, "mutual-tls", &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool,
	})

	port := envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	// Relative paths: they resolve against the configuration file's directory.
	writeFile(t, cfg, gatewayYAML(port)+fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: site}
spec:
  routes:
  - {match: {prefix: /plain}, upstream: plain}
  - {match: {prefix: /wrong-ca}, upstream: wrong-ca}
  - {match: {prefix: /mutual}, upstream: mutual}
  - {match: {prefix: /no-client-cert}, upstream: no-client-cert}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: plain}
spec:
  static: {hosts: [{address: 127.0.0.1, port: %[1]d}]}
  options:
    tls: {sni: backend.example.com, caFile: ca.crt}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: wrong-ca}
spec:
  static: {hosts: [{address: 127.0.0.1, port: %[1]d}]}
  options:
    tls: {sni: backend.example.com, caFile: other-ca.crt}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: mutual}
spec:
  static: {hosts: [{address: 127.0.0.1, port: %[2]d}]}
  options:
    tls: {sni: backend.example.com, caFile: ca.crt, certFile: client.portico.crt, keyFile: client.portico.key}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: no-client-cert}
spec:
  static: {hosts: [{address: 127.0.0.1, port: %[2]d}]}
  options:
    tls: {sni: backend.example.com, caFile: ca.crt}
`, plain.port, mutual.port))
	startReady(t, cfg)

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "", base+"/plain", 200, "plain-tls sni=backend.example.com client=")
	expectBody(t, "", base+"/mutual", 200, "mutual-tls sni=backend.example.com client=client.portico")
	for _, path := range []string{"/wrong-ca", "/no-client-cert"} {
		code, body, err := get("", base+path)
		if err != nil || code != http.StatusServiceUnavailable {
			t.Errorf("GET %s: got %d %q, %v; want 503 (the TLS handshake must fail)", path, code, body, err)
		}
	}
	if n := plain.requests(); n != 1 {
		t.Errorf("plain backend answered %d requests, want 1 (the wrong-CA Upstream must not reach it)", n)
	}
	if n := mutual.requests(); n != 1 {
		t.Errorf("mutual-TLS backend answered %d requests, want 1 (only the Upstream with a client certificate)", n)
	}
}

// httpsBackend is an HTTPS server on loopback that answers with its name, the SNI name it was
// reached by and the common name of the client's certificate, if any.
type httpsBackend struct {
	port int
	mu   sync.Mutex
	seen int
}

func newHTTPSBackend(t *testing.T, name string, cfg *tls.Config) *httpsBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &httpsBackend{port: l.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{
		TLSConfig: cfg,
		// Handshake failures are the point of some cases; keep them out of the test log.
		ErrorLog: log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b.mu.Lock()
			b.seen++
			b.mu.Unlock()
			client := ""
			if len(r.TLS.PeerCertificates) > 0 {
				client = r.TLS.PeerCertificates[0].Subject.CommonName
			}
			fmt.Fprintf(w, "%s sni=%s client=%s", name, r.TLS.ServerName, client)
		}),
	}
	go srv.ServeTLS(l, "", "")
	t.Cleanup(func() { srv.Close() })
	return b
}

func (b *httpsBackend) requests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seen
}

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

// newTestCA writes dir/name.crt (and its key), a self-signed CA certificate.
func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	cert, key := writeCert(t, dir, name, &x509.Certificate{
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}, nil, nil)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue writes dir/name.crt and dir/name.key, a certificate for name signed by the CA, and
// returns it loaded.
func (ca *testCA) issue(t *testing.T, dir, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	writeCert(t, dir, name, &x509.Certificate{
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}, ca.cert, ca.key)
	c, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
