package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// call runs the program in-process, as main would, and returns its exit code and output.
func call(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestUsageErrorsPrintHelp(t *testing.T) {
	for _, args := range [][]string{
		{"run", "--bogus"},
		{"run", "extra-argument"},
		{"validate"},
		{"--log-level", "loud", "run"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, stderr := call(t, args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if !strings.HasPrefix(stderr, "error: ") || !strings.Contains(stderr, "Usage:") {
				t.Errorf("want an error line and usage help, got:\n%s", stderr)
			}
		})
	}
}

func TestValidateReportsFileAndLine(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "gw.yaml")
	bad := "apiVersion: portico.dev/v1\nkind: Gateway\nmetadata: {name: web}\nspec: {bindPort: 8080, bindAdress: 127.0.0.1}\n"
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := call(t, "validate", path)
	if code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(stderr, path+":4:") || !strings.Contains(stderr, "bindAddress") {
		t.Errorf("error does not name %s:4 and suggest bindAddress:\n%s", path, stderr)
	}
	if strings.Contains(stderr, "Usage:") {
		t.Errorf("a configuration error is not a usage error:\n%s", stderr)
	}

	code, stdout, _ := call(t, "validate", filepath.Join("..", "..", "examples", "quickstart.yaml"))
	if code != 0 || !strings.Contains(stdout, "valid") {
		t.Errorf("quickstart example: exit %d, output %q", code, stdout)
	}
}

func TestBootstrapPrintsSocketInStateDir(t *testing.T) {
	state := filepath.Join(os.TempDir(), "p-bs") // short enough for a Unix socket path
	code, stdout, stderr := call(t, "bootstrap", "-c", filepath.Join("..", "..", "examples", "quickstart.yaml"), "--state-dir", state)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"path: " + filepath.Join(state, "run", "xds.sock"), "portico_xds", "address: 127.0.0.1"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("bootstrap lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat(state); err == nil {
		t.Errorf("bootstrap created %s; printing must create nothing", state)
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := call(t, "version")
	if code != 0 || stdout != "portico dev\n" {
		t.Errorf("version: exit %d, output %q", code, stdout)
	}
}
