package translator_test

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/translator"
)

// httpsConfig writes an HTTPS Gateway whose one certificate is dir/site.crt and dir/site.key,
// copied from testdata/certs/<from>, and whose client CA file dir/ca.crt is <from>'s certificate
// too; an Upstream presents the same certificate and trusts the same CA. viaSecret names the
// files once, in a tls Secret, instead of inline.
func httpsConfig(t *testing.T, dir, from string, viaSecret bool) string {
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
	gatewayTLS := `{certificates: [{certFile: site.crt, keyFile: site.key}], clientValidation: {caFile: ca.crt}}`
	upstreamTLS := `{caFile: ca.crt, certFile: site.crt, keyFile: site.key}`
	secret := ""
	if viaSecret {
		gatewayTLS = `{certificates: [{secret: site}], clientValidation: {caSecret: site}}`
		upstreamTLS = `{caSecret: site, certSecret: site}`
		secret = `---
apiVersion: portico.dev/v1
kind: Secret
metadata: {name: site}
spec: {type: tls, certFile: site.crt, keyFile: site.key, caFile: ca.crt}
`
	}
	cfg := filepath.Join(dir, "gw.yaml")
	if err := os.WriteFile(cfg, []byte(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: secure}
spec:
  bindPort: 8443
  protocol: HTTPS
  tls: `+gatewayTLS+`
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: site}
spec:
  routes: [{match: {prefix: /}, upstream: backend}]
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: backend}
spec:
  static: {hosts: [{address: 127.0.0.1, port: 9443}]}
  options: {tls: `+upstreamTLS+`}
`+secret), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// sources are the two ways of naming certificate files: inline, and in a tls Secret.
var sources = []struct {
	name      string
	viaSecret bool
}{{"inline files", false}, {"tls secret", true}}

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

// TestSecretsCarryFiles checks that the Secrets hold exactly the bytes of the files config read
// (the golden files show the key's length only), whether the files are named inline or by a tls
// Secret.
func TestSecretsCarryFiles(t *testing.T) {
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			dir := t.TempDir()
			out := translate(t, httpsConfig(t, dir, "a.example.com", src.viaSecret))
			byName := map[string]*tlsv3.Secret{}
			for _, s := range out.Secrets {
				byName[s.GetName()] = s
			}
			if len(byName) != 4 {
				t.Fatalf("secrets %v, want the Gateway's certificate and client CA and the Upstream's CA and client certificate", slices.Collect(maps.Keys(byName)))
			}
			for _, c := range []struct {
				secret, file string
				got          func(*tlsv3.Secret) []byte
			}{
				{"secure/cert-0", "site.crt", func(s *tlsv3.Secret) []byte { return s.GetTlsCertificate().GetCertificateChain().GetInlineBytes() }},
				{"secure/cert-0", "site.key", func(s *tlsv3.Secret) []byte { return s.GetTlsCertificate().GetPrivateKey().GetInlineBytes() }},
				{"secure/client-ca", "ca.crt", func(s *tlsv3.Secret) []byte { return s.GetValidationContext().GetTrustedCa().GetInlineBytes() }},
				{"upstream/backend/client-cert", "site.crt", func(s *tlsv3.Secret) []byte { return s.GetTlsCertificate().GetCertificateChain().GetInlineBytes() }},
				{"upstream/backend/client-cert", "site.key", func(s *tlsv3.Secret) []byte { return s.GetTlsCertificate().GetPrivateKey().GetInlineBytes() }},
				{"upstream/backend/ca", "ca.crt", func(s *tlsv3.Secret) []byte { return s.GetValidationContext().GetTrustedCa().GetInlineBytes() }},
			} {
				want, err := os.ReadFile(filepath.Join(dir, c.file))
				if err != nil {
					t.Fatal(err)
				}
				if sec := byName[c.secret]; sec == nil || !bytes.Equal(c.got(sec), want) {
					t.Errorf("secret %s does not carry %s as it is on disk", c.secret, c.file)
				}
			}
		})
	}
}

// TestRotationChangesOnlySecrets replaces the certificate and CA files of a Gateway and an
// Upstream and expects the same listeners, routes and clusters and changed Secrets of the same
// names: Envoy then swaps them without draining the listener or rebuilding the cluster.
func TestRotationChangesOnlySecrets(t *testing.T) {
	for _, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := httpsConfig(t, dir, "a.example.com", src.viaSecret)
			before := translate(t, cfg)
			httpsConfig(t, dir, "b.example.com", src.viaSecret)
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
		})
	}
}
