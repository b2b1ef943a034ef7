// Package credentials reads the credential files that Portico's Secrets name, API keys and
// htpasswd users, and checks credentials against them.
//
// It owns the two file formats and the rule that secret material never leaves it: a parse error
// names the file and line and says what is wrong, but never quotes the line, and a parsed File
// keeps only a digest of each API key. It must not log, watch files or know the configuration
// schema: config validates files with it at load time and the authz service serves them.
package credentials

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/portico-gw/portico/internal/filelimit"
)

// The types of credential file.
const (
	// TypeAPIKeys is a file of `identity:key` lines. An identity may have several keys (to
	// rotate them); a key belongs to one identity.
	TypeAPIKeys = "apiKeys"
	// TypeHtpasswd is an htpasswd file of `user:bcrypt-hash` lines, as `htpasswd -B` writes.
	TypeHtpasswd = "htpasswd"
)

// Types lists the file types, for messages.
var Types = []string{TypeAPIKeys, TypeHtpasswd}

// MaxFileSize bounds a credential file: far above any real one, low enough that a wrong path
// (a disk image, a log) fails fast instead of filling memory.
const MaxFileSize = 16 << 20

// MinKeyLength is the shortest API key accepted. Keys are bearer secrets compared as a whole;
// anything shorter could be guessed.
const MinKeyLength = 16

// maxKeyLength bounds a key to what fits in a request header comfortably.
const maxKeyLength = 1024

