package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecretValuesNeverInDiagnostics proves that the diagnostics of broken credential files
// point at lines but never quote keys or hashes: every secret in the case's files contains
// SECRET, and no message may.
func TestSecretValuesNeverInDiagnostics(t *testing.T) {
	_, err := Load("testdata/invalid/security")
	var ds Diagnostics
	if !errors.As(err, &ds) {
		t.Fatalf("err = %v, want diagnostics", err)
	}
	lines := 0
	for _, d := range ds {
		if strings.HasSuffix(d.Pos.File, ".txt") || strings.HasSuffix(d.Pos.File, ".htpasswd") {
			lines++
		}
		if strings.Contains(d.Error(), "SECRET") {
			t.Errorf("diagnostic quotes a secret: %s", d.Error())
		}
	}
	if lines != 5 {
		t.Errorf("%d diagnostics point into credential files, want 5 (3 key lines, 2 htpasswd lines):\n%v", lines, err)
	}
}

// TestSecretPathsResolveAgainstTheirFile loads a Secret with a relative path from another
// working directory: the path must name the file beside the configuration.
func TestSecretPathsResolveAgainstTheirFile(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "portico.yaml")
	writeTestFile(t, cfgPath, "apiVersion: portico.dev/v1\nkind: Secret\nmetadata: {name: k}\nspec: {type: apiKeys, file: creds/keys.txt}\n")
	writeTestFile(t, filepath.Join(dir, "creds", "keys.txt"), "ci:0123456789abcdef\n")
	cfg, err := Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.SecretNamed("k").Spec.File, filepath.Join(dir, "creds", "keys.txt"); got != want {
		t.Errorf("file = %q, want %q", got, want)
	}
}

// TestSecretErrorsAreNotIsolated: a credential file that does not parse rejects the whole
// change, while a VirtualService naming a missing Secret is held back alone.
func TestSecretErrorsAreNotIsolated(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.txt")
	writeTestFile(t, keys, "ci:0123456789abcdef\n")
	secret := "apiVersion: portico.dev/v1\nkind: Secret\nmetadata: {name: k}\nspec: {type: apiKeys, file: " + keys + "}\n"
	protected := func(name, secretName string) string {
		return strings.Replace(vsDoc(name, name+".example.com", "a"), "spec:\n", "spec:\n  security: {apiKey: {secrets: ["+secretName+"]}}\n", 1)
	}
	iso := mustIsolate(t, nil, isoFiles(secret, protected("shop", "k"), protected("blog", "missing")))
	if got := strings.Join(rejectedNames(iso), ","); got != "VirtualService/blog kept=false" {
		t.Errorf("rejected %s, want only blog", got)
	}
	writeTestFile(t, keys, "ci:short\n")
	if _, err := LoadIsolated(nil, isoFiles(secret, protected("shop", "k"))); err == nil || !strings.Contains(err.Error(), "keys.txt:1: Secret \"k\"") {
		t.Errorf("broken key file: err = %v, want the whole change rejected at keys.txt:1", err)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
