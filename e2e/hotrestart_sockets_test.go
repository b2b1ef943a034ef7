package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestHotRestartSocketsOwnerOnly checks, on a running portico, that Envoy's hot restart talks
// over filesystem sockets of mode 0600 in the 0700 run directory (--socket-path), not over
// abstract sockets any local user could connect to, before and after a SIGUSR1 hot restart.
func TestHotRestartSocketsOwnerOnly(t *testing.T) {
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+directVS("steady"))
	p := startReady(t, cfg, "--drain-timeout", "1s")
	runDir := filepath.Join(p.stateDir, "run")
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	check := func(pid int) {
		t.Helper()
		if fi, err := os.Stat(runDir); err != nil || fi.Mode().Perm() != 0o700 {
			t.Fatalf("run directory: %v, %v; want mode 0700", fi.Mode(), err)
		}
		if got := envoyArg(t, pid, "--socket-path"); filepath.Dir(got) != runDir {
			t.Errorf("envoy %d's --socket-path %s is not in the run directory %s", pid, got, runDir)
		}
		if got := envoyArg(t, pid, "--socket-mode"); got != "600" {
			t.Errorf("envoy %d's --socket-mode is %s, want 600", pid, got)
		}
		held := unixSocketsOf(t, pid)
		inRunDir := 0
		for _, path := range held {
			if strings.HasPrefix(path, "@") {
				t.Errorf("envoy %d holds abstract socket %s", pid, path)
				continue
			}
			if filepath.Dir(path) != runDir || !strings.Contains(filepath.Base(path), "_") {
				continue
			}
			inRunDir++
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want a socket of mode 0600", path, fi.Mode())
			}
		}
		if inRunDir == 0 {
			t.Errorf("envoy %d holds no hot restart socket in %s (it holds %q)", pid, runDir, held)
		}
	}
	before := p.envoyPID()
	check(before)
	if err := p.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	p.waitHotRestart(before)
	expectBody(t, "", url, 200, "steady")
	check(p.envoyPID())
}

// unixSocketsOf lists the paths of the named Unix sockets process pid has open; abstract ones
// start with "@".
func unixSocketsOf(t *testing.T, pid int) []string {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	table, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(table), "\n")[1:] {
		// Num RefCount Protocol Flags Type St Inode Path
		if f := strings.Fields(line); len(f) >= 8 && inodes[f[6]] {
			out = append(out, f[7])
		}
	}
	return out
}