// identityRE is what an identity (an API key's identity, an htpasswd user) may look like: it
// goes upstream in a header and into rate limit descriptors, so it needs no escaping anywhere.
var identityRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$`)

// LineError is a problem in one line of a credential file. Its message never quotes the line,
// which may hold a key or a hash.
type LineError struct {
	File    string
	Line    int
	Message string
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Message) }

// LineErrors lists the line problems in an error of Read or Parse, none when the error is
// about the file as a whole.
func LineErrors(err error) []*LineError {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*LineError
	for _, e := range errs {
		var le *LineError
		if errors.As(e, &le) {
			out = append(out, le)
		}
	}
	return out
}

// File is one parsed credential file. It is safe for concurrent use.
type File struct {
	typ string
	// keys maps the SHA-256 of each API key to its identity.
	keys map[[sha256.Size]byte]string
	// users maps each htpasswd user to its bcrypt hash.
	users map[string][]byte
	// verified remembers passwords that matched, so that a client sending the same basic
	// credentials on every request pays bcrypt's cost once.
	verified *verifiedCache
}

// Type is the file's type, TypeAPIKeys or TypeHtpasswd.
func (f *File) Type() string { return f.typ }

// Len is the number of keys or users in the file.
func (f *File) Len() int { return len(f.keys) + len(f.users) }

// Read reads and parses the credential file at path. A missing or unreadable file is a plain
// wrapped error (errors.Is(err, fs.ErrNotExist) works); problems in lines are *LineError values
// joined together, one per line.
func Read(path, typ string) (*File, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.IsDir() {
		return nil, fmt.Errorf("%s is a directory; name the credential file", path)
	}
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, typ, data)
}

// ReadFile reads the credential file at path, refusing one larger than MaxFileSize without
// reading more than that: a FIFO or a device has no size to check beforehand.
func ReadFile(path string) ([]byte, error) {
	data, err := filelimit.Read(path, MaxFileSize)
	var tl *filelimit.TooLargeError
	if errors.As(err, &tl) {
		return nil, fmt.Errorf("%s holds more than %d bytes, the most a credential file may have", path, MaxFileSize)
	}
	return data, err
}

// Parse parses data, read from the file name, as a credential file of type typ.
func Parse(name, typ string, data []byte) (*File, error) {
	f := &File{typ: typ}
	var errs []error
	switch typ {
	case TypeAPIKeys:
		f.keys = map[[sha256.Size]byte]string{}
		keyLine := map[[sha256.Size]byte]int{}
		eachLine(data, func(n int, left, right string, ok bool) {
			fail := func(format string, args ...any) {
				errs = append(errs, &LineError{File: name, Line: n, Message: fmt.Sprintf(format, args...)})
			}
			switch {
			case !ok:
				fail("expected identity:key")
				return
			case !identityRE.MatchString(left):
				fail("the identity must be 1-128 letters, digits and . _ @ + -, starting with a letter or digit")
				return
			case len(right) < MinKeyLength:
				fail("the key is shorter than %d characters; use a long random key", MinKeyLength)
				return
			case len(right) > maxKeyLength:
				fail("the key is longer than %d characters", maxKeyLength)
				return
			case !visibleASCII(right):
				fail("the key may only contain visible ASCII characters (no spaces)")
				return
			}
			d := sha256.Sum256([]byte(right))
			if first, dup := keyLine[d]; dup {
				fail("the key is already given at line %d; each key must belong to one identity", first)
				return
			}
			keyLine[d] = n
			f.keys[d] = left
		})
	case TypeHtpasswd:
		f.users = map[string][]byte{}
		f.verified = &verifiedCache{m: map[[sha256.Size]byte]struct{}{}}
		userLine := map[string]int{}
		eachLine(data, func(n int, left, right string, ok bool) {
			fail := func(format string, args ...any) {
				errs = append(errs, &LineError{File: name, Line: n, Message: fmt.Sprintf(format, args...)})
			}
			switch {
			case !ok || left == "":
				fail("expected user:hash")
				return
			case !identityRE.MatchString(left):
				fail("the user name must be 1-128 letters, digits and . _ @ + -, starting with a letter or digit")
				return
			case !bcryptPrefix(right):
				fail("not a bcrypt hash; only $2y$, $2a$ and $2b$ hashes are accepted (create entries with htpasswd -B)")
				return
			}
			if _, err := bcrypt.Cost([]byte(right)); err != nil {
				fail("the bcrypt hash is malformed")
				return
			}
			if first, dup := userLine[left]; dup {
				fail("the user is already defined at line %d", first)
				return
			}
			userLine[left] = n
			f.users[left] = []byte(right)
		})
	default:
		return nil, fmt.Errorf("unknown credential file type %q (known: %s)", typ, strings.Join(Types, ", "))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return f, nil
}

// eachLine calls fn for each line that is neither blank nor a # comment, split at its first
// colon; ok is false when it has none. Surrounding whitespace is not part of either side.
func eachLine(data []byte, fn func(n int, left, right string, ok bool)) {
	for i, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSpace(string(line))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		left, right, ok := strings.Cut(s, ":")
		fn(i+1, left, right, ok)
	}
}

func visibleASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func bcryptPrefix(h string) bool {
	return strings.HasPrefix(h, "$2y$") || strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$")
}

// IdentifyKey returns the identity an API key belongs to.
func (f *File) IdentifyKey(key string) (string, bool) {
	if f.keys == nil || key == "" {
		return "", false
	}
	id, ok := f.keys[sha256.Sum256([]byte(key))]
	return id, ok
}

// CheckPassword reports whether password is user's password.
func (f *File) CheckPassword(user, password string) bool {
	hash, ok := f.users[user]
	if !ok {
		return false
	}
	// The cache key is a digest of user and password together, so a hit proves both; the
	// cache is per File, so a reloaded file starts with none.
	key := sha256.Sum256([]byte(user + "\x00" + password))
	if f.verified.has(key) {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	f.verified.add(key)
	return true
}

// maxVerified bounds the cache of verified passwords; when it is full it starts again empty.
const maxVerified = 4096

type verifiedCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]struct{}
}

func (c *verifiedCache) has(key [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.m[key]
	return ok
}

func (c *verifiedCache) add(key [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxVerified {
		clear(c.m)
	}
	c.m[key] = struct{}{}
}
