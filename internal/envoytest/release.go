package envoytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Version is the Envoy version the Makefile provisions for tests.
const Version = "1.40.0"

// ArchiveName is the file name the official release archive has on this platform.
var ArchiveName = fmt.Sprintf("envoy-%s-%s-%s.tar.xz", Version, runtime.GOOS, runtime.GOARCH)

// releaseArchive is built once per test binary from the provisioned Envoy: it is about 30 MB,
// too big to build per test. It is held in memory so that nothing outlives the test binary.
var releaseArchive struct {
	once   sync.Once
	data   []byte
	sha256 string
	err    error
}

// ReleaseArchive returns an Envoy release archive laid out like the official ones
// (<top>/bin/envoy in a tar.xz) and its SHA-256, built on first use from Binary(t).
func ReleaseArchive(t testing.TB) (archive []byte, sum string) {
	t.Helper()
	envoy := Binary(t)
	releaseArchive.once.Do(func() {
		releaseArchive.data, releaseArchive.err = tarXZ(envoy)
		s := sha256.Sum256(releaseArchive.data)
		releaseArchive.sha256 = hex.EncodeToString(s[:])
	})
	if releaseArchive.err != nil {
		t.Fatalf("build release archive: %v", releaseArchive.err)
	}
	return releaseArchive.data, releaseArchive.sha256
}

// tarXZ packs envoy as <top>/bin/envoy with the tar and xz commands, as Envoy's releases are.
func tarXZ(envoy string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "portico-archive-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	top := strings.TrimSuffix(ArchiveName, ".tar.xz")
	if err := os.MkdirAll(filepath.Join(dir, top, "bin"), 0o755); err != nil {
		return nil, err
	}
	// A symbolic link that tar follows (-h) saves copying 100 MB.
	if err := os.Symlink(envoy, filepath.Join(dir, top, "bin", "envoy")); err != nil {
		return nil, err
	}
	// -0: the archive only has to be valid xz; the fastest preset keeps the tests quick.
	cmd := exec.Command("sh", "-c", `tar -chf - "$1" | xz -0 -T2`, "sh", top)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("tar | xz: %w: %s", err, stderr.String())
	}
	return stdout.Bytes(), nil
}

// ReleaseServer stands in for func-e's download server on loopback: it serves an
// envoy-versions JSON listing Version and the archive it names, and counts requests.
type ReleaseServer struct {
	*httptest.Server
	VersionRequests, ArchiveRequests atomic.Int32
}

// NewReleaseServer serves archive, listed in the versions JSON with checksum sum.
func NewReleaseServer(t testing.TB, archive []byte, sum string) *ReleaseServer {
	t.Helper()
	s := &ReleaseServer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /envoy-versions.json", func(w http.ResponseWriter, r *http.Request) {
		s.VersionRequests.Add(1)
		platform := runtime.GOOS + "/" + runtime.GOARCH
		body := map[string]any{
			"latestVersion": Version,
			"versions": map[string]any{
				Version: map[string]any{
					"releaseDate": "2026-01-13",
					"tarballs":    map[string]string{platform: s.URL + "/" + ArchiveName},
				},
			},
			"sha256sums": map[string]string{ArchiveName: sum},
		}
		w.Header().Set("Content-Type", "application/json")
		if err := json.NewEncoder(w).Encode(body); err != nil {
			t.Errorf("encode versions: %v", err)
		}
	})
	mux.HandleFunc("GET /"+ArchiveName, func(w http.ResponseWriter, r *http.Request) {
		s.ArchiveRequests.Add(1)
		http.ServeContent(w, r, ArchiveName, time.Time{}, bytes.NewReader(archive))
	})
	s.Server = httptest.NewServer(mux) // listens on 127.0.0.1
	t.Cleanup(s.Close)
	return s
}

// VersionsURL is the URL of the versions JSON, for func-e's versions URL option.
func (s *ReleaseServer) VersionsURL() string { return s.URL + "/envoy-versions.json" }
