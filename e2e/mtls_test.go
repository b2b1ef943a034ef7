package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// xfccBackend answers every request with the x-forwarded-client-cert header it received, or
// "none" when there was none.
func xfccBackend(t *testing.T) *backend {
	t.Helper()
	return namedBackend(t, "identity", func(w http.ResponseWriter, r *http.Request) {
		values := r.Header.Values("X-Forwarded-Client-Cert")
		if len(values) == 0 {
			values = []string{"none"}
		}
		fmt.Fprint(w, strings.Join(values, "\n"))
	})
}

// TestMutualTLS runs a Gateway that requires client certificates (with SAN matchers), one that
// makes them optional, and a plain HTTP Gateway, all in front of a backend that echoes the
// x-forwarded-client-cert header it receives; then it replaces the CA file.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := writeCert(t, dir, "ca", &x509.Certificate{
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	writeSelfSigned(t, dir, "gateway.example.com")
	client := func(name string) tls.Certificate {
		writeCert(t, dir, name, &x509.Certificate{
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}, ca, caKey)
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	alice := client("alice.example.com")
	bob := client("bob.clients.example.com")
	mallory := client("mallory.example.org")
	// Signed by another CA, with a name that would match.
	otherDir := t.TempDir()
	otherCA, otherKey := writeCert(t, otherDir, "other-ca", &x509.Certificate{
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}, nil, nil)
	strangerDir := t.TempDir()
	writeCert(t, strangerDir, "alice.example.com", &x509.Certificate{
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, otherCA, otherKey)
	stranger, err := tls.LoadX509KeyPair(filepath.Join(strangerDir, "alice.example.com.crt"), filepath.Join(strangerDir, "alice.example.com.key"))
	if err != nil {
		t.Fatal(err)
	}

	be := xfccBackend(t)
	required, optional, plain := envoytest.FreePort(t), envoytest.FreePort(t), envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	gatewayTLS := `  tls:
    certificates: [{certFile: gateway.example.com.crt, keyFile: gateway.example.com.key}]
    clientValidation:
      caFile: ca.crt
`
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: partners}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  protocol: HTTPS
%s      subjectAltNames:
      - exact: alice.example.com
      - suffix: .clients.example.com
---
apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: portal}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  protocol: HTTPS
%s      mode: optional
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
  routes:
  - match: {prefix: /}
    upstream: identity
%s`, required, gatewayTLS, optional, gatewayTLS, plain, be.upstreamYAML()))
	p := startReady(t, cfg)

	// The gateway's certificate is self-signed: trust exactly it.
	gwCert, err := tls.LoadX509KeyPair(filepath.Join(dir, "gateway.example.com.crt"), filepath.Join(dir, "gateway.example.com.key"))
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(gwCert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	// call sends GET / to port with the client certificate cert (none when nil) and a forged
	// x-forwarded-client-cert header, and returns what the backend saw.
	const forged = "By=spiffe://attacker;Hash=00;Subject=\"CN=admin\";DNS=admin.example.com"
	call := func(scheme string, port int, cert *tls.Certificate) (string, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "gateway.example.com", RootCAs: roots}, DisableKeepAlives: true}
		if cert != nil {
			// Always present it, even when the gateway's list of acceptable CAs does not name
			// its issuer (Go's client would then send none).
			tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
		}
		c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("%s://127.0.0.1:%d/", scheme, port), nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("X-Forwarded-Client-Cert", forged)
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %d: %s", resp.StatusCode, body)
		}
		return string(body), nil
	}

	for _, tc := range []struct {
		name   string
		scheme string
		port   int
		cert   *tls.Certificate
		// want is what the backend's x-forwarded-client-cert must contain; "" means the
		// request must fail.
		want []string
	}{
		{"required/exact SAN", "https", required, &alice, []string{`Subject="CN=alice.example.com"`, "DNS=alice.example.com", "Hash="}},
		{"required/suffix SAN", "https", required, &bob, []string{"DNS=bob.clients.example.com"}},
		{"required/no certificate", "https", required, nil, nil},
		{"required/SAN does not match", "https", required, &mallory, nil},
		{"required/other CA", "https", required, &stranger, nil},
		{"optional/no certificate", "https", optional, nil, []string{"none"}},
		{"optional/certificate", "https", optional, &mallory, []string{"DNS=mallory.example.org"}},
		{"optional/other CA", "https", optional, &stranger, nil},
		{"plain HTTP", "http", plain, nil, []string{"none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == nil {
				// Rejected: wait for the gateway to answer a good client first, so that a
				// failure here is the rejection and not a listener still starting.
				eventually(t, 15*time.Second, "the gateway serves a good client", func() error {
					_, err := call(tc.scheme, tc.port, &alice)
					return err
				})
				if got, err := call(tc.scheme, tc.port, tc.cert); err == nil {
					t.Fatalf("request succeeded, backend saw %q; want the TLS handshake refused", got)
				} else {
					t.Logf("refused: %v", err)
				}
				return
			}
			var got string
			eventually(t, 15*time.Second, "a request through "+tc.name, func() error {
				var err error
				got, err = call(tc.scheme, tc.port, tc.cert)
				return err
			})
			t.Logf("backend saw x-forwarded-client-cert: %s", got)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("backend saw x-forwarded-client-cert %q, want it to contain %q", got, w)
				}
			}
			if strings.Contains(got, "attacker") || strings.Contains(got, "admin") || strings.Count(got, "Hash=") > 1 {
				t.Errorf("the client's forged header reached the backend: %q", got)
			}
		})
	}

	// Replacing the CA file trusts the new CA at once, with no restart: it is its own Secret.
	pid := p.envoyPID()
	otherPEM, err := os.ReadFile(filepath.Join(otherDir, "other-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "ca.crt"), string(otherPEM))
	eventually(t, 10*time.Second, "the gateway trusts the replacement CA", func() error {
		_, err := call("https", required, &stranger)
		return err
	})
	if got, err := call("https", required, &alice); err == nil {
		t.Errorf("a client of the replaced CA still gets through after the CA was replaced (backend saw %q)", got)
	}
	if got := p.envoyPID(); got != pid {
		t.Errorf("envoy pid %d after the CA was replaced, was %d", got, pid)
	}
}
