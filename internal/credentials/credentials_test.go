package credentials

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func hash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestAPIKeys(t *testing.T) {
	data := "# partners\nalice:alice-key-0123456789\n\n  bob:bob-key-0123456789abc  \nalice:alice-rotated-0123456789\n"
	f, err := Parse("keys.txt", TypeAPIKeys, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"alice-key-0123456789":     "alice",
		"alice-rotated-0123456789": "alice",
		"bob-key-0123456789abc":    "bob",
		"bob-key-0123456789ab":     "",
		"":                         "",
	} {
		got, ok := f.IdentifyKey(key)
		if got != want || ok != (want != "") {
			t.Errorf("IdentifyKey(%q) = %q, %v; want %q", key, got, ok, want)
		}
	}
	if f.Len() != 3 {
		t.Errorf("Len = %d, want 3", f.Len())
	}
}

func TestHtpasswd(t *testing.T) {
	data := "alice:" + hash(t, "wonderland") + "\n" + "bob:" + strings.Replace(hash(t, "builder"), "$2a$", "$2y$", 1) + "\n"
	f, err := Parse("users", TypeHtpasswd, []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, password string
		want           bool
	}{
		{"alice", "wonderland", true},
		{"alice", "wonderland", true}, // from the cache
		{"alice", "Wonderland", false},
		{"bob", "builder", true},
		{"bob", "wonderland", false},
		{"carol", "wonderland", false},
	} {
		if got := f.CheckPassword(c.user, c.password); got != c.want {
			t.Errorf("CheckPassword(%q, %q) = %v, want %v", c.user, c.password, got, c.want)
		}
	}
}

// TestErrorsNameLinesNotSecrets proves that a parse error points at the line and never quotes
// what is on it.
func TestErrorsNameLinesNotSecrets(t *testing.T) {
	secretish := "s3cr3t-VALUE-never-printed"
	cases := []struct {
		name, typ, data string
		want            []string
	}{
		{"no colon", TypeAPIKeys, secretish + "\n", []string{"keys:1: expected identity:key"}},
		{"short key", TypeAPIKeys, "a:short\n", []string{"keys:1: the key is shorter than 16"}},
		{"bad identity", TypeAPIKeys, "a b:" + secretish + "\n", []string{"keys:1: the identity must be"}},
		{"space in key", TypeAPIKeys, "a:" + secretish + " x\n", []string{"keys:1: the key may only contain visible ASCII"}},
		{"duplicate key", TypeAPIKeys, "a:" + secretish + "\n#\nb:" + secretish + "\n", []string{"keys:3: the key is already given at line 1"}},
		{"md5 hash", TypeHtpasswd, "u:$apr1$" + secretish + "\n", []string{"keys:1: not a bcrypt hash"}},
		{"sha hash", TypeHtpasswd, "u:{SHA}" + secretish + "\n", []string{"keys:1: not a bcrypt hash"}},
		{"plain", TypeHtpasswd, "u:" + secretish + "\n", []string{"keys:1: not a bcrypt hash"}},
		{"malformed bcrypt", TypeHtpasswd, "u:$2y$10$" + secretish + "\n", []string{"keys:1: the bcrypt hash is malformed"}},
		{"no user", TypeHtpasswd, secretish + "\n", []string{"keys:1: expected user:hash"}},
		{"every line", TypeAPIKeys, "x\n\ny\n", []string{"keys:1: expected", "keys:3: expected"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("keys", c.typ, []byte(c.data))
			if err == nil {
				t.Fatal("parsed")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error quotes the secret: %q", err)
			}
			if got := len(LineErrors(err)); got != len(c.want) {
				t.Errorf("LineErrors: %d, want %d", got, len(c.want))
			}
		})
	}
}

func TestDuplicateUser(t *testing.T) {
	h := hash(t, "pw")
	_, err := Parse("users", TypeHtpasswd, []byte("u:"+h+"\nu:"+h+"\n"))
	if err == nil || !strings.Contains(err.Error(), "users:2: the user is already defined at line 1") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), h) {
		t.Errorf("error quotes the hash")
	}
}

func TestRead(t *testing.T) {
	dir := t.TempDir()
	if _, err := Read(filepath.Join(dir, "missing"), TypeAPIKeys); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := Read(dir, TypeAPIKeys); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: err = %v", err)
	}
	p := filepath.Join(dir, "keys")
	if err := os.WriteFile(p, []byte("ci:0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Read(p, TypeAPIKeys)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := f.IdentifyKey("0123456789abcdef"); id != "ci" {
		t.Errorf("identity %q, want ci", id)
	}
	if _, err := Read(p, "ldap"); err == nil || !strings.Contains(err.Error(), `unknown credential file type "ldap"`) {
		t.Errorf("unknown type: err = %v", err)
	}
}

// TestReadStopsAtTheLimit: a path that is not a regular file (a FIFO, a device, a file still
// growing) has no size to check beforehand; Read must stop reading at the limit rather than
// take whatever the other end sends.
func TestReadStopsAtTheLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Skipf("no FIFOs here: %v", err)
	}
	wrote := make(chan error, 1)
	go func() {
		w, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			wrote <- err
			return
		}
		defer w.Close()
		// Comments, past the limit: only the size can be wrong.
		chunk := []byte(strings.Repeat("# padding\n", 6554))
		for n := 0; n <= MaxFileSize; n += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				wrote <- nil // the reader stopped and closed its end
				return
			}
		}
		wrote <- nil
	}()
	_, err := Read(path, TypeAPIKeys)
	if err == nil || !strings.Contains(err.Error(), "holds more than") || len(LineErrors(err)) > 0 {
		t.Errorf("err = %v, want the file refused as too large", err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}
