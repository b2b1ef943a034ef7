package filelimit

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestRead(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		path  string
		limit int64
		want  string
		check func(error) bool
	}{
		{"at the limit", path, 10, "0123456789", nil},
		{"over the limit", path, 9, "", func(err error) bool {
			var tl *TooLargeError
			return errors.As(err, &tl) && tl.Limit == 9 && tl.Path == path
		}},
		{"missing", filepath.Join(dir, "none"), 10, "", func(err error) bool { return errors.Is(err, fs.ErrNotExist) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			data, err := Read(c.path, c.limit)
			if c.check == nil {
				if err != nil || string(data) != c.want {
					t.Errorf("got %q, %v; want %q", data, err, c.want)
				}
				return
			}
			if data != nil || !c.check(err) {
				t.Errorf("got %q, %v", data, err)
			}
		})
	}
}
