package authz

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/portico-gw/portico/internal/credentials"
)

// Secret is a credential file in force: its name, its type (credentials.TypeAPIKeys or
// credentials.TypeHtpasswd) and its absolute path.
type Secret struct {
	Name, Type, File string
}

// secretTable holds the credentials of the Secrets in force and keeps them fresh.
type secretTable struct {
	logger  *slog.Logger
	settle  time.Duration
	watcher *fsnotify.Watcher
	// byName is what checks read: a map replaced as a whole, never changed in place.
	byName atomic.Pointer[map[string]*loaded]

	mu sync.Mutex // serialises set and reloads
	// last is the set of the latest set call; byName also holds the one before.
	last map[string]*loaded
	// dirs are the directories watched, with how many files of byName are in each.
	dirs map[string]int
}

// loaded is one Secret and the credentials last read from its file.
type loaded struct {
	Secret
	creds atomic.Pointer[credentials.File]
	// digest is the SHA-256 of the file content creds came from, or of the last content that
	// failed to parse, so that an unchanged file is not parsed again.
	digest [sha256.Size]byte
}

func newSecretTable(logger *slog.Logger, settle time.Duration) (*secretTable, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("authz service: watch credential files: %w", err)
	}
	t := &secretTable{logger: logger, settle: settle, watcher: w, last: map[string]*loaded{}, dirs: map[string]int{}}
	t.byName.Store(&map[string]*loaded{})
	return t, nil
}

// file returns the credentials of the named Secret, nil when it is not in force or its file
// never parsed.
func (t *secretTable) file(name string) *credentials.File {
	if l := (*t.byName.Load())[name]; l != nil {
		return l.creds.Load()
	}
	return nil
}

func (t *secretTable) set(secrets []Secret) {
	t.mu.Lock()
	defer t.mu.Unlock()
	prev := *t.byName.Load()
	next := make(map[string]*loaded, len(secrets))
	for _, sec := range secrets {
		l := prev[sec.Name]
		if l == nil || l.Secret != sec {
			l = &loaded{Secret: sec}
		}
		// An unchanged Secret is read again too: a file whose directory could not be watched
		// is kept fresh only here. Its digest spares parsing a file that did not change.
		t.refresh(l)
		next[sec.Name] = l
	}
	table := make(map[string]*loaded, len(next)+len(t.last))
	for name, l := range t.last {
		if next[name] == nil {
			table[name] = l
		}
	}
	for name, l := range next {
		table[name] = l
	}
	t.last = next
	t.byName.Store(&table)
	t.watchDirs(table)
}

// watchDirs makes the watched directories those of table's files. A directory that cannot be
// watched is logged: its files are then read only when the configuration changes.
func (t *secretTable) watchDirs(table map[string]*loaded) {
	want := map[string]int{}
	for _, l := range table {
		want[filepath.Dir(l.File)]++
	}
	for dir := range t.dirs {
		if want[dir] == 0 {
			_ = t.watcher.Remove(dir)
		}
	}
	for dir := range want {
		if t.dirs[dir] == 0 {
			if err := t.watcher.Add(dir); err != nil {
				t.logger.Warn("credential files in this directory are not watched; changes apply on the next configuration reload",
					"dir", dir, "error", err.Error())
			}
		}
	}
	t.dirs = want
}

// refresh reads l's file and, when its content changed and parses, makes it l's credentials.
// A file that fails keeps the credentials read before, and the failure is logged with file
// and line but nothing of the content.
func (t *secretTable) refresh(l *loaded) {
	data, err := credentials.ReadFile(l.File)
	if err != nil {
		t.logger.Error("credential file not read; the last good credentials stay in force",
			"secret", l.Name, "error", err.Error())
		return
	}
	digest := sha256.Sum256(data)
	if digest == l.digest {
		return
	}
	l.digest = digest
	creds, err := credentials.Parse(l.File, l.Type, data)
	if err != nil {
		msg := err.Error()
		if lines := credentials.LineErrors(err); len(lines) > 0 {
			texts := make([]string, len(lines))
			for i, le := range lines {
				texts[i] = le.Error()
			}
			msg = strings.Join(texts, "; ")
		}
		t.logger.Error("credential file does not parse; the last good credentials stay in force",
			"secret", l.Name, "problems", msg)
		return
	}
	first := l.creds.Swap(creds) == nil
	if !first {
		t.logger.Info("credential file reloaded", "secret", l.Name, "file", l.File, "entries", creds.Len())
	}
}

// watch reloads the credential files whose directory changed, once the directory has been
// quiet for the settle time, until ctx is done.
func (t *secretTable) watch(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	dirty := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-t.watcher.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			dirty[filepath.Dir(ev.Name)] = true
			timer.Reset(t.settle)
		case err, ok := <-t.watcher.Errors:
			if !ok {
				return
			}
			t.logger.Warn("credential file watcher error", "error", err.Error())
		case <-timer.C:
			t.reload(dirty)
			clear(dirty)
		}
	}
}

// reload reads again every file in force that is in one of dirs.
func (t *secretTable) reload(dirs map[string]bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range *t.byName.Load() {
		if dirs[filepath.Dir(l.File)] {
			t.refresh(l)
		}
	}
}

func (t *secretTable) close() { _ = t.watcher.Close() }
