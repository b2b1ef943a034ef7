package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTLSErrorsNeverShowKeys loads certificates that fail in each way crypto/tls can report and
// checks that no message quotes a byte of either file: a key must never reach a log.
func TestTLSErrorsNeverShowKeys(t *testing.T) {
	certs, err := filepath.Abs("testdata/certs")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, cert, key, want string }{
		{"mismatch", "a.example.com.crt", "mismatch.key", "the private key does not match the certificate"},
		{"swapped", "a.example.com.key", "a.example.com.crt", "no PEM CERTIFICATE block"},
		{"garbage", "garbage.crt", "a.example.com.key", "no PEM CERTIFICATE block"},
		{"key is a certificate", "a.example.com.crt", "b.example.com.crt", "no PEM PRIVATE KEY block"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, key := filepath.Join(certs, tc.cert), filepath.Join(certs, tc.key)
			_, err := Parse("gw.yaml", []byte(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: secure}
spec:
  bindPort: 8443
  protocol: HTTPS
  tls:
    certificates: [{certFile: `+cert+`, keyFile: `+key+`}]
`))
			var diags Diagnostics
			if !errors.As(err, &diags) {
				t.Fatalf("want diagnostics, got %v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			for _, f := range []string{cert, key} {
				data, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
					if len(line) > 8 && strings.Contains(msg, line) {
						t.Errorf("error quotes %s: %q", filepath.Base(f), line)
					}
				}
			}
		})
	}
}

// TestTLSPathsResolveAgainstConfigFile loads a config from another directory than the working
// one and expects relative certificate paths joined to the config file's directory, the path
// Envoy is then given.
func TestTLSPathsResolveAgainstConfigFile(t *testing.T) {
	cfg, err := Load("testdata/valid/https.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tls := cfg.Gateways[0].Spec.TLS
	if got, want := tls.Certificates[0].CertFile, filepath.Join("testdata", "certs", "a.example.com.crt"); got != want {
		t.Errorf("certFile %q, want %q", got, want)
	}
	if got, want := tls.Certificates[1].KeyFile, filepath.Join("testdata", "certs", "b.example.com.key"); got != want {
		t.Errorf("keyFile %q, want %q", got, want)
	}
	if tls.MinVersion != DefaultTLSMinVersion || strings.Join(tls.ALPN, ",") != "h2,http/1.1" {
		t.Errorf("defaults not applied: minVersion %q, alpn %v", tls.MinVersion, tls.ALPN)
	}
}
