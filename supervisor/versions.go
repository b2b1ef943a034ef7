package supervisor

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// versionsJSONLimit bounds the versions document read; the real one is tens of kilobytes.
const versionsJSONLimit = 8 << 20

// Installed is one version directory in the cache.
type Installed struct {
	Version string
	Path    string // the envoy binary
	// Problem says why the binary does not work, or is "" when it answered --version with
	// the version its directory is named after.
	Problem string
}

// Installed lists the versions in the cache, newest first, checking that each binary runs.
func (a *Acquirer) Installed(ctx context.Context) ([]Installed, error) {
	dataHome, err := a.dataHome()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(dataHome, "envoy-versions"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list the envoy cache: %w", err)
	}
	var out []Installed
	for _, e := range entries {
		if !e.IsDir() || !patchVersion.MatchString(e.Name()) {
			continue
		}
		in := Installed{Version: e.Name(), Path: installedEnvoy(dataHome, e.Name())}
		v, err := EnvoyVersion(ctx, in.Path)
		switch {
		case err != nil:
			in.Problem = err.Error()
		case v != in.Version:
			in.Problem = "it reports version " + v
		}
		out = append(out, in)
	}
	slices.SortFunc(out, func(x, y Installed) int { return compareVersions(y.Version, x.Version) })
	return out, nil
}

// Release is one Envoy version the versions document offers for this platform.
type Release struct {
	Version     string
	ReleaseDate string
}

// Available fetches the versions document and returns the releases for this platform, newest
// first, and the document's latest version.
func (a *Acquirer) Available(ctx context.Context) (releases []Release, latest string, err error) {
	if a.Offline {
		return nil, "", errors.New("offline (--offline or PORTICO_OFFLINE=1): available versions need the versions URL; `portico envoy list` shows the installed ones")
	}
	url := a.versionsURL()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, "", fmt.Errorf("envoy versions from %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("envoy versions from %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("envoy versions from %s: status %d", url, resp.StatusCode)
	}
	var doc struct {
		LatestVersion string `json:"latestVersion"`
		Versions      map[string]struct {
			ReleaseDate string            `json:"releaseDate"`
			Tarballs    map[string]string `json:"tarballs"`
		} `json:"versions"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, versionsJSONLimit)).Decode(&doc); err != nil {
		return nil, "", fmt.Errorf("envoy versions from %s: %w", url, err)
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for v, r := range doc.Versions {
		if _, ok := r.Tarballs[platform]; ok && patchVersion.MatchString(v) {
			releases = append(releases, Release{Version: v, ReleaseDate: r.ReleaseDate})
		}
	}
	slices.SortFunc(releases, func(x, y Release) int { return compareVersions(y.Version, x.Version) })
	return releases, doc.LatestVersion, nil
}

// Which tells which Envoy Acquire would return, without downloading or removing anything: the
// explicit path, the cached version, a download to come, or one on PATH.
func (a *Acquirer) Which(ctx context.Context, explicitPath, version string) (Envoy, error) {
	if explicitPath != "" {
		return a.explicit(ctx, explicitPath)
	}
	if version == "" {
		version = DefaultEnvoyVersion
	}
	if dataHome, err := a.dataHome(); err == nil {
		path := installedEnvoy(dataHome, version)
		if v, err := EnvoyVersion(ctx, path); err == nil && v == version {
			return Envoy{Path: path, Version: v, Source: "cache"}, nil
		}
		if !a.Offline {
			return Envoy{Path: path, Version: version, Source: "download"}, nil
		}
	}
	return a.fromPath(ctx, version)
}

// compareVersions orders "major.minor.patch" strings numerically.
func compareVersions(x, y string) int {
	xs, ys := strings.Split(x, "."), strings.Split(y, ".")
	for i := range min(len(xs), len(ys)) {
		xn, _ := strconv.Atoi(xs[i])
		yn, _ := strconv.Atoi(ys[i])
		if c := cmp.Compare(xn, yn); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(xs), len(ys))
}
