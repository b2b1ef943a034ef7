package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestTLSSecretRotation runs an HTTPS Gateway whose certificate and client CAs come from a tls
// Secret, then replaces the Secret's files: the new certificate must be served and the new CAs
// trusted within rotationBound, with the same Envoy, and no output may show a private key.
func TestTLSSecretRotation(t *testing.T) {
	dir := t.TempDir()
	confDir, certDir := filepath.Join(dir, "conf"), filepath.Join(dir, "tls")
	for _, d := range []string{confDir, certDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Two client CAs, each with one client; the Secret trusts the first, then the second.
	clients := map[string]tls.Certificate{}
	for _, name := range []string{"first", "second"} {
		ca := newTestCA(t, dir, name+"-ca")
		clients[name] = ca.issue(t, dir, name+"-client", x509.ExtKeyUsageClientAuth)
	}
	install := func(from, to string) {
		t.Helper()
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, to, string(data))
	}
	var keys [][]byte
	newSiteCert := func() *x509.Certificate {
		t.Helper()
		cert, key := installSiteCert(t, certDir, install)
		keys = append(keys, key)
		return cert
	}
	first := newSiteCert()
	install(filepath.Join(dir, "first-ca.crt"), filepath.Join(certDir, "ca.crt"))

	port := envoytest.FreePort(t)
	addr, adminFlag := adminAddr(t)
	cfg := filepath.Join(confDir, "portico.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Secret
metadata: {name: site}
spec: {type: tls, certFile: ../tls/site.crt, keyFile: ../tls/site.key, caFile: ../tls/ca.crt}
---
apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: secure}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  protocol: HTTPS
  tls:
    certificates: [{secret: site}]
    clientValidation: {caSecret: site, mode: optional}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: site}
spec:
  routes:
  - match: {prefix: /}
    directResponse: {status: 200, body: "secure\n"}
