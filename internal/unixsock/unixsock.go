// Package unixsock listens on Unix sockets that only their owner may use: portico's internal
// surfaces (xDS, rate limiting) are reached by Envoy through them, never over TCP.
package unixsock

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// MaxPath is the usable length of sun_path on Linux (108 bytes with the NUL).
const MaxPath = 107

// Listen prepares socketPath and listens on it. Only the owner may connect: the directory
// is created 0700 (or, when it exists, restricted to 0700) and the socket made 0600 before the
// first Accept. The directory matters as much as the socket: between listen and chmod the
// socket has the umask's permissions, and only the directory keeps others out meanwhile.
func Listen(socketPath string) (net.Listener, error) {
	if len(socketPath) > MaxPath {
		return nil, fmt.Errorf("socket path %q is %d bytes long; the limit is %d", socketPath, len(socketPath), MaxPath)
	}
	if err := PrivateDir(filepath.Dir(socketPath)); err != nil {
		return nil, err
	}
	if err := removeStale(socketPath); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", socketPath)
	if err != nil {
		return nil, fmt.Errorf("listen on socket: %w", err)
	}
	if err := os.Chmod(socketPath, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("restrict socket permissions: %w", err)
	}
	return l, nil
}

// PrivateDir makes dir a directory only its owner can enter: created 0700 when missing, and
// restricted to 0700 when it exists with wider permissions. Sockets made in it by others (Envoy's
// hot restart sockets) are then out of other users' reach whatever their own mode.
func PrivateDir(dir string) error {
	switch fi, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create socket directory: %w", err)
		}
	case err != nil:
		return fmt.Errorf("check socket directory: %w", err)
	case fi.Mode().Perm()&0o077 != 0:
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("restrict socket directory %s to its owner: %w", dir, err)
		}
	}
	return nil
}

// removeStale removes a socket left behind by a process that died, but refuses to touch
// anything that is not a socket or a socket someone still answers on.
func removeStale(socketPath string) error {
	fi, err := os.Lstat(socketPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check socket path: %w", err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("socket path %s exists and is not a socket; remove it or choose another path", socketPath)
	}
	if conn, err := net.DialTimeout("unix", socketPath, time.Second); err == nil {
		conn.Close()
		return fmt.Errorf("socket %s is in use by another process", socketPath)
	}
	if err := os.Remove(socketPath); err != nil {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}
