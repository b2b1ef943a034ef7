package e2e

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestInternalSurfacesArePrivate checks a running portico from outside, as docs/security.md
// promises: Envoy reaches the xDS and rate limit services only over Unix sockets that are 0600
// in a 0700 directory, and both admin APIs listen on loopback.
func TestInternalSurfacesArePrivate(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, gatewayYAML(envoytest.FreePort(t)))
	// A short state directory keeps the sockets in it (a long one moves them to a temporary
	// directory); it is created world-readable, as a user's umask might leave it.
	state, err := os.MkdirTemp("", "p")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(state, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := startReady(t, cfg, "--state-dir", state)
	p.stateDir = state

	bs, err := os.ReadFile(filepath.Join(p.stateDir, "run", "bootstrap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(bs), filepath.Join(state, "run", "xds.sock")) {
		t.Fatalf("the xDS socket is not in the state directory %s, so its permissions are not tested:\n%s", state, bs)
	}
	sockets := regexp.MustCompile(`(?m)^\s+path: (\S+)$`).FindAllStringSubmatch(string(bs), -1)
	named := map[string]bool{}
	for _, m := range sockets {
		named[filepath.Base(m[1])] = true
	}
	for _, want := range []string{"xds.sock", "ratelimit.sock", "authz.sock"} {
		if !named[want] {
			t.Errorf("bootstrap names no Unix socket %s (xDS, rate limit and authentication each have one):\n%s", want, bs)
		}
	}
	for _, m := range sockets {
		for path, want := range map[string]os.FileMode{m[1]: 0o600, filepath.Dir(m[1]): 0o700} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s has mode %o, want %o", path, got, want)
			}
		}
	}

	envoyAdmin, err := os.ReadFile(filepath.Join(p.stateDir, "run", "admin-address.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if ap, err := netip.ParseAddrPort(strings.TrimSpace(string(envoyAdmin))); err != nil || !ap.Addr().IsLoopback() {
		t.Errorf("Envoy's admin API listens on %q, want a loopback address", envoyAdmin)
	}
	// portico's admin API: the default is loopback, and anything else is refused at start.
	bad := start(t, dir, nil, "-c", cfg, "--envoy-path", envoytest.Binary(t), "--admin-address", "0.0.0.0:0")
	<-bad.done
	if bad.exitErr == nil || !strings.Contains(bad.stderr.String(), "only loopback addresses are allowed") {
		t.Errorf("portico run --admin-address 0.0.0.0:0 exited with %v, want a refusal; stderr:\n%s", bad.exitErr, bad.stderr)
	}
}
