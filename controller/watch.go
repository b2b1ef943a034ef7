package controller

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher reports changes of configuration files. It watches directories, not files: editors
// save by writing a new file and renaming it over the old one, and Kubernetes ConfigMaps swap a
// symlink, and both replace the inode a file watch would hold.
type Watcher struct {
	w      *fsnotify.Watcher
	logger *slog.Logger

	mu sync.Mutex
	// added holds the directories Add watches, so that each is added once.
	added map[string]bool
}

// NewWatcher starts watching paths. Call it before the files are first read, so that an edit
// made while portico starts is not missed: its events wait for Run.
func NewWatcher(logger *slog.Logger, paths []string) (*Watcher, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("start file watcher: %w", err)
	}
	for _, p := range paths {
		if err := addWatches(w, p); err != nil {
			w.Close()
			return nil, err
		}
	}
	return &Watcher{w: w, logger: logger, added: map[string]bool{}}, nil
}

// Add also watches the directories of files, such as certificates the configuration names
// (config.Config.ServedFiles), so that replacing one (by rename or by overwriting it) reloads
// the configuration. Call it after each successful load: the files a configuration names are
// only known then. Directories already added are skipped; none is ever removed, since a
// directory that is no longer needed costs only a reload that changes nothing. It is safe to
// call while Run runs. A directory that cannot be watched is reported and the rest are added.
func (wa *Watcher) Add(files ...string) error {
	wa.mu.Lock()
	defer wa.mu.Unlock()
	var errs []error
	for _, f := range files {
		dir := filepath.Dir(f)
		if wa.added[dir] {
			continue
		}
		if err := wa.w.Add(dir); err != nil {
			errs = append(errs, fmt.Errorf("watch directory %s: %w", dir, err))
			continue
		}
		wa.added[dir] = true
	}
	return errors.Join(errs...)
}

// Close stops watching; Run closes the watcher itself when it returns, and closing twice is
// harmless.
func (wa *Watcher) Close() error { return wa.w.Close() }

// Run calls onChange after the watched files change, until ctx is done, then stops watching.
// A burst of events (one save can cause several) is coalesced into one call once the files
// have been quiet for settle.
func (wa *Watcher) Run(ctx context.Context, settle time.Duration, onChange func()) error {
	w, logger := wa.w, wa.logger
	defer w.Close()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			if ev.Op&fsnotify.Create != 0 {
				// A new directory inside a watched config directory holds config too.
				if st, err := os.Stat(ev.Name); err == nil && st.IsDir() {
					if err := addTree(w, ev.Name); err != nil {
						logger.Warn("cannot watch new directory", "dir", ev.Name, "error", err.Error())
					}
				}
			}
			logger.Debug("config file event", "event", ev.String())
			timer.Reset(settle)
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			logger.Warn("file watcher error", "error", err.Error())
		case <-timer.C:
			onChange()
		}
	}
}

// addWatches watches a config file's directory, or a config directory and everything below it.
func addWatches(w *fsnotify.Watcher, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("watch %s: %w", path, err)
	}
	if !st.IsDir() {
		dir := filepath.Dir(path)
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("watch directory %s: %w", dir, err)
		}
		return nil
	}
	return addTree(w, path)
}

func addTree(w *fsnotify.Watcher, root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if err := w.Add(p); err != nil {
			return fmt.Errorf("watch directory %s: %w", p, err)
		}
		return nil
	})
}
