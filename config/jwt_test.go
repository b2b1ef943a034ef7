package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestJWKSKeptThroughIsolation replaces a JWKS file with a broken one: the VirtualService is
// held back with the keys it was accepted with, not re-read from the broken file, and the
// served files list the key file so that its replacement is noticed at all.
func TestJWKSKeptThroughIsolation(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "jwks.json")
	good, err := os.ReadFile("testdata/jwks/good.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keys, good, 0o644); err != nil {
		t.Fatal(err)
	}
	vs := `apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: api}
spec:
  domains: [api.example.com]
  security:
    jwt:
      providers: [{name: main, issuer: "https://issuer.example.com", jwks: {file: ` + keys + `}}]
  routes:
  - match: {prefix: /}
    upstream: a
`
	files := isoFiles(vs, vsDoc("other", "other.example.com", "a"))
	prev, err := LoadFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	if got := prev.VirtualServices[0].Spec.Security.JWT.Providers[0].JWKS.Keys(); got != string(good) {
		t.Fatalf("keys = %q, want the file's content", got)
	}
	if served := prev.ServedFiles(); len(served) != 1 || served[0] != keys {
		t.Errorf("ServedFiles() = %q, want [%q]", served, keys)
	}

	if err := os.WriteFile(keys, []byte(`{"keys": [`), 0o644); err != nil {
		t.Fatal(err)
	}
	iso, err := LoadIsolated(prev, isoFiles(vs, vsDoc("other", "other.example.com", "b")))
	if err != nil {
		t.Fatalf("LoadIsolated: %v", err)
	}
	if len(iso.Rejected) != 1 || iso.Rejected[0].Name != "api" || !iso.Rejected[0].Kept {
		t.Fatalf("rejected = %+v, want api kept", iso.Rejected)
	}
	if msg := iso.Rejected[0].Problems.Error(); !strings.Contains(msg, "is not a JSON Web Key Set") {
		t.Errorf("problem = %q", msg)
	}
	for _, v := range iso.Config.VirtualServices {
		switch v.Metadata.Name {
		case "api":
			if got := v.Spec.Security.JWT.Providers[0].JWKS.Keys(); got != string(good) {
				t.Errorf("kept keys = %q, want the last good file's content", got)
			}
		case "other":
			if got := v.Spec.Routes[0].Upstream; got != "b" {
				t.Errorf("other's change was held back too: upstream %q", got)
			}
		}
	}
}
