package translator_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/translator"
)

// TestGoldenRateLimits pins the limits the rate limit service is given for each ratelimit-*
// golden input, one line per limit, in testdata/out/<case>.limits.txt. The descriptors must
// match the rate_limits actions in the same case's routes output.
func TestGoldenRateLimits(t *testing.T) {
	inputs, err := filepath.Glob("testdata/in/ratelimit-*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no rate limit golden inputs: %v", err)
	}
	cases := map[string]bool{}
	for _, in := range inputs {
		cases[strings.TrimSuffix(filepath.Base(in), ".yaml")] = true
	}
	// A golden file without its input would silently stop being checked.
	outputs, _ := filepath.Glob("testdata/out/*.limits.txt")
	for _, out := range outputs {
		if cases[strings.TrimSuffix(filepath.Base(out), ".limits.txt")] {
			continue
		}
		if !*update {
			t.Errorf("%s has no input testdata/in/ratelimit-*.yaml; delete it or run with -update", out)
		} else if err := os.Remove(out); err != nil {
			t.Error(err)
		}
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			cfg, err := config.Load(in)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			out, err := translator.Translate(cfg)
			if err != nil {
				t.Fatalf("translate: %v", err)
			}
			var b strings.Builder
			for _, l := range out.RateLimits {
				fmt.Fprintf(&b, "%s: %d per %s, shadow %t, descriptor", l.Name, l.RequestsPerUnit, l.Unit, l.Shadow)
				for _, d := range l.Descriptors {
					if d.Value != "" {
						fmt.Fprintf(&b, " %s=%s", d.Key, d.Value)
					} else {
						fmt.Fprintf(&b, " %s=*", d.Key)
					}
				}
				b.WriteString("\n")
			}
			compareGolden(t, filepath.Join("testdata", "out", name+".limits.txt"), []byte(b.String()))
		})
	}
}
