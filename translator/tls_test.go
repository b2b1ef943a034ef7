package translator_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/translator"
)

// httpsConfig writes an HTTPS Gateway whose one certificate is dir/site.crt and dir/site.key,
// copied from testdata/certs/<from>, and whose client CA file dir/ca.crt is <from>'s certificate
// too.
func httpsConfig(t *testing.T, dir, from string) string {
	t.Helper()
	for src, dst := range map[string]string{".crt": "site.crt", ".key": "site.key"} {
		data, err := os.ReadFile(filepath.Join("testdata", "certs", from+src))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o600); err != nil {
			t.Fatal(err)
		}
		if src == ".crt" {
			if err := os.WriteFile(filepath.Join(dir, "ca.crt"), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	cfg := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(cfg, []byte(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: secure}
spec:
  bindPort: 8443
  protocol: HTTPS
  tls:
    certificates: [{certFile: site.crt, keyFile: site.key}]
    clientValidation: {caFile: ca.crt}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func translate(t *testing.T, path string) *translator.Output {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	out, err := translator.Translate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSecretsCarryFiles checks that a Secret holds exactly the bytes of the files config read:
// the golden files show the key's length only.
func TestSecretsCarryFiles(t *testing.T) {
	dir := t.TempDir()
	out := translate(t, httpsConfig(t, dir, "a.example.com"))
	if len(out.Secrets) != 2 {
		t.Fatalf("%d secrets, want the certificate's and the client CA's", len(out.Secrets))
	}
	c := out.Secrets[0].GetTlsCertificate()
	for file, got := range map[string][]byte{
		"site.crt": c.GetCertificateChain().GetInlineBytes(),
		"site.key": c.GetPrivateKey().GetInlineBytes(),
		"ca.crt":   out.Secrets[1].GetValidationContext().GetTrustedCa().GetInlineBytes(),
	} {
		want, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("secret does not carry %s as it is on disk", file)
		}
	}
}

// TestRotationChangesOnlySecrets replaces a Gateway's certificate and client CA files and
// expects the same listeners, routes and clusters and changed Secrets of the same names: Envoy
// then swaps them without draining the listener.
func TestRotationChangesOnlySecrets(t *testing.T) {
	dir := t.TempDir()
	cfg := httpsConfig(t, dir, "a.example.com")
	before := translate(t, cfg)
	httpsConfig(t, dir, "b.example.com")
	after := translate(t, cfg)
	for typ, was := range before.Resources() {
		now := after.Resources()[typ]
		if len(was) != len(now) {
			t.Fatalf("%s: %d resources before, %d after", typ, len(was), len(now))
		}
		for i := range was {
			same := proto.Equal(was[i], now[i])
			if wantSame := typ != resource.SecretType; same != wantSame {
				t.Errorf("%s[%d]: unchanged=%v after rotation, want %v", typ, i, same, wantSame)
			}
		}
	}
	for i := range before.Secrets {
		if before.Secrets[i].GetName() != after.Secrets[i].GetName() {
			t.Errorf("secret renamed from %q to %q", before.Secrets[i].GetName(), after.Secrets[i].GetName())
		}
	}
}
