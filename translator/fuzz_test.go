package translator_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/translator"
)

// FuzzTranslate mutates the golden inputs. Whatever config validation accepts, Translate must
// turn into resources that pass Envoy's proto constraints and form a consistent snapshot: a
// configuration portico accepts must never be one it cannot serve. Run it with `make fuzz`:
// it needs a short -fuzzminimizetime, or it spends its time minimizing large inputs.
func FuzzTranslate(f *testing.F) {
	inputs, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(inputs) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("fuzz.yaml", data)
		if err != nil {
			return // rejected input: config's own fuzz test covers how
		}
		out, err := translator.Translate(cfg)
		if err != nil {
			t.Fatalf("valid config failed to translate: %v\n%s", err, data)
		}
		for typ, list := range out.Resources() {
			for _, r := range list {
				if v, ok := r.(interface{ ValidateAll() error }); ok {
					if err := v.ValidateAll(); err != nil {
						t.Fatalf("%s: invalid resource from a valid config: %v\n%s", typ, err, data)
					}
				}
			}
		}
		snap, err := cache.NewSnapshot("1", out.Resources())
		if err != nil {
			t.Fatal(err)
		}
		if err := snap.Consistent(); err != nil {
			t.Fatalf("inconsistent snapshot from a valid config: %v\n%s", err, data)
		}
	})
}
