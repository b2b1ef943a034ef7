package config

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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

// TestCertificateContentKept loads an HTTPS Gateway and expects the files' bytes in the
// configuration, and a private key that prints, logs and marshals as "[redacted]" only.
func TestCertificateContentKept(t *testing.T) {
	cfg, err := Load("testdata/valid/https.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Gateways[0].Spec.TLS.Certificates[0]
	for _, f := range []struct {
		path string
		got  []byte
	}{{c.CertFile, c.CertPEM}, {c.KeyFile, c.KeyPEM}} {
		want, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.got, want) {
			t.Errorf("content of %s not kept as read", f.path)
		}
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("tls", "key", c.KeyPEM, "certificate", c)
	js, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c),
		"%s": fmt.Sprintf("%s", c.KeyPEM), "%x": fmt.Sprintf("%x", c.KeyPEM), "%q": fmt.Sprintf("%q", c.KeyPEM),
		"slog": logged.String(), "json": string(js),
	} {
		if strings.Contains(out, "PRIVATE KEY") || strings.Contains(out, fmt.Sprintf("%x", []byte(c.KeyPEM)[:16])) ||
			strings.Contains(out, base64.StdEncoding.EncodeToString(c.KeyPEM)[:40]) {
			t.Errorf("%s shows the private key: %s", name, out)
		}
		if !strings.Contains(out, "[redacted]") {
			t.Errorf("%s does not say the key is redacted: %s", name, out)
		}
	}
}
