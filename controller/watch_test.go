package controller

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// settle is the production value: a burst written by one test goroutine fits in it easily,
// even on a loaded machine.
const settle = 100 * time.Millisecond

// watchCalls starts a Watcher on paths and returns a counter of onChange calls. NewWatcher has
// added every watch when it returns, so no change made after it is missed.
func watchCalls(t *testing.T, paths ...string) *atomic.Int32 {
	t.Helper()
	var calls atomic.Int32
	w, err := NewWatcher(slog.New(slog.DiscardHandler), paths)
	if err != nil {
		t.Fatalf("NewWatcher: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, settle, func() { calls.Add(1) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &calls
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestWatchRenameSave(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "portico.yaml")
	write(t, file, "one")
	calls := watchCalls(t, file)
	// An editor's save: a new file renamed over the old one, which replaces the inode.
	write(t, file+".tmp", "two")
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a reload after a rename save", func() bool { return calls.Load() >= 1 })
	// And again: a file watch would have been lost with the first inode.
	write(t, file+".tmp", "three")
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a reload after a second rename save", func() bool { return calls.Load() >= 2 })
}

func TestWatchCoalescesBursts(t *testing.T) {
	dir := t.TempDir()
	calls := watchCalls(t, dir)
	for i := range 10 {
		write(t, filepath.Join(dir, "f.yaml"), string(rune('a'+i)))
	}
	eventually(t, "a reload after the burst", func() bool { return calls.Load() >= 1 })
	time.Sleep(3 * settle) // no second call may follow
	if n := calls.Load(); n != 1 {
		t.Errorf("a burst of 10 writes caused %d reloads, want 1", n)
	}
}

// TestWatchConfigMapSwap replays how the kubelet updates a mounted ConfigMap: files are
// symlinks through "..data", which points at a timestamped directory; an update writes a new
// directory and atomically renames a new "..data" symlink over the old one.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	v1 := filepath.Join(dir, "..2026_01_01_00_00_00.1")
	if err := os.Mkdir(v1, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(v1, "portico.yaml"), "one")
	must(t, os.Symlink(filepath.Base(v1), filepath.Join(dir, "..data")))
	must(t, os.Symlink(filepath.Join("..data", "portico.yaml"), filepath.Join(dir, "portico.yaml")))
	calls := watchCalls(t, dir)

	v2 := filepath.Join(dir, "..2026_01_01_00_00_01.2")
	must(t, os.Mkdir(v2, 0o755))
	write(t, filepath.Join(v2, "portico.yaml"), "two")
	must(t, os.Symlink(filepath.Base(v2), filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	must(t, os.RemoveAll(v1))
	eventually(t, "a reload after the symlink swap", func() bool { return calls.Load() >= 1 })
	if b, err := os.ReadFile(filepath.Join(dir, "portico.yaml")); err != nil || string(b) != "two" {
		t.Fatalf("after the swap the file reads %q, %v", b, err)
	}
}

func TestWatchNewSubdirectory(t *testing.T) {
	dir := t.TempDir()
	calls := watchCalls(t, dir)
	sub := filepath.Join(dir, "team")
	must(t, os.Mkdir(sub, 0o755))
	eventually(t, "a reload for the new directory", func() bool { return calls.Load() >= 1 })
	eventually(t, "the new directory's creation settles", func() bool {
		n := calls.Load()
		time.Sleep(3 * settle)
		return calls.Load() == n
	})
	before := calls.Load()
	write(t, filepath.Join(sub, "routes.yaml"), "x")
	eventually(t, "a reload for a file in the new directory", func() bool { return calls.Load() > before })
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
