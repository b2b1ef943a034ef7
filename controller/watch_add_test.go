package controller

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestWatchAddedDirectories adds a certificate's directory to a running Watcher and expects a
// reload for each way the certificate is replaced: a rename over it and a plain overwrite.
func TestWatchAddedDirectories(t *testing.T) {
	confDir, certDir := t.TempDir(), t.TempDir()
	conf := filepath.Join(confDir, "portico.yaml")
	cert := filepath.Join(certDir, "site.crt")
	write(t, conf, "config")
	write(t, cert, "one")
	w, err := NewWatcher(slog.New(slog.DiscardHandler), []string{conf})
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, settle, func() { calls.Add(1) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if err := w.Add(cert, filepath.Join(certDir, "site.key")); err != nil {
		t.Fatalf("Add: %v", err)
	}
	// Adding again is harmless: the configuration is loaded again after every change.
	if err := w.Add(cert); err != nil {
		t.Fatalf("second Add: %v", err)
	}

	write(t, cert+".new", "two")
	must(t, os.Rename(cert+".new", cert))
	eventually(t, "a reload after the certificate is renamed over", func() bool { return calls.Load() >= 1 })
	waitQuiet(t, &calls)
	before := calls.Load()
	write(t, cert, "three")
	eventually(t, "a reload after the certificate is overwritten", func() bool { return calls.Load() > before })

	missing := filepath.Join(certDir, "gone", "site.crt")
	if err := w.Add(missing); err == nil || !strings.Contains(err.Error(), filepath.Dir(missing)) {
		t.Errorf("Add of a missing directory = %v, want an error naming it", err)
	}
}

// waitQuiet waits until calls has stopped changing for a few settle periods.
func waitQuiet(t *testing.T, calls *atomic.Int32) {
	t.Helper()
	eventually(t, "the reloads settle", func() bool {
		n := calls.Load()
		time.Sleep(3 * settle)
		return calls.Load() == n
	})
}