`, port))
	p := startReady(t, cfg, adminFlag...)
	target := fmt.Sprintf("127.0.0.1:%d", port)
	waitForSerial(t, target, first.SerialNumber, rotationBound)
	pid := p.envoyPID()

	// call sends GET / presenting client (none when nil) and reports whether it was served.
	call := func(client *tls.Certificate) error {
		cfg := &tls.Config{ServerName: "site", InsecureSkipVerify: true}
		if client != nil {
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return client, nil }
		}
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
		resp, err := c.Get("https://" + target + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != "secure\n" {
			return fmt.Errorf("got %d %q", resp.StatusCode, body)
		}
		return nil
	}
	trusts := func(what string, good, bad tls.Certificate) {
		t.Helper()
		eventually(t, rotationBound, what, func() error {
			if err := call(&good); err != nil {
				return fmt.Errorf("trusted client refused: %w", err)
			}
			if call(&bad) == nil {
				return fmt.Errorf("client of the other CA served")
			}
			return nil
		})
	}
	trusts("the Secret's first CA is trusted, the second is not", clients["first"], clients["second"])

	began := time.Now()
	second := newSiteCert()
	install(filepath.Join(dir, "second-ca.crt"), filepath.Join(certDir, "ca.crt"))
	waitForSerial(t, target, second.SerialNumber, rotationBound)
	trusts("after the CA file is replaced, the second CA is trusted and the first is not", clients["second"], clients["first"])
	t.Logf("rotated certificate and CAs served %s after the files were replaced", time.Since(began).Round(time.Millisecond))
	if err := call(nil); err != nil {
		t.Errorf("optional mode: a client without a certificate is refused: %v", err)
	}
	if got := p.envoyPID(); got != pid {
		t.Errorf("envoy pid %d after the rotation, was %d: envoy restarted", got, pid)
	}

	outputs := map[string]string{"portico stdout": p.stdout.String(), "portico log": p.stderr.String()}
	for _, args := range [][]string{
		{"status", "--admin-address", addr},
		{"config-dump", "--admin-address", addr},
		{"validate", "-o", "json", cfg},
	} {
		out, _ := exec.Command(porticoBin, args...).CombinedOutput()
		outputs["portico "+strings.Join(args, " ")] = string(out)
	}
	if dump := outputs["portico config-dump --admin-address "+addr]; !strings.Contains(dump, `"secure/cert-0"`) {
		t.Errorf("config dump lacks the certificate's secret, so it proves nothing:\n%.2000s", dump)
	}
	expectNoKeys(t, keys, outputs)
}

// TestUpstreamClientCertificateRotation runs two Upstreams in front of one backend that
// requires a client certificate, one naming its files inline and one through a tls Secret, and
// replaces the client certificate files: the backend must see the new certificate on both within
// rotationBound, with the same Envoy.
func TestUpstreamClientCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	certDir := filepath.Join(dir, "tls")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		t.Fatal(err)
	}
	ca := newTestCA(t, certDir, "ca")
	serverCert := ca.issue(t, dir, "backend.example.com", x509.ExtKeyUsageServerAuth)
	// issueAs writes a client certificate for cn as certDir/file.crt and .key.
	issueAs := func(cn, file string) {
		t.Helper()
		staged := t.TempDir()
		ca.issue(t, staged, cn, x509.ExtKeyUsageClientAuth)
		for _, ext := range []string{".key", ".crt"} {
			data, err := os.ReadFile(filepath.Join(staged, cn+ext))
			if err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(certDir, file+ext), string(data))
		}
	}
	issueAs("inline-one.portico", "inline")
	issueAs("secret-one.portico", "client")
	be := clientNameBackend(t, &tls.Config{
		Certificates: []tls.Certificate{serverCert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool,
	})

	port := envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: site}
spec:
  routes:
  - {match: {prefix: /inline}, upstream: inline}
  - {match: {prefix: /secret}, upstream: by-secret}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: inline}
spec:
  static: {hosts: [{address: 127.0.0.1, port: %[1]d}]}
  options:
    tls: {sni: backend.example.com, caFile: tls/ca.crt, certFile: tls/inline.crt, keyFile: tls/inline.key}
---
apiVersion: portico.dev/v1
kind: Secret
metadata: {name: backend-client}
spec: {type: tls, certFile: tls/client.crt, keyFile: tls/client.key, caFile: tls/ca.crt}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: by-secret}
spec:
  static: {hosts: [{address: 127.0.0.1, port: %[1]d}]}
  options:
    tls: {sni: backend.example.com, caSecret: backend-client, certSecret: backend-client}
`, be.Port))
	p := startReady(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "", base+"/inline", 200, "client=inline-one.portico")
	expectBody(t, "", base+"/secret", 200, "client=secret-one.portico")
	pid := p.envoyPID()

	began := time.Now()
	issueAs("inline-two.portico", "inline")
	issueAs("secret-two.portico", "client")
	for path, want := range map[string]string{"/inline": "client=inline-two.portico", "/secret": "client=secret-two.portico"} {
		eventually(t, rotationBound, "the backend sees the rotated client certificate on "+path, func() error {
			code, body, err := get("", base+path)
			if err != nil || code != http.StatusOK || body != want {
				return fmt.Errorf("got %d %q, %v", code, body, err)
			}
			return nil
		})
	}
	t.Logf("rotated client certificates presented %s after the files were replaced", time.Since(began).Round(time.Millisecond))
	if got := p.envoyPID(); got != pid {
		t.Errorf("envoy pid %d after the rotation, was %d: envoy restarted", got, pid)
	}
}

// clientNameBackend is an HTTPS server on loopback that answers with the common name of the
// client's certificate. It closes every connection after one request, so each request is a new
// handshake and shows the certificate Envoy presents now, not when a pooled connection opened.
func clientNameBackend(t *testing.T, cfg *tls.Config) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: cfg,
		ErrorLog:  log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "client=%s", r.TLS.PeerCertificates[0].Subject.CommonName)
		}),
	}
	srv.SetKeepAlivesEnabled(false)
	go srv.ServeTLS(l, "", "")
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr)
}
