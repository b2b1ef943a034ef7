package unixsock

import (
	"os"
	"path/filepath"
	"testing"
)

// TestListenRestrictsAccess proves the socket is 0600 in a 0700 directory, whether Listen
// creates the directory or finds it open to others.
func TestListenRestrictsAccess(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(dir string) error
	}{
		{"new directory", func(string) error { return nil }},
		{"existing world-readable directory", func(dir string) error { return os.Mkdir(dir, 0o755) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, err := os.MkdirTemp("", "p")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(base) })
			dir := filepath.Join(base, "run")
			if err := tc.prepare(dir); err != nil {
				t.Fatal(err)
			}
			l, err := Listen(filepath.Join(dir, "s.sock"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "s.sock"): 0o600} {
				fi, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got != want {
					t.Errorf("%s has mode %o, want %o", path, got, want)
				}
			}
		})
	}
}
