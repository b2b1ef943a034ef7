package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestRunDownloadsEnvoy runs portico with no Envoy anywhere but a (local) release server:
// portico downloads the archive through func-e, verifies it, installs it under the user's data
// directory, and serves traffic with it. A second run uses the cache.
func TestRunDownloadsEnvoy(t *testing.T) {
	archive, sum := envoytest.ReleaseArchive(t)
	srv := envoytest.NewReleaseServer(t, archive, sum)
	home := t.TempDir()
	env := []string{
		"HOME=" + home,
		"XDG_DATA_HOME=" + filepath.Join(home, "data"),
		"PATH=/usr/bin:/bin", // no envoy here: the download must be what runs
		"PORTICO_ENVOY_PATH=",
	}
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: hello}
spec:
  routes:
  - match: {prefix: /}
    directResponse: {status: 200, body: "downloaded envoy"}
`)
	for i, want := range []int32{1, 1} {
		p := start(t, filepath.Dir(cfg), env, "-c", cfg, "--envoy-versions-url", srv.VersionsURL())
		p.waitReady()
		expectBody(t, "", fmt.Sprintf("http://127.0.0.1:%d/", port), 200, "downloaded envoy")
		if got := srv.ArchiveRequests.Load(); got != want {
			t.Fatalf("run %d: archive downloaded %d times, want %d", i+1, got, want)
		}
		p.stop()
	}
	installed := filepath.Join(home, "data", "portico", "envoy-versions", envoytest.Version, "bin", "envoy")
	if _, err := os.Stat(installed); err != nil {
		t.Fatalf("envoy not installed in the data directory: %v", err)
	}
}

// TestRunExplainsMissingEnvoy: with no Envoy to be had, portico fails with one error that says
// what it tried and how to fix it.
func TestRunExplainsMissingEnvoy(t *testing.T) {
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_DATA_HOME=" + filepath.Join(home, "data"), "PATH=/usr/bin:/bin", "PORTICO_ENVOY_PATH="}
	// A versions URL nothing listens on: the download fails at once, as on an offline machine.
	url := fmt.Sprintf("http://127.0.0.1:%d/envoy-versions.json", envoytest.FreePort(t))
	p := start(t, t.TempDir(), env, "--envoy-versions-url", url)
	<-p.done
	if p.exitErr == nil {
		t.Fatal("portico succeeded without any Envoy")
	}
	out := p.stderr.String()
	for _, want := range []string{"error:", "download", "PATH", "--envoy-path"} {
		if !strings.Contains(out, want) {
			t.Errorf("error output lacks %q:\n%s", want, out)
		}
	}
}
