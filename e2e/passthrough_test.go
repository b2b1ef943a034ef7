package e2e

import (
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

// newTLSBackend starts an HTTPS server on loopback with the self-signed certificate for name
// (from writeSelfSigned in dir) that answers every request with name.
func newTLSBackend(t *testing.T, dir, name string) *net.TCPAddr {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, name)
		}),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
	}
	go srv.Serve(tls.NewListener(l, srv.TLSConfig))
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr)
}

// TestTLSPassthroughGateway runs a TCP Gateway with SNI routes in front of two HTTPS backends
// and checks that each SNI name reaches its own backend, that the client verifies the backend's
// own certificate (so the Gateway did not terminate TLS), and that a name no route takes is
// refused because there is no default route.
func TestTLSPassthroughGateway(t *testing.T) {
	dir := t.TempDir()
	roots := x509.NewCertPool()
	certs := map[string]*x509.Certificate{}
	backends := map[string]*net.TCPAddr{}
	for _, name := range []string{"a.example.com", "b.example.com"} {
		certs[name] = writeSelfSigned(t, dir, name)
		roots.AddCert(certs[name])
		backends[name] = newTLSBackend(t, dir, name)
	}
	port := envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: sni}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  protocol: TCP
  tcp:
    routes:
    - {serverNames: [a.example.com], upstream: a}
    - {serverNames: [b.example.com, "*.b.example.com"], upstream: b}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: a}
spec:
  static:
    hosts: [{address: 127.0.0.1, port: %d}]
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: b}
spec:
  static:
    hosts: [{address: 127.0.0.1, port: %d}]
`, port, backends["a.example.com"].Port, backends["b.example.com"].Port))
	startReady(t, cfg)
	url := fmt.Sprintf("https://127.0.0.1:%d/", port)

	for _, name := range []string{"a.example.com", "b.example.com"} {
		t.Run(name, func(t *testing.T) {
			// ServerName both sets SNI and is the name the backend's certificate must carry; the
			// roots hold only the backends' self-signed certificates.
			c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
				TLSClientConfig: &tls.Config{ServerName: name, RootCAs: roots},
			}}
			t.Cleanup(c.CloseIdleConnections)
			eventually(t, 20*time.Second, "HTTPS through the passthrough Gateway", func() error {
				resp, err := c.Get(url)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					return err
				}
				if string(body) != name {
					return fmt.Errorf("body %q, want %q", body, name)
				}
				peer := resp.TLS.PeerCertificates[0]
				if !peer.Equal(certs[name]) {
					return fmt.Errorf("peer certificate %q is not the backend's own", peer.Subject.CommonName)
				}
				return nil
			})
		})
	}
	t.Run("a name no route takes is refused", func(t *testing.T) {
		d := &net.Dialer{Timeout: 2 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", fmt.Sprintf("127.0.0.1:%d", port),
			&tls.Config{ServerName: "c.example.com", InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			t.Fatal("handshake with SNI c.example.com succeeded; want the connection closed")
		}
	})
}
