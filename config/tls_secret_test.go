package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestTLSSecretContentReachesReferrers loads a Gateway and an Upstream that name their
// certificates and CAs by tls Secret and expects the Secret files' bytes wherever the translator
// reads them, the files among those watched, and the key redacted when the Secret is printed.
func TestTLSSecretContentReachesReferrers(t *testing.T) {
	cfg, err := Load("testdata/valid/tls-secret.yaml")
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("testdata", "certs", name))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	gw := cfg.Gateways[0].Spec.TLS
	up := cfg.Upstreams[0].Spec.Options.TLS
	for _, c := range []struct {
		what      string
		got, want []byte
	}{
		{"gateway certificate", gw.Certificates[0].CertPEM, read("a.example.com.crt")},
		{"gateway key", gw.Certificates[0].KeyPEM, read("a.example.com.key")},
		{"inline certificate next to it", gw.Certificates[1].CertPEM, read("b.example.com.crt")},
		{"client CAs", gw.ClientValidation.CAPEM, read("a.example.com.crt")},
		{"upstream CAs", up.CAPEM, read("b.example.com.crt")},
		{"upstream client certificate", up.CertPEM, read("a.example.com.crt")},
		{"upstream client key", up.KeyPEM, read("a.example.com.key")},
	} {
		if !bytes.Equal(c.got, c.want) {
			t.Errorf("%s: not the Secret file's content", c.what)
		}
	}
	served := cfg.ServedFiles()
	for _, f := range []string{"a.example.com.crt", "a.example.com.key", "b.example.com.crt", "b.example.com.key"} {
		if !slices.Contains(served, filepath.Join("testdata", "certs", f)) {
			t.Errorf("ServedFiles() = %q lacks %s", served, f)
		}
	}
	if slices.Contains(served, "") {
		t.Errorf("ServedFiles() = %q holds an empty path", served)
	}
	sec := cfg.SecretNamed("site")
	js, err := json.Marshal(sec.Spec)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"%+v": fmt.Sprintf("%+v", sec.Spec), "%#v": fmt.Sprintf("%#v", sec), "json": string(js)} {
		if strings.Contains(out, "PRIVATE KEY") || !strings.Contains(out, "[redacted]") {
			t.Errorf("%s of a tls Secret shows its key or does not say it is redacted: %s", name, out)
		}
	}
}

// TestTLSSecretErrorsNeverShowKeys breaks a tls Secret's key pair and checks that the error
// names the files and quotes none of them.
func TestTLSSecretErrorsNeverShowKeys(t *testing.T) {
	certs, err := filepath.Abs("testdata/certs")
	if err != nil {
		t.Fatal(err)
	}
	cert, key := filepath.Join(certs, "a.example.com.crt"), filepath.Join(certs, "mismatch.key")
	_, loadErr := Parse("secret.yaml", []byte(`apiVersion: portico.dev/v1
kind: Secret
metadata: {name: site}
spec: {type: tls, certFile: `+cert+`, keyFile: `+key+`}
`))
	if loadErr == nil || !strings.Contains(loadErr.Error(), "the private key does not match the certificate") || !strings.Contains(loadErr.Error(), key) {
		t.Fatalf("got %v, want the mismatch reported with the key file's name", loadErr)
	}
	for _, f := range []string{cert, key} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if len(line) > 8 && strings.Contains(loadErr.Error(), line) {
				t.Errorf("error quotes %s: %q", filepath.Base(f), line)
			}
		}
	}
}
