package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse, seeded with every YAML file in testdata. Whatever
// the input, Parse must not panic, must return either a config or an error, and every
// diagnostic must point into the file it was given.
func FuzzParse(f *testing.F) {
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isYAMLName(path) {
			return err
		}
		data, err := os.ReadFile(path)
		f.Add(data)
		return err
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("fuzz.yaml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse() = %v, %v: want exactly one of a config and an error", cfg, err)
		}
		var diags Diagnostics
		switch {
		case err == nil:
			diags = cfg.Warnings
			if diags.HasErrors() {
				t.Fatalf("accepted config carries errors: %v", diags)
			}
		case errors.As(err, &diags):
			if !diags.HasErrors() {
				t.Fatalf("rejected config without an error diagnostic: %v", diags)
			}
		case !errors.Is(err, ErrNoDocuments):
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		for _, d := range diags {
			if d.Pos.File != "fuzz.yaml" || d.Pos.Line < 0 || d.Pos.Column < 0 || d.Message == "" {
				t.Fatalf("malformed diagnostic %#v", d)
			}
			if strings.Contains(d.Message, "internal error") {
				t.Fatalf("decoder hit an unsupported schema type: %v", d)
			}
		}
	})
}
