package translator_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/internal/protoyaml"
	"github.com/portico-gw/portico/translator"
)

var update = flag.Bool("update", false, "rewrite testdata/out from the translator's current output")

// TestGolden translates every testdata/in/<case>.yaml and compares each resource type with
// testdata/out/<case>.<type>.yaml. With -update it rewrites the outputs and deletes stale ones.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	wanted := map[string]bool{}
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
			snap, err := cache.NewSnapshot("1", out.Resources())
			if err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			if err := snap.Consistent(); err != nil {
				t.Errorf("inconsistent snapshot: %v", err)
			}
			for kind, msgs := range map[string][]proto.Message{
				"listeners": protos(out.Listeners),
				"routes":    protos(out.Routes),
				"clusters":  protos(out.Clusters),
				"endpoints": protos(out.Endpoints),
			} {
				for _, m := range msgs {
					if v, ok := m.(interface{ ValidateAll() error }); ok {
						if err := v.ValidateAll(); err != nil {
							t.Errorf("%s: invalid %T: %v", kind, m, err)
						}
					}
				}
				got, err := protoyaml.MarshalList(msgs)
				if err != nil {
					t.Fatal(err)
				}
				path := filepath.Join("testdata", "out", name+"."+kind+".yaml")
				wanted[path] = true
				compareGolden(t, path, got)
			}
			compareSecrets(t, name, out.Secrets, wanted)
		})
	}
	if *update {
		stale, _ := filepath.Glob("testdata/out/*.yaml")
		for _, p := range stale {
			if !wanted[p] {
				if err := os.Remove(p); err != nil {
					t.Error(err)
				}
			}
		}
	}
}

// TestDeterministic translates every golden input twice and expects identical resources, which
// the xDS server relies on to skip pushes of unchanged configuration. Selector-resolved
// attachment and delegation are where map iteration could leak into the order.
func TestDeterministic(t *testing.T) {
	inputs, err := filepath.Glob("testdata/in/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			cfg, err := config.Load(in)
			if err != nil {
				t.Fatal(err)
			}
			a, err := translator.Translate(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for range 5 {
				b, err := translator.Translate(cfg)
				if err != nil {
					t.Fatal(err)
				}
				for typ, ra := range a.Resources() {
					rb := b.Resources()[typ]
					if len(ra) != len(rb) {
						t.Fatalf("%s: %d vs %d resources", typ, len(ra), len(rb))
					}
					for i := range ra {
						if !proto.Equal(ra[i], rb[i]) {
							t.Errorf("%s[%d] differs between two translations", typ, i)
						}
					}
				}
			}
		})
	}
}

// compareSecrets compares the case's Secrets, when it has any, with testdata/out/<case>.secrets.yaml.
// Private keys are written as their length only: the golden shows that a key is there and of
// which size, and TestSecretsCarryFiles checks the bytes.
func compareSecrets(t *testing.T, name string, secrets []*tlsv3.Secret, wanted map[string]bool) {
	t.Helper()
	path := filepath.Join("testdata", "out", name+".secrets.yaml")
	if len(secrets) == 0 {
		if _, err := os.Stat(path); err == nil && !*update {
			t.Errorf("%s exists but the case has no secrets (run go test ./translator -update)", path)
		}
		return
	}
	shown := make([]proto.Message, len(secrets))
	for i, s := range secrets {
		s = proto.Clone(s).(*tlsv3.Secret)
		if c := s.GetTlsCertificate(); c != nil {
			c.PrivateKey = &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{
				InlineString: fmt.Sprintf("[%d bytes of private key]", len(c.GetPrivateKey().GetInlineBytes())),
			}}
		}
		shown[i] = s
	}
	got, err := protoyaml.MarshalList(shown)
	if err != nil {
		t.Fatal(err)
	}
	wanted[path] = true
	compareGolden(t, path, got)
}

func protos[T proto.Message](list []T) []proto.Message {
	out := make([]proto.Message, len(list))
	for i, m := range list {
		out[i] = m
	}
	return out
}

func compareGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the translator's output (run go test ./translator -update and review the diff)\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}
