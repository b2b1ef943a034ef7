package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestCipherSuites restricts an HTTPS Gateway to one TLS 1.2 cipher suite and checks, with
// clients that offer exactly one suite, that only that one completes a handshake, while TLS 1.3
// (whose suites are fixed) still works.
func TestCipherSuites(t *testing.T) {
	dir := t.TempDir()
	roots := x509.NewCertPool()
	roots.AddCert(writeSelfSigned(t, dir, "site.example.com"))
	port := envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: secure}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  protocol: HTTPS
  tls:
    cipherSuites: [ECDHE-ECDSA-CHACHA20-POLY1305]
    certificates: [{certFile: site.example.com.crt, keyFile: site.example.com.key}]
`, port))
	startReady(t, cfg)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	handshake := func(version uint16, suite uint16) (uint16, error) {
		conf := &tls.Config{ServerName: "site.example.com", RootCAs: roots, MinVersion: version, MaxVersion: version}
		if suite != 0 {
			conf.CipherSuites = []uint16{suite}
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr, conf)
		if err != nil {
			return 0, err
		}
		defer conn.Close()
		return conn.ConnectionState().CipherSuite, nil
	}
	eventually(t, 15*time.Second, "a handshake with the allowed suite", func() error {
		got, err := handshake(tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256)
		if err == nil && got != tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 {
			t.Fatalf("negotiated %s", tls.CipherSuiteName(got))
		}
		return err
	})
	for _, suite := range []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384} {
		if got, err := handshake(tls.VersionTLS12, suite); err == nil {
			t.Errorf("a client offering only %s negotiated %s; want the handshake refused", tls.CipherSuiteName(suite), tls.CipherSuiteName(got))
		}
	}
	if _, err := handshake(tls.VersionTLS13, 0); err != nil {
		t.Errorf("TLS 1.3 handshake: %v", err)
	}
}
