package translator_test

import (
	"path/filepath"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/translator"
)

// TestExamples keeps every file under examples/ valid: each loads without errors or warnings
// and translates into a consistent snapshot, exactly what `portico validate` checks.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d examples, want at least quickstart, delegation and canary", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Load(f)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if len(cfg.Warnings) > 0 {
				t.Errorf("warnings:\n%v", cfg.Warnings)
			}
			out, err := translator.Translate(cfg)
			if err != nil {
				t.Fatalf("translate: %v", err)
			}
			snap, err := cache.NewSnapshot("1", out.Resources())
			if err != nil {
				t.Fatal(err)
			}
			if err := snap.Consistent(); err != nil {
				t.Errorf("inconsistent snapshot: %v", err)
			}
		})
	}
}
