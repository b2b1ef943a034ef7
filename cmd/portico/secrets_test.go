package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/envoytest"
)

// secretsConfig is a Gateway, an Upstream, an apiKeys and an htpasswd Secret and a
// VirtualService that uses both.
const secretsConfig = validateGateway + `---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: api}
spec: {static: {hosts: [{address: 127.0.0.1, port: 9000}]}}
---
apiVersion: portico.dev/v1
kind: Secret
metadata: {name: keys}
spec: {type: apiKeys, file: keys.txt}
---
apiVersion: portico.dev/v1
kind: Secret
metadata: {name: users}
spec: {type: htpasswd, file: users.htpasswd}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  security:
    apiKey: {secrets: [keys]}
    basicAuth: {secret: users}
  routes:
  - match: {prefix: /}
    upstream: api
`

// TestValidateNeverPrintsSecrets breaks both credential files with lines full of secret
// material and checks that validate, as text and as JSON, names the lines and quotes none of
// it.
func TestValidateNeverPrintsSecrets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "portico.yaml")
	files := map[string]string{
		path: secretsConfig,
		filepath.Join(dir, "keys.txt"): "ok:GOODKEY-0123456789abcdef\n" +
			"BADLINE-SECRET-0123456789abcdef\n" +
			"dup:GOODKEY-0123456789abcdef\n",
		filepath.Join(dir, "users.htpasswd"): "alice:$apr1$SECRETSALT$SECRETHASH0123456789\n",
	}
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := call(t, "validate", path)
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	text := stdout + stderr
	for _, want := range []string{"keys.txt:2: ", "keys.txt:3: ", "users.htpasswd:1: "} {
		if !strings.Contains(text, want) {
			t.Errorf("output does not point at %s:\n%s", want, text)
		}
	}
	code, stdout, stderr = call(t, "validate", "-o", "json", path)
	if code != 1 {
		t.Fatalf("json: exit %d, want 1", code)
	}
	var report validateReport
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	lines := map[int]bool{}
	for _, p := range report.Problems {
		if filepath.Base(p.File) == "keys.txt" {
			lines[p.Line] = true
		}
	}
	if !lines[2] || !lines[3] {
		t.Errorf("json problems do not name keys.txt lines 2 and 3: %+v", report.Problems)
	}
	for _, out := range []string{text, stdout, stderr} {
		for _, secret := range []string{"GOODKEY", "SECRET"} {
			if strings.Contains(out, secret) {
				t.Errorf("output quotes secret material %q:\n%s", secret, out)
			}
		}
	}
}

// TestValidateSecretsWithEnvoy: Envoy accepts the ext_authz filter, its per-route settings
// and the cluster it names.
func TestValidateSecretsWithEnvoy(t *testing.T) {
	bin := envoytest.Binary(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "portico.yaml")
	for p, content := range map[string]string{
		path:                                 secretsConfig,
		filepath.Join(dir, "keys.txt"):       "ok:GOODKEY-0123456789abcdef\n",
		filepath.Join(dir, "users.htpasswd"): "alice:$2a$10$kJWnmC1jNk0v8Pis8ifi.OAzRr.DPlqQHZ.vK01M.mdIoKmRK0Smm\n",
	} {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, stdout, stderr := call(t, "validate", "--envoy", "--envoy-path", bin, path)
	if code != 0 || !strings.Contains(stdout, "agrees") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}
