package supervisor

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
	"github.com/portico-gw/portico/internal/syncbuf"
)

// TestAcquireReplacesTruncatedCache puts the first megabyte of the real Envoy in the cache, as
// an interrupted copy would leave it: it must be detected, removed and downloaded again.
func TestAcquireReplacesTruncatedCache(t *testing.T) {
	archive, sum := envoytest.ReleaseArchive(t)
	isolateHome(t)
	srv := envoytest.NewReleaseServer(t, archive, sum)
	dataHome := t.TempDir()

	real, err := os.Open(envoytest.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer real.Close()
	truncated := installedEnvoy(dataHome, DefaultEnvoyVersion)
	if err := os.MkdirAll(filepath.Dir(truncated), 0o750); err != nil {
		t.Fatal(err)
	}
	head, err := io.ReadAll(io.LimitReader(real, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, head, 0o755); err != nil {
		t.Fatal(err)
	}

	a, logs := newTestAcquirer(t, dataHome, srv.VersionsURL())
	got, err := a.Acquire(t.Context(), "", DefaultEnvoyVersion)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if got.Source != "download" || got.Path != truncated {
		t.Errorf("Acquire = %+v, want a fresh download at %s", got, truncated)
	}
	if info, err := os.Stat(truncated); err != nil || info.Size() <= int64(len(head)) {
		t.Errorf("cached envoy after Acquire: %v, size %d; want the whole binary", err, info.Size())
	}
	if !strings.Contains(logs.String(), "removing a cached envoy that does not work") {
		t.Errorf("no warning about the truncated binary:\n%s", logs)
	}
}

// TestAcquireRejectsTruncatedDownload serves only half the archive under the whole archive's
// checksum.
func TestAcquireRejectsTruncatedDownload(t *testing.T) {
	archive, sum := envoytest.ReleaseArchive(t)
	isolateHome(t)
	srv := envoytest.NewReleaseServer(t, archive[:len(archive)/2], sum)
	dataHome := t.TempDir()
	a, _ := newTestAcquirer(t, dataHome, srv.VersionsURL())
	got, err := a.Acquire(t.Context(), "", DefaultEnvoyVersion)
	if err == nil {
		t.Fatalf("Acquire accepted a truncated archive: %+v", got)
	}
	if !strings.Contains(err.Error(), "download: Envoy "+DefaultEnvoyVersion) {
		t.Errorf("error does not blame the download: %v", err)
	}
	if found := envoyFiles(t, dataHome); len(found) != 0 {
		t.Errorf("a truncated download left binaries behind: %v", found)
	}
}

func TestAcquireOffline(t *testing.T) {
	isolateHome(t)
	dataHome := t.TempDir()
	a, _ := newTestAcquirer(t, dataHome, refusedURL(t))
	a.Offline = true
	a.Run = failingRun(t)
	_, err := a.Acquire(t.Context(), "", DefaultEnvoyVersion)
	for _, want := range []string{"offline: no download was tried", "download: skipped, offline", "PATH: no envoy found"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("offline Acquire error lacks %q: %v", want, err)
		}
	}

	envoy := envoytest.Binary(t)
	a.LookPath = func(string) (string, error) { return envoy, nil }
	got, err := a.Acquire(t.Context(), "", DefaultEnvoyVersion)
	if err != nil || got.Source != "path" {
		t.Errorf("offline Acquire with envoy on PATH = %+v, %v; want it from PATH", got, err)
	}
	if _, _, err := a.Available(t.Context()); err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("offline Available = %v, want it refused", err)
	}
}

// TestInstallLockSerialises holds the install lock as another process would and checks that
// Install waits for it, then finds the version that process installed instead of downloading.
func TestInstallLockSerialises(t *testing.T) {
	archive, sum := envoytest.ReleaseArchive(t)
	isolateHome(t)
	srv := envoytest.NewReleaseServer(t, archive, sum)
	dataHome := t.TempDir()

	first, _ := newTestAcquirer(t, dataHome, srv.VersionsURL())
	unlock, err := first.lockInstall(t.Context(), dataHome)
	if err != nil {
		t.Fatal(err)
	}
	second, logs := newTestAcquirer(t, dataHome, srv.VersionsURL())
	type result struct {
		e   Envoy
		err error
	}
	done := make(chan result, 1)
	go func() {
		e, err := second.Install(context.Background(), DefaultEnvoyVersion)
		done <- result{e, err}
	}()
	eventually(t, 5*time.Second, func() error {
		if !strings.Contains(logs.String(), "waiting for another portico") {
			return fmt.Errorf("second install does not wait")
		}
		return nil
	})
	// The first "process" installs while holding the lock.
	if _, err := first.download(t.Context(), dataHome, DefaultEnvoyVersion); err != nil {
		t.Fatal(err)
	}
	unlock()
	res := <-done
	if res.err != nil || res.e.Source != "cache" {
		t.Fatalf("Install after waiting = %+v, %v; want the cached copy", res.e, res.err)
	}
	if n := srv.ArchiveRequests.Load(); n != 1 {
		t.Errorf("archive downloaded %d times, want 1", n)
	}
}

func TestDownloadProgress(t *testing.T) {
	archive, sum := envoytest.ReleaseArchive(t)
	isolateHome(t)
	srv := envoytest.NewReleaseServer(t, archive, sum)
	for _, terminal := range []bool{false, true} {
		t.Run(fmt.Sprintf("terminal=%v", terminal), func(t *testing.T) {
			var out syncbuf.Buffer
			a, _ := newTestAcquirer(t, t.TempDir(), srv.VersionsURL())
			a.Progress, a.ProgressTerminal = &out, terminal
			if _, err := a.Install(t.Context(), DefaultEnvoyVersion); err != nil {
				t.Fatal(err)
			}
			total := fmt.Sprintf("%.1f of %.1f MB (100%%)", float64(len(archive))/1e6, float64(len(archive))/1e6)
			got := out.String()
			if !strings.Contains(got, "downloading envoy "+DefaultEnvoyVersion+": "+total) {
				t.Errorf("progress output lacks the completed line %q:\n%q", total, got)
			}
			if strings.Contains(got, "\r") != terminal {
				t.Errorf("progress output on terminal=%v: %q", terminal, got)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		x, y string
		want int
	}{
		{"1.40.0", "1.9.9", 1},
		{"1.40.0", "1.40.0", 0},
		{"1.39.10", "1.39.9", 1},
		{"1.2.3", "2.0.0", -1},
	} {
		if got := compareVersions(tc.x, tc.y); got != tc.want {
			t.Errorf("compareVersions(%s, %s) = %d, want %d", tc.x, tc.y, got, tc.want)
		}
	}
}
