package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An explicit binary is run with --version once; later starts trust the record until the file
// changes in any way, and a binary that is not Envoy is never recorded.
func TestVerifiedVersionIsRemembered(t *testing.T) {
	dir := t.TempDir()
	runs := filepath.Join(dir, "runs")
	envoy := filepath.Join(dir, "envoy")
	script := func(version string) []byte {
		return []byte("#!/bin/sh\necho x >> " + runs + "\necho 'envoy  version: 0123abcd/" + version + "/Clean/RELEASE/BoringSSL'\n")
	}
	countRuns := func() int {
		data, _ := os.ReadFile(runs)
		return strings.Count(string(data), "x")
	}
	write := func(data []byte) {
		t.Helper()
		if err := os.WriteFile(envoy, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	acquire := func() (Envoy, error) {
		t.Helper()
		a, _ := newTestAcquirer(t, filepath.Join(dir, "data"), refusedURL(t))
		a.Run = failingRun(t)
		return a.Acquire(t.Context(), envoy, "")
	}
	write(script("1.40.0"))
	// A file changed within the last clock tick or so is not recorded; wait until it is older.
	first, err := identify(envoy)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Since(time.Unix(0, first.Ctime)) < racyWindow; {
		if time.Now().After(deadline) {
			t.Fatal("the file's change time does not age")
		}
		time.Sleep(10 * time.Millisecond)
	}

	for i := range 3 {
		e, err := acquire()
		if err != nil || e.Version != "1.40.0" {
			t.Fatalf("Acquire #%d = %+v, %v; want version 1.40.0", i+1, e, err)
		}
	}
	if n := countRuns(); n != 1 {
		t.Fatalf("an unchanged binary ran --version %d times in 3 starts, want 1", n)
	}

	// Same size, modification time restored: the change time still gives the rewrite away.
	info, err := os.Stat(envoy)
	if err != nil {
		t.Fatal(err)
	}
	write(script("1.40.1"))
	if err := os.Chtimes(envoy, time.Time{}, info.ModTime()); err != nil {
		t.Fatal(err)
	}
	if e, err := acquire(); err != nil || e.Version != "1.40.1" {
		t.Fatalf("Acquire after a rewrite = %+v, %v; want version 1.40.1, checked again", e, err)
	}
	if n := countRuns(); n != 2 {
		t.Fatalf("--version ran %d times, want 2: the rewritten binary must be checked again", n)
	}

	// A binary that is not Envoy is reported every time, never remembered.
	write([]byte("#!/bin/sh\necho x >> " + runs + "\necho hello\n"))
	for range 2 {
		if _, err := acquire(); err == nil || !strings.Contains(err.Error(), "does not run as Envoy") {
			t.Fatalf("Acquire of a non-Envoy binary = %v, want an error saying it does not run as Envoy", err)
		}
	}
	if n := countRuns(); n != 4 {
		t.Fatalf("--version ran %d times, want 4: a failing binary is checked on every start", n)
	}
}
