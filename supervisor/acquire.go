package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/portico-gw/portico/internal/syncbuf"

	func_e "github.com/tetratelabs/func-e"
	"github.com/tetratelabs/func-e/api"
)

// DefaultEnvoyVersion is the Envoy release Portico is built and tested against.
const DefaultEnvoyVersion = "1.40.0"

// DefaultVersionsURL lists Envoy releases and their checksums; it is func-e's default too.
const DefaultVersionsURL = "https://archive.tetratelabs.io/envoy/envoy-versions.json"

// installLockFile in the data home serialises installs between Portico processes.
const installLockFile = ".install.lock"

const (
	// dialTimeout and responseHeaderTimeout make an offline or firewalled machine fail within
	// seconds instead of hanging, while still letting a slow but live download finish.
	dialTimeout           = 10 * time.Second
	responseHeaderTimeout = 30 * time.Second
	// lockPollInterval is how often a Portico waiting for another one's install checks the lock.
	lockPollInterval = 100 * time.Millisecond
	// downloadTimeout caps the whole download (tens of megabytes), so a stalled transfer ends.
	downloadTimeout = 10 * time.Minute
	// versionTimeout bounds `envoy --version`, which returns at once from a working binary.
	versionTimeout = 10 * time.Second
)

// patchVersion is the only version form accepted: func-e passes the version straight through
// as a directory and release name, so "1.40" would never match a release.
var patchVersion = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`)

// envoyVersionLine matches the line `envoy --version` prints:
// "envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL".
var envoyVersionLine = regexp.MustCompile(`version: [0-9a-f]+/([0-9]+\.[0-9]+\.[0-9]+(?:-[0-9A-Za-z.]+)?)/`)

// Acquirer finds the Envoy binary to run, downloading it through func-e when needed.
type Acquirer struct {
	Run         api.RunFunc                  // func-e; tests may replace
	LookPath    func(string) (string, error) // exec.LookPath; tests may replace
	Logger      *slog.Logger
	DataHome    string // cache root; "" means DefaultDataHome()
	VersionsURL string // func-e versions JSON URL; "" means DefaultVersionsURL
	// Offline forbids every network access: Envoy comes from the cache or PATH only.
	Offline bool
	// Progress receives download progress; nil shows none. ProgressTerminal redraws one line
	// in place, for a terminal; otherwise a plain line is written every few seconds.
	Progress         io.Writer
	ProgressTerminal bool
}

// Envoy is a binary that was found and answered `--version`.
type Envoy struct {
	Path    string // absolute path of the binary
	Version string // as reported by the binary, e.g. "1.40.0"
	Source  string // "flag", "cache", "download" or "path"
}

// NewAcquirer returns an Acquirer that downloads with func-e into DefaultDataHome().
func NewAcquirer(logger *slog.Logger) *Acquirer {
	return &Acquirer{Run: func_e.Run, LookPath: exec.LookPath, Logger: logger}
}

// DefaultDataHome is where downloaded Envoy binaries are kept: $XDG_DATA_HOME/portico, or
// ~/.local/share/portico. It is never a temporary directory, which the system may clear.
func DefaultDataHome() (string, error) {
	// The XDG spec says a relative XDG_DATA_HOME is invalid and must be ignored.
	if x := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "portico"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find a directory for downloaded Envoy binaries: %w", err)
	}
	return filepath.Join(home, ".local", "share", "portico"), nil
}

// Acquire resolves the Envoy to run. An explicitPath (from --envoy-path or PORTICO_ENVOY_PATH)
// is used as given or is an error: the user asked for that binary, so another one would be a
// surprise. Otherwise Acquire tries, in order, the cached download of version, a fresh download
// through func-e, and an envoy on PATH. When all fail, the error lists every attempt and how to
// fix it. Every binary returned has answered `--version`.
func (a *Acquirer) Acquire(ctx context.Context, explicitPath, version string) (Envoy, error) {
	if explicitPath != "" {
		return a.explicit(ctx, explicitPath)
	}
	if version == "" {
		version = DefaultEnvoyVersion
	}
	if !patchVersion.MatchString(version) {
		return Envoy{}, fmt.Errorf("envoy version %q is not a full release version such as %s", version, DefaultEnvoyVersion)
	}

	var attempts []error
	dataHome, err := a.dataHome()
	if err != nil {
		attempts = append(attempts, fmt.Errorf("cache and download: %w; set XDG_DATA_HOME or HOME", err))
	} else {
		e, err := a.install(ctx, dataHome, version)
		if err == nil {
			return e, nil
		}
		if ctx.Err() != nil { // the caller gave up: trying PATH would ignore that
			return Envoy{}, fmt.Errorf("acquire envoy %s: %w", version, ctx.Err())
		}
		attempts = append(attempts, err)
	}

	e, err := a.fromPath(ctx, version)
	if err == nil {
		return e, nil
	}
	attempts = append(attempts, err)

	offline := ""
	if a.Offline {
		offline = " (offline: no download was tried)"
	}
	return Envoy{}, fmt.Errorf("no usable envoy %s%s; tried, in order:\n%w\n"+
		"or point Portico at an Envoy binary with --envoy-path or PORTICO_ENVOY_PATH",
		version, offline, errors.Join(attempts...))
}

// Install makes version available in the cache, downloading it unless it is there and works,
// and returns it. Unlike Acquire it never falls back to PATH.
func (a *Acquirer) Install(ctx context.Context, version string) (Envoy, error) {
	if !patchVersion.MatchString(version) {
		return Envoy{}, fmt.Errorf("envoy version %q is not a full release version such as %s", version, DefaultEnvoyVersion)
	}
	dataHome, err := a.dataHome()
	if err != nil {
		return Envoy{}, fmt.Errorf("install envoy %s: %w; set XDG_DATA_HOME or HOME", version, err)
	}
	return a.install(ctx, dataHome, version)
}

// install returns the cached version, or downloads it while holding the install lock. The
// cache is checked again under the lock: another Portico may have installed it meanwhile, or
// may have been replacing a broken copy when it was first looked at.
func (a *Acquirer) install(ctx context.Context, dataHome, version string) (Envoy, error) {
	if e, err := a.fromCache(ctx, dataHome, version); err == nil {
		return e, nil
	}
	unlock, err := a.lockInstall(ctx, dataHome)
	if err != nil {
		return Envoy{}, err
	}
	defer unlock()
	e, cacheErr := a.fromCache(ctx, dataHome, version)
	if cacheErr == nil {
		return e, nil
	}
	if a.Offline {
		return Envoy{}, errors.Join(cacheErr, fmt.Errorf("download: skipped, offline (--offline or PORTICO_OFFLINE=1); install Envoy %s on a connected machine with `portico envoy install %s` and copy %s", version, version, filepath.Join(dataHome, "envoy-versions", version)))
	}
	e, err = a.downloadRetrying(ctx, dataHome, version)
	if err != nil {
		return Envoy{}, errors.Join(cacheErr, err)
	}
	return e, nil
}

// lockInstall takes the exclusive lock of dataHome, so that two Porticos never install or
// remove a version at the same time. The kernel drops the lock when its holder dies.
func (a *Acquirer) lockInstall(ctx context.Context, dataHome string) (unlock func(), err error) {
	if err := os.MkdirAll(dataHome, 0o750); err != nil {
		return nil, fmt.Errorf("create envoy cache %s: %w", dataHome, err)
	}
	path := filepath.Join(dataHome, installLockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open install lock: %w", err)
	}
	waiting := false
	ticker := time.NewTicker(lockPollInterval)
	defer ticker.Stop()
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the file releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !waiting {
			waiting = true
			a.logger().Info("waiting for another portico to finish installing envoy", "lock", path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for the envoy install lock %s: %w", path, ctx.Err())
		case <-ticker.C:
		}
	}
}

// explicit checks a binary the user named, giving a specific reason when it cannot work.
func (a *Acquirer) explicit(ctx context.Context, path string) (Envoy, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Envoy{}, fmt.Errorf("envoy path %q: %w", path, err)
	}
	info, err := os.Stat(abs)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Envoy{}, fmt.Errorf("envoy path %s does not exist: fix --envoy-path or PORTICO_ENVOY_PATH, or unset both to let Portico download Envoy", abs)
	case err != nil:
		return Envoy{}, fmt.Errorf("envoy path %s: %w", abs, err)
	case info.IsDir():
		return Envoy{}, fmt.Errorf("envoy path %s is a directory: name the envoy binary itself", abs)
	case info.Mode().Perm()&0o111 == 0:
		return Envoy{}, fmt.Errorf("envoy path %s is not executable: run chmod +x on it", abs)
	}
	v, err := a.envoyVersion(ctx, abs)
	if err != nil {
		return Envoy{}, fmt.Errorf("envoy path %s does not run as Envoy: %w", abs, err)
	}
	a.logger().Info("using the envoy named by the user", "path", abs, "version", v)
	return Envoy{Path: abs, Version: v, Source: "flag"}, nil
}

// fromCache returns a previous download. A cached binary that no longer runs (a partial copy,
// a changed file) is removed so that the download which follows can replace it.
func (a *Acquirer) fromCache(ctx context.Context, dataHome, version string) (Envoy, error) {
	path := installedEnvoy(dataHome, version)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return Envoy{}, fmt.Errorf("cache: %s is not there yet; the download fills it", path)
	} else if err != nil {
		return Envoy{}, fmt.Errorf("cache: %w; fix the permissions of %s or choose another data directory", err, dataHome)
	}
	v, err := a.envoyVersion(ctx, path)
	if err == nil && v != version {
		err = fmt.Errorf("it reports version %s", v)
	}
	if err != nil {
		dir := versionDir(path)
		a.logger().Warn("removing a cached envoy that does not work", "path", path, "error", err)
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			return Envoy{}, fmt.Errorf("cache: %s is broken (%v) and could not be removed: %w; delete %s", path, err, rmErr, dir)
		}
		return Envoy{}, fmt.Errorf("cache: %s was broken (%v) and has been removed", path, err)
	}
	a.logger().Debug("using cached envoy", "path", path, "version", v)
	return Envoy{Path: path, Version: v, Source: "cache"}, nil
}

// download installs version through func-e. func-e has no install-only call, so it runs the
// downloaded binary with --version, which exits at once.
//
// func-e installs into a private staging directory that is renamed into the cache only after
// the checksum and a test run both pass. func-e checks the checksum only after it has unpacked
// the archive, and two Porticos may download at once: staging keeps both a rejected archive and
// a half-written one out of the cache.
// checksumAttempts bounds the downloads tried when func-e reports a checksum mismatch.
const checksumAttempts = 3

// downloadRetrying downloads, trying again when func-e reports a checksum mismatch. func-e
// hashes only the part of the archive its decompressor reads, and stops reading at the end of
// the tar stream: when the network hands over the archive's last few bytes (the xz index and
// footer) in a read of their own, the hash misses them and an intact archive is rejected. A
// truly corrupt archive fails every attempt.
func (a *Acquirer) downloadRetrying(ctx context.Context, dataHome, version string) (Envoy, error) {
	var err error
	for attempt := 1; attempt <= checksumAttempts; attempt++ {
		var e Envoy
		if e, err = a.download(ctx, dataHome, version); err == nil || !strings.Contains(err.Error(), "expected SHA-256 sum") || ctx.Err() != nil {
			return e, err
		}
		a.logger().Warn("envoy download failed its checksum; trying again", "attempt", attempt, "of", checksumAttempts, "error", err.Error())
	}
	return Envoy{}, err
}

func (a *Acquirer) download(ctx context.Context, dataHome, version string) (Envoy, error) {
	source := a.versionsURL()
	fail := func(err error) (Envoy, error) {
		return Envoy{}, fmt.Errorf("download: Envoy %s from %s: %w; check that this machine can reach it (HTTPS_PROXY is honoured), or install Envoy yourself", version, source, err)
	}

	staging, err := os.MkdirTemp(dataHome, ".download-")
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err := os.RemoveAll(staging); err != nil {
			a.logger().Warn("could not remove envoy download staging directory", "path", staging, "error", err)
		}
	}()

	// A transport of our own so a dead network fails quickly; it keeps the proxy settings of
	// the default one.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DialContext = (&net.Dialer{Timeout: dialTimeout}).DialContext
	transport.ResponseHeaderTimeout = responseHeaderTimeout
	defer transport.CloseIdleConnections()

	var status, stdout, stderr syncbuf.Buffer
	opts := []api.RunOption{
		api.EnvoyVersion(version),
		api.DataHome(filepath.Join(staging, "data")),
		// func-e's other directories hold run logs and a version preference that Portico does
		// not use; they live in staging so the user's own func-e directories stay untouched.
		api.ConfigHome(filepath.Join(staging, "config")),
		api.StateHome(filepath.Join(staging, "state")),
		api.RuntimeDir(filepath.Join(staging, "run")),
		api.Out(&status),
		api.EnvoyOut(&stdout),
		api.EnvoyErr(&stderr),
		api.HTTPTransport(a.withProgress(transport, version)),
		api.EnvoyVersionsURL(a.versionsURL()),
	}

	a.logger().Info("downloading envoy", "version", version, "from", source, "into", dataHome)
	start := time.Now()
	runCtx, cancel := context.WithTimeout(ctx, downloadTimeout)
	err = a.Run(runCtx, []string{"--version"}, opts...)
	cancel()
	a.logger().Debug("func-e finished", "status", status.String(), "envoy_stdout", stdout.String(), "envoy_stderr", stderr.String(), "error", err)
	if err != nil {
		return fail(err)
	}

	// func-e ran the staged binary with --version and exited cleanly; what it printed is the
	// proof that the binary runs and is the release asked for.
	v, err := parseEnvoyVersion([]byte(stdout.String()))
	if err != nil {
		return fail(fmt.Errorf("the downloaded binary: %w", err))
	}
	if v != version {
		return fail(fmt.Errorf("the downloaded binary reports version %s", v))
	}

	staged := installedEnvoy(filepath.Join(staging, "data"), version)
	final := installedEnvoy(dataHome, version)
	if err := os.MkdirAll(filepath.Join(dataHome, "envoy-versions"), 0o750); err != nil {
		return fail(err)
	}
	// The install lock is held, so nothing else writes here; a rename is all-or-nothing, so an
	// interrupted install leaves no partial version behind.
	if err := os.Rename(versionDir(staged), versionDir(final)); err != nil {
		return fail(fmt.Errorf("move the download into the cache: %w", err))
	}
	a.logger().Info("downloaded envoy", "version", v, "path", final, "took", time.Since(start).Round(time.Millisecond))
	return Envoy{Path: final, Version: v, Source: "download"}, nil
}

// fromPath is the last resort: an envoy the user installed, whatever its version, with a
// warning because Portico was not tested against every release.
func (a *Acquirer) fromPath(ctx context.Context, version string) (Envoy, error) {
	path, err := a.LookPath("envoy")
	if err != nil {
		return Envoy{}, fmt.Errorf("PATH: no envoy found (%w); install Envoy %s and put it on PATH", err, version)
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	v, err := EnvoyVersion(ctx, path)
	if err != nil {
		return Envoy{}, fmt.Errorf("PATH: %s does not run as Envoy: %w; replace it with Envoy %s", path, err, version)
	}
	msg := "using envoy from PATH because Envoy " + version + " could not be cached or downloaded"
	if v != version {
		msg += "; its version differs from the one Portico is tested with"
	}
	a.logger().Warn(msg, "path", path, "version", v, "wanted", version)
	return Envoy{Path: path, Version: v, Source: "path"}, nil
}

// EnvoyVersion runs `envoy --version` and returns the release it reports, e.g. "1.40.0".
func EnvoyVersion(ctx context.Context, path string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w (output: %q)", path, err, shorten(out))
	}
	return parseEnvoyVersion(out)
}

// parseEnvoyVersion reads the release from `envoy --version` output.
func parseEnvoyVersion(out []byte) (string, error) {
	m := envoyVersionLine.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("no Envoy version in --version output %q", shorten(out))
	}
	return string(m[1]), nil
}

// shorten keeps error messages readable when a binary prints a lot.
func shorten(out []byte) string {
	const limit = 200
	s := strings.TrimSpace(string(out))
	if len(s) > limit {
		s = s[:limit] + "..."
	}
	return s
}

// installedEnvoy is where func-e installs version under dataHome.
func installedEnvoy(dataHome, version string) string {
	return filepath.Join(dataHome, "envoy-versions", version, "bin", "envoy")
}

// versionDir is the directory of one installed version, given its envoy binary.
func versionDir(envoyPath string) string {
	return filepath.Dir(filepath.Dir(envoyPath))
}

func (a *Acquirer) versionsURL() string {
	if a.VersionsURL != "" {
		return a.VersionsURL
	}
	return DefaultVersionsURL
}

func (a *Acquirer) dataHome() (string, error) {
	if a.DataHome != "" {
		return a.DataHome, nil
	}
	return DefaultDataHome()
}

func (a *Acquirer) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}
