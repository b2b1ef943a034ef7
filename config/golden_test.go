package config

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected diagnostics in testdata/invalid and testdata/warning")

// goldenSets are the directories of golden cases: each *.yaml file or subdirectory is one case,
// loaded with Load, and <case><ext> beside it holds the exact diagnostics text expected.
var goldenSets = []struct {
	dir string
	ext string
	// fails says whether the case must be rejected (errors) or load with warnings.
	fails bool
}{
	{dir: "testdata/invalid", ext: ".err", fails: true},
	{dir: "testdata/warning", ext: ".warn", fails: false},
}

func TestGolden(t *testing.T) {
	for _, set := range goldenSets {
		t.Run(filepath.Base(set.dir), func(t *testing.T) {
			entries, err := os.ReadDir(set.dir)
			if err != nil {
				t.Fatal(err)
			}
			cases := map[string]bool{}
			for _, e := range entries {
				name := e.Name()
				if !e.IsDir() && !strings.HasSuffix(name, ".yaml") {
					continue
				}
				c := strings.TrimSuffix(name, ".yaml")
				cases[c] = true
				t.Run(c, func(t *testing.T) {
					t.Parallel()
					got := goldenOutput(t, filepath.Join(set.dir, name), set.fails)
					checkGolden(t, filepath.Join(set.dir, c+set.ext), got)
				})
			}
			// A golden file without its case would silently stop being checked.
			for _, e := range entries {
				c, ok := strings.CutSuffix(e.Name(), set.ext)
				if !ok || cases[c] {
					continue
				}
				if *update {
					if err := os.Remove(filepath.Join(set.dir, e.Name())); err != nil {
						t.Fatal(err)
					}
					continue
				}
				t.Errorf("%s/%s has no case %s.yaml; delete it or run with -update", set.dir, e.Name(), c)
			}
		})
	}
}

// goldenOutput loads path and returns the diagnostics text, failing the test when the outcome
// (rejected or loaded) is not the one the set expects.
func goldenOutput(t *testing.T, path string, fails bool) string {
	t.Helper()
	cfg, err := Load(path)
	if !fails {
		if err != nil {
			t.Fatalf("Load(%s) failed, want success with warnings:\n%v", path, err)
		}
		if len(cfg.Warnings) == 0 || cfg.Warnings.HasErrors() {
			t.Fatalf("Load(%s) warnings = %v, want only warnings and at least one", path, cfg.Warnings)
		}
		return cfg.Warnings.Error()
	}
	if err == nil {
		t.Fatalf("Load(%s) succeeded, want errors", path)
	}
	if cfg != nil {
		t.Errorf("Load(%s) returned a config along with an error", path)
	}
	var diags Diagnostics
	if !errors.As(err, &diags) {
		t.Fatalf("Load(%s) error is not Diagnostics: %v", path, err)
	}
	for _, d := range diags {
		if d.Pos.File == "" || !strings.HasPrefix(d.Pos.File, path) {
			t.Errorf("diagnostic %q does not name a file under %s", d.Error(), path)
		}
	}
	return err.Error()
}

func checkGolden(t *testing.T, golden, got string) {
	t.Helper()
	got += "\n"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("diagnostics differ from %s (run with -update to accept)\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
}

// TestValidExamples loads every example in testdata/valid on its own: each must be accepted
// without warnings.
func TestValidExamples(t *testing.T) {
	entries, err := os.ReadDir("testdata/valid")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no examples in testdata/valid")
	}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			t.Parallel()
			cfg, err := Load(filepath.Join("testdata/valid", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Warnings) > 0 {
				t.Errorf("unexpected warnings:\n%v", cfg.Warnings)
			}
		})
	}
}
