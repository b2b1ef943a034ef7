package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/func-e/api"

	"github.com/portico-gw/portico/internal/envoytest"
	"github.com/portico-gw/portico/internal/syncbuf"
)

// refusedURL is a loopback URL nothing listens on: the closest an offline test gets to a
// machine without network.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/envoy-versions.json"
}

// isolateHome points HOME and the XDG directories at empty temporary directories, so a test
// cannot touch the real ones and can check nothing was written to them.
func isolateHome(t *testing.T) (home string) {
	t.Helper()
	home = t.TempDir()
	t.Setenv("HOME", home)
	for _, v := range []string{"XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR"} {
		t.Setenv(v, "")
	}
	return home
}

func noEnvoyOnPath(string) (string, error) { return "", exec.ErrNotFound }

func newTestAcquirer(t *testing.T, dataHome, versionsURL string) (*Acquirer, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	a := NewAcquirer(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	a.DataHome = dataHome
	a.VersionsURL = versionsURL
	a.LookPath = noEnvoyOnPath
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("acquirer logs:\n%s", logs)
		}
	})
	return a, logs
}

// envoyFiles lists every file named envoy under dir: after a failed download there must be none.
func envoyFiles(t *testing.T, dir string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "envoy" && !d.IsDir() {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func TestAcquireDownloadsThenUsesCache(t *testing.T) {
	archive, sum := envoytest.ReleaseArchive(t)
	home := isolateHome(t)
	srv := envoytest.NewReleaseServer(t, archive, sum)
	dataHome := t.TempDir()
	ctx := t.Context()

	a, _ := newTestAcquirer(t, dataHome, srv.VersionsURL())
	got, err := a.Acquire(ctx, "", DefaultEnvoyVersion)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	want := Envoy{Path: installedEnvoy(dataHome, DefaultEnvoyVersion), Version: DefaultEnvoyVersion, Source: "download"}
	if got != want {
		t.Fatalf("Acquire = %+v, want %+v", got, want)
	}
	out, err := exec.CommandContext(ctx, got.Path, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "/"+DefaultEnvoyVersion+"/") {
		t.Fatalf("downloaded envoy --version: %v\n%s", err, out)
	}
	if v, a := srv.VersionRequests.Load(), srv.ArchiveRequests.Load(); v != 1 || a != 1 {
		t.Errorf("server saw %d versions and %d archive requests, want 1 and 1", v, a)
	}

	// func-e's scratch directories are gone; only the cache and its lock remain.
	entries, err := os.ReadDir(dataHome)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{installLockFile, "envoy-versions"}) {
		t.Errorf("data home holds %v, want only %s and envoy-versions", names, installLockFile)
	}
	// Nothing was written to the user's own func-e (or any other) directories.
	if entries, err := os.ReadDir(home); err != nil || len(entries) != 0 {
		t.Errorf("home directory has %d entries (err %v), want none", len(entries), err)
	}

	again, _ := newTestAcquirer(t, dataHome, srv.VersionsURL())
	got, err = again.Acquire(ctx, "", DefaultEnvoyVersion)
	if err != nil {
		t.Fatalf("second Acquire: %v", err)
	}
	want.Source = "cache"
	if got != want {
		t.Errorf("second Acquire = %+v, want %+v", got, want)
	}
	if v, a := srv.VersionRequests.Load(), srv.ArchiveRequests.Load(); v != 1 || a != 1 {
		t.Errorf("after the cache hit the server saw %d versions and %d archive requests, want still 1 and 1", v, a)
	}
}

func TestAcquireReplacesBrokenCache(t *testing.T) {
	archive, sum := envoytest.ReleaseArchive(t)
	isolateHome(t)
	srv := envoytest.NewReleaseServer(t, archive, sum)
	dataHome := t.TempDir()

	// A cached file that is not Envoy, as a truncated copy would be.
	broken := installedEnvoy(dataHome, DefaultEnvoyVersion)
	if err := os.MkdirAll(filepath.Dir(broken), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(broken, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	a, logs := newTestAcquirer(t, dataHome, srv.VersionsURL())
	got, err := a.Acquire(t.Context(), "", DefaultEnvoyVersion)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if got.Source != "download" || got.Version != DefaultEnvoyVersion || got.Path != broken {
		t.Errorf("Acquire = %+v, want a fresh download at %s", got, broken)
	}
	if !strings.Contains(logs.String(), "removing a cached envoy that does not work") {
		t.Errorf("no warning about the broken cache in the logs:\n%s", logs)
	}
}

func TestAcquireRejectsWrongChecksum(t *testing.T) {
	archive, _ := envoytest.ReleaseArchive(t)
	isolateHome(t)
	wrong := hex.EncodeToString(make([]byte, sha256.Size))
	srv := envoytest.NewReleaseServer(t, archive, wrong)
	dataHome := t.TempDir()

	a, _ := newTestAcquirer(t, dataHome, srv.VersionsURL())
	got, err := a.Acquire(t.Context(), "", DefaultEnvoyVersion)
	if err == nil {
		t.Fatalf("Acquire accepted an archive with the wrong checksum: %+v", got)
	}
	for _, w := range []string{"download:", "SHA-256", wrong} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
	// A mismatch is tried again (func-e can miss the archive's last bytes), a bounded number
	// of times.
	if got := srv.ArchiveRequests.Load(); got != checksumAttempts {
		t.Errorf("archive requested %d times, want %d", got, checksumAttempts)
	}
	if found := envoyFiles(t, dataHome); len(found) != 0 {
		t.Errorf("a rejected download left binaries behind: %v", found)
	}
}

func TestAcquireFallsBackToPath(t *testing.T) {
	envoy := envoytest.Binary(t)
	isolateHome(t)

	a, logs := newTestAcquirer(t, t.TempDir(), refusedURL(t))
	var looked []string
	a.LookPath = func(name string) (string, error) {
		looked = append(looked, name)
		return envoy, nil
	}
	start := time.Now()
	got, err := a.Acquire(t.Context(), "", DefaultEnvoyVersion)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if elapsed := time.Since(start); elapsed > 15*time.Second {
		t.Errorf("falling back took %v; an unreachable download must fail fast", elapsed)
	}
	if got.Source != "path" || got.Path != envoy || got.Version != DefaultEnvoyVersion {
		t.Errorf("Acquire = %+v, want %s from PATH", got, envoy)
	}
	if len(looked) != 1 || looked[0] != "envoy" {
		t.Errorf("LookPath called with %q, want [envoy]", looked)
	}
	if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "version="+DefaultEnvoyVersion) || !strings.Contains(l, "using envoy from PATH") {
		t.Errorf("no WARN naming the PATH envoy's version in the logs:\n%s", l)
	}
}

func TestAcquireReportsEveryAttempt(t *testing.T) {
	isolateHome(t)
	dataHome := t.TempDir()
	versionsURL := refusedURL(t)
	a, _ := newTestAcquirer(t, dataHome, versionsURL)

	got, err := a.Acquire(t.Context(), "", DefaultEnvoyVersion)
	if err == nil {
		t.Fatalf("Acquire found %+v with nothing available", got)
	}
	for _, w := range []string{
		"no usable envoy " + DefaultEnvoyVersion,
		"cache: " + installedEnvoy(dataHome, DefaultEnvoyVersion) + " is not there yet",
		"download: Envoy " + DefaultEnvoyVersion + " from " + versionsURL,
		"connection refused",
		"PATH: no envoy found",
		"--envoy-path or PORTICO_ENVOY_PATH",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
	if !errors.Is(err, exec.ErrNotFound) {
		t.Errorf("error does not wrap the PATH lookup failure: %v", err)
	}
}

// failingRun stands in for func-e where a test proves it is never called.
func failingRun(t *testing.T) api.RunFunc {
	return func(context.Context, []string, ...api.RunOption) error {
		t.Error("func-e was called")
		return errors.New("func-e must not be called")
	}
}

func TestAcquireExplicitPath(t *testing.T) {
	envoy := envoytest.Binary(t)
	dir := t.TempDir()
	notExecutable := filepath.Join(dir, "plain")
	if err := os.WriteFile(notExecutable, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notEnvoy := filepath.Join(dir, "not-envoy")
	if err := os.WriteFile(notEnvoy, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, path, wantErr string
	}{
		{"real envoy", envoy, ""},
		{"missing", filepath.Join(dir, "missing"), "does not exist"},
		{"directory", dir, "is a directory"},
		{"not executable", notExecutable, "is not executable"},
		{"not envoy", notEnvoy, "does not run as Envoy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := newTestAcquirer(t, t.TempDir(), refusedURL(t))
			a.Run = failingRun(t)
			a.LookPath = func(string) (string, error) {
				t.Error("PATH was searched although the user named a binary")
				return envoy, nil
			}
			got, err := a.Acquire(t.Context(), tc.path, DefaultEnvoyVersion)
			if tc.wantErr == "" {
				want := Envoy{Path: tc.path, Version: DefaultEnvoyVersion, Source: "flag"}
				if err != nil || got != want {
					t.Errorf("Acquire = %+v, %v; want %+v", got, err, want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.path) {
				t.Errorf("Acquire = %+v, %v; want an error naming %s and saying %q", got, err, tc.path, tc.wantErr)
			}
		})
	}
}

func TestAcquireRejectsPartialVersion(t *testing.T) {
	a, _ := newTestAcquirer(t, t.TempDir(), refusedURL(t))
	a.Run = failingRun(t)
	_, err := a.Acquire(t.Context(), "", "1.40")
	if err == nil || !strings.Contains(err.Error(), `"1.40" is not a full release version`) {
		t.Errorf("Acquire(1.40) error = %v, want a request for a full version", err)
	}
}

func TestEnvoyVersion(t *testing.T) {
	envoy := envoytest.Binary(t)
	got, err := EnvoyVersion(t.Context(), envoy)
	if err != nil || got != DefaultEnvoyVersion {
		t.Errorf("EnvoyVersion(%s) = %q, %v; want %q", envoy, got, err, DefaultEnvoyVersion)
	}
	if _, err := EnvoyVersion(t.Context(), filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("EnvoyVersion of a missing binary succeeded")
	}
}

func TestParseEnvoyVersion(t *testing.T) {
	for _, tc := range []struct {
		name, out, want string
	}{
		{"release", "\nenvoy  version: 9e5580933739775e8bce696a57a2e1bc99368f23/1.40.0/Clean/RELEASE/BoringSSL\n\n", "1.40.0"},
		{"dev build", "envoy  version: 0123abcd/1.41.0-dev/Modified/DEBUG/BoringSSL-FIPS", "1.41.0-dev"},
		{"no version", "hello", ""},
		{"not a release", "envoy  version: 0123abcd/main/Clean/RELEASE/BoringSSL", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseEnvoyVersion([]byte(tc.out))
			if got != tc.want || (err != nil) != (tc.want == "") {
				t.Errorf("parseEnvoyVersion(%q) = %q, %v; want %q", tc.out, got, err, tc.want)
			}
		})
	}
}

func TestDefaultDataHome(t *testing.T) {
	for _, tc := range []struct {
		name, xdg, home, want, wantErr string
	}{
		{"xdg", "/data", "/home/u", "/data/portico", ""},
		{"relative xdg is ignored", "data", "/home/u", "/home/u/.local/share/portico", ""},
		{"home", "", "/home/u", "/home/u/.local/share/portico", ""},
		{"neither", "", "", "", "$HOME is not defined"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("XDG_DATA_HOME", tc.xdg)
			t.Setenv("HOME", tc.home)
			got, err := DefaultDataHome()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("DefaultDataHome() = %q, %v; want an error saying %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("DefaultDataHome() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
