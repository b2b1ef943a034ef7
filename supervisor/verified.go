package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// verifiedFile remembers, in the data directory, the binaries that answered `--version` and what
// they reported. Running `envoy --version` costs tens of milliseconds, most of Portico's own
// share of a start; a binary whose file is exactly the one checked before need not be run again.
const verifiedFile = "verified-envoys.json"

// racyWindow is how recent a change may be for a file not to be recorded. The kernel stamps
// files from a clock that advances in ticks of a few milliseconds, so a file rewritten within
// the tick of an earlier check could keep its identity; only files unchanged for longer than a
// tick are recorded (git's "racily clean" rule).
const racyWindow = 100 * time.Millisecond

// fileIdentity pins one version of a file. The change time is in it because no user tool can
// set it: copying, replacing, truncating or rewriting the file, even with its modification time
// restored afterwards, changes it, and so does a rename over the path (a new inode).
type fileIdentity struct {
	Dev   uint64 `json:"dev"`
	Inode uint64 `json:"inode"`
	Size  int64  `json:"size"`
	Mtime int64  `json:"mtimeNs"`
	Ctime int64  `json:"ctimeNs"`
}

type verifiedEnvoy struct {
	File    fileIdentity `json:"file"`
	Version string       `json:"version"`
}

func identify(path string) (fileIdentity, error) {
	info, err := os.Stat(path)
	if err != nil {
		return fileIdentity{}, err
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return fileIdentity{}, errors.New("no file identity on this platform")
	}
	return fileIdentity{
		Dev: uint64(st.Dev), Inode: st.Ino, Size: info.Size(),
		Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(),
	}, nil
}

// envoyVersion is EnvoyVersion for an absolute path, answered from the record of earlier checks
// when the file has not changed since. Only a successful check is recorded, so a binary that is
// not Envoy is run and reported every time. The record is an optimisation: when the data
// directory cannot be read or written, the binary is simply checked.
func (a *Acquirer) envoyVersion(ctx context.Context, path string) (string, error) {
	dataHome, err := a.dataHome()
	if err != nil {
		return EnvoyVersion(ctx, path)
	}
	record := filepath.Join(dataHome, verifiedFile)
	id, idErr := identify(path)
	known := readVerified(record)
	if v, ok := known[path]; ok && idErr == nil && v.File == id {
		a.logger().Debug("envoy binary unchanged since it was last checked; not running --version", "path", path, "version", v.Version)
		return v.Version, nil
	}
	checked := time.Now()
	version, err := EnvoyVersion(ctx, path)
	if err != nil || idErr != nil || checked.Sub(time.Unix(0, id.Ctime)) < racyWindow {
		return version, err
	}
	// The check ran the binary; one changed while it ran must not be recorded as checked.
	if after, err := identify(path); err != nil || after != id {
		return version, nil
	}
	if known == nil {
		known = map[string]verifiedEnvoy{}
	}
	known[path] = verifiedEnvoy{File: id, Version: version}
	if err := writeVerified(dataHome, record, known); err != nil {
		a.logger().Debug("cannot record the checked envoy binary; it is checked again next time", "error", err.Error())
	}
	return version, nil
}

// readVerified returns the recorded checks; a missing or unreadable record is an empty one.
func readVerified(record string) map[string]verifiedEnvoy {
	data, err := os.ReadFile(record)
	if err != nil {
		return nil
	}
	var known map[string]verifiedEnvoy
	if json.Unmarshal(data, &known) != nil {
		return nil
	}
	return known
}

// writeVerified replaces the record atomically, so that concurrent Porticos never read half of
// one; the last writer wins, and what it drops is merely checked again.
func writeVerified(dataHome, record string, known map[string]verifiedEnvoy) error {
	// Binaries that are gone would otherwise accumulate for ever.
	for path := range known {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			delete(known, path)
		}
	}
	data, err := json.MarshalIndent(known, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataHome, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dataHome, verifiedFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), record); err != nil {
		return fmt.Errorf("record checked envoy binaries: %w", err)
	}
	return nil
}
