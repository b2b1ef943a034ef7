package supervisor

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestHotRestartSocketsAreOwnerOnly runs Envoy with its hot restart sockets in a directory that
// starts out world-readable, and hot restarts it: Run must restrict the directory to 0700, each
// epoch must add sockets there, all files of mode 0600, and Envoy must hold no abstract socket
// (which any local user could connect to).
func TestHotRestartSocketsAreOwnerOnly(t *testing.T) {
	t.Parallel()
	port := envoytest.FreePort(t)
	opts := testOptions(t, writeBootstrap(t, t.TempDir(), port, envoytest.FreePort(t)))
	if err := os.Chmod(opts.SocketDir, 0o755); err != nil {
		t.Fatal(err)
	}
	opts.DrainTimeout = time.Second
	rs := startSupervisor(t, opts)
	rs.waitReady(t)

	// sockets checks the directory and its sockets and returns their names.
	sockets := func() []string {
		t.Helper()
		fi, err := os.Stat(opts.SocketDir)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o700 {
			t.Errorf("socket directory has mode %o, want 700", got)
		}
		entries, err := os.ReadDir(opts.SocketDir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), hotRestartSocketName+"_") {
				continue
			}
			names = append(names, e.Name())
			info, err := e.Info()
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Type() != fs.ModeSocket || info.Mode().Perm() != 0o600 {
				t.Errorf("%s has mode %v, want a socket of mode 0600", e.Name(), info.Mode())
			}
		}
		return names
	}
	first := sockets()
	if len(first) == 0 {
		t.Fatalf("no hot restart socket in %s", opts.SocketDir)
	}
	expectOnlyFileSockets(t, rs.PID(), opts.SocketDir)

	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	if err := rs.HotRestart(ctx, Settings{Concurrency: 1, LogLevel: "warning"}); err != nil {
		t.Fatalf("HotRestart over filesystem sockets: %v", err)
	}
	second := sockets()
	if len(second) <= len(first) {
		t.Errorf("sockets after the hot restart %v, before %v: the new epoch added none", second, first)
	}
	expectOnlyFileSockets(t, rs.PID(), opts.SocketDir)
	if err := servesDirectBody(port)(); err != nil {
		t.Errorf("after the hot restart: %v", err)
	}
	if rs.HotRestarts() != 1 || rs.Restarts() != 0 {
		t.Errorf("HotRestarts() = %d, Restarts() = %d; want 1 and 0", rs.HotRestarts(), rs.Restarts())
	}
}

// expectOnlyFileSockets checks the Unix sockets process pid holds: some must be hot restart
// sockets in dir, none abstract.
func expectOnlyFileSockets(t *testing.T, pid int, dir string) {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	var inodes []string
	for _, fd := range fds {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && strings.HasPrefix(target, "socket:[") {
			inodes = append(inodes, strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]"))
		}
	}
	table, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	inDir := 0
	for _, line := range strings.Split(string(table), "\n")[1:] {
		// Num RefCount Protocol Flags Type St Inode [Path]
		f := strings.Fields(line)
		if len(f) < 8 || !slices.Contains(inodes, f[6]) {
			continue
		}
		switch path := f[7]; {
		case strings.HasPrefix(path, "@"):
			t.Errorf("envoy %d holds abstract socket %s", pid, path)
		case filepath.Dir(path) == dir:
			inDir++
		}
	}
	if inDir == 0 {
		t.Errorf("envoy %d holds no socket in %s", pid, dir)
	}
}

// TestSocketDirTooLong refuses a socket directory whose hot restart socket paths would not fit
// in sun_path, where Envoy would cut them short.
func TestSocketDirTooLong(t *testing.T) {
	opts := Options{EnvoyPath: "envoy", BootstrapPath: "b.yaml", RunDir: "run", SocketDir: "/" + strings.Repeat("d", 80)}.withDefaults()
	if err := opts.validate(); err == nil || !strings.Contains(err.Error(), "hot restart socket directory") {
		t.Fatalf("validate() = %v, want the socket directory refused", err)
	}
	opts.SocketDir = "/tmp/short"
	if err := opts.validate(); err != nil {
		t.Fatalf("validate() with a short socket directory: %v", err)
	}
}
