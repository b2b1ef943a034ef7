package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// isoFiles builds a configuration of one Gateway, Upstreams a and b, and the given extra
// documents, as one file.
func isoFiles(docs ...string) []SourceFile {
	all := append([]string{gatewayDoc, upstreamNamed("a"), upstreamNamed("b")}, docs...)
	return []SourceFile{{Name: "all.yaml", Data: strings.Join(all, "---\n")}}
}

func vsDoc(name, domain, upstream string) string {
	return fmt.Sprintf(`apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: %s}
spec:
  domains: [%s]
  routes:
  - match: {prefix: /}
    upstream: %s
`, name, domain, upstream)
}

// served maps each served VirtualService to the upstream of its first route.
func served(cfg *Config) map[string]string {
	out := map[string]string{}
	for _, vs := range cfg.VirtualServices {
		out[vs.Metadata.Name] = vs.Spec.Routes[0].Upstream
	}
	return out
}

func rejectedNames(iso *Isolated) []string {
	var out []string
	for _, r := range iso.Rejected {
		out = append(out, fmt.Sprintf("%s/%s kept=%v", r.Kind, r.Name, r.Kept))
	}
	return out
}

func mustIsolate(t *testing.T, prev *Config, files []SourceFile) *Isolated {
	t.Helper()
	iso, err := LoadIsolated(prev, files)
	if err != nil {
		t.Fatalf("LoadIsolated: %v", err)
	}
	return iso
}

func TestIsolationKeepsLastGoodVersion(t *testing.T) {
	prev := mustIsolate(t, nil, isoFiles(vsDoc("shop", "shop.example.com", "a"), vsDoc("blog", "blog.example.com", "a")))
	if len(prev.Rejected) != 0 {
		t.Fatalf("valid files rejected: %v", rejectedNames(prev))
	}

	// blog moves to b; shop breaks (an undefined upstream).
	iso := mustIsolate(t, prev.Config, isoFiles(vsDoc("shop", "shop.example.com", "nowhere"), vsDoc("blog", "blog.example.com", "b")))
	want := map[string]string{"shop": "a", "blog": "b"}
	if got := served(iso.Config); !mapsEqual(got, want) {
		t.Errorf("served %v, want %v (blog's change applied, shop's last good version kept)", got, want)
	}
	if got := rejectedNames(iso); !slices.Equal(got, []string{"VirtualService/shop kept=true"}) {
		t.Errorf("rejected %v", got)
	}
	if msg := iso.Rejected[0].Problems.Error(); !strings.Contains(msg, `all.yaml:`) || !strings.Contains(msg, `"nowhere" is not defined`) {
		t.Errorf("problem does not name the file and the missing upstream: %s", msg)
	}
}

func TestIsolationLeavesOutNeverGoodResource(t *testing.T) {
	prev := mustIsolate(t, nil, isoFiles(vsDoc("blog", "blog.example.com", "a")))
	iso := mustIsolate(t, prev.Config, isoFiles(vsDoc("blog", "blog.example.com", "b"), vsDoc("shop", "shop.example.com", "nowhere")))
	if got, want := served(iso.Config), map[string]string{"blog": "b"}; !mapsEqual(got, want) {
		t.Errorf("served %v, want %v", got, want)
	}
	if got := rejectedNames(iso); !slices.Equal(got, []string{"VirtualService/shop kept=false"}) {
		t.Errorf("rejected %v", got)
	}
	// Without a previous configuration at all (a first start), the same holds.
	iso = mustIsolate(t, nil, isoFiles(vsDoc("blog", "blog.example.com", "b"), vsDoc("shop", "shop.example.com", "nowhere")))
	if got, want := served(iso.Config), map[string]string{"blog": "b"}; !mapsEqual(got, want) {
		t.Errorf("first load served %v, want %v", got, want)
	}
}

// A kept version that no longer fits (its upstream is gone now) is left out too.
func TestIsolationDropsStaleKeptVersion(t *testing.T) {
	files := func(docs ...string) []SourceFile {
		all := append([]string{gatewayDoc, upstreamNamed("b")}, docs...)
		return []SourceFile{{Name: "all.yaml", Data: strings.Join(all, "---\n")}}
	}
	prev := mustIsolate(t, nil, isoFiles(vsDoc("shop", "shop.example.com", "a"), vsDoc("blog", "blog.example.com", "b")))
	iso := mustIsolate(t, prev.Config, files(vsDoc("shop", "shop.example.com", "nowhere"), vsDoc("blog", "blog.example.com", "b")))
	if got, want := served(iso.Config), map[string]string{"blog": "b"}; !mapsEqual(got, want) {
		t.Errorf("served %v, want %v", got, want)
	}
	if got := rejectedNames(iso); !slices.Equal(got, []string{"VirtualService/shop kept=false"}) {
		t.Errorf("rejected %v", got)
	}
}

func TestIsolationRejectsWholeChange(t *testing.T) {
	prev := mustIsolate(t, nil, isoFiles(vsDoc("shop", "shop.example.com", "a"))).Config
	badUpstream := strings.Replace(upstreamNamed("c"), "port: 9000", "port: 70000", 1)
	tests := []struct {
		name  string
		files []SourceFile
		want  string
	}{
		{"yaml syntax error", append(isoFiles(vsDoc("shop", "shop.example.com", "a")), SourceFile{Name: "broken.yaml", Data: "kind: [\n"}), "invalid YAML"},
		{"upstream error", isoFiles(vsDoc("shop", "shop.example.com", "a"), badUpstream), "out of range"},
		{"gateway error", []SourceFile{{Name: "all.yaml", Data: strings.Replace(gatewayDoc, "8080", "0", 1) + "---\n" + upstreamNamed("a") + "---\n" + vsDoc("shop", "shop.example.com", "a")}}, "out of range"},
		{"duplicate names", isoFiles(vsDoc("shop", "shop.example.com", "a"), vsDoc("shop", "other.example.com", "a")), "already defined"},
		{"domain clash", isoFiles(vsDoc("shop", "shop.example.com", "a"), vsDoc("blog", "shop.example.com", "b")), "also claimed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iso, err := LoadIsolated(prev, tc.files)
			var ds Diagnostics
			if !errors.As(err, &ds) {
				t.Fatalf("LoadIsolated = %v, %v; want the whole change rejected with diagnostics", iso, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not say %q:\n%v", tc.want, err)
			}
		})
	}
}

func TestIsolationValidFilesAsWritten(t *testing.T) {
	files := isoFiles(vsDoc("shop", "shop.example.com", "a"))
	iso := mustIsolate(t, nil, files)
	strict, err := LoadFiles(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(iso.Rejected) != 0 || !mapsEqual(served(iso.Config), served(strict)) {
		t.Errorf("LoadIsolated of valid files = %v rejected %v, LoadFiles = %v", served(iso.Config), rejectedNames(iso), served(strict))
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func rtDoc(name, upstream string) string {
	return fmt.Sprintf(`apiVersion: portico.dev/v1
kind: RouteTable
metadata: {name: %s}
spec:
  routes:
  - match: {prefix: /%s}
    upstream: %s
`, name, name, upstream)
}

func delegatingVS(name, domain, table string) string {
	return fmt.Sprintf(`apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: %s}
spec:
  domains: [%s]
  routes:
  - match: {prefix: /%s}
    delegate: {name: %s}
`, name, domain, table, table)
}

func TestIsolationOfRouteTables(t *testing.T) {
	prev := mustIsolate(t, nil, isoFiles(rtDoc("users", "a"), delegatingVS("api", "api.example.com", "users"), vsDoc("blog", "blog.example.com", "a")))
	if len(prev.Rejected) != 0 {
		t.Fatalf("valid files rejected: %v", rejectedNames(prev))
	}

	t.Run("a broken table keeps its last good version", func(t *testing.T) {
		iso := mustIsolate(t, prev.Config, isoFiles(rtDoc("users", "nowhere"), delegatingVS("api", "api.example.com", "users"), vsDoc("blog", "blog.example.com", "b")))
		if got := rejectedNames(iso); !slices.Equal(got, []string{"RouteTable/users kept=true"}) {
			t.Errorf("rejected %v", got)
		}
		if len(iso.Config.RouteTables) != 1 || iso.Config.RouteTables[0].Spec.Routes[0].Upstream != "a" {
			t.Errorf("route tables served: %+v, want users' previous version", iso.Config.RouteTables)
		}
		if got := served(iso.Config)["blog"]; got != "b" {
			t.Errorf("blog serves %q, want its change to b applied", got)
		}
	})
	t.Run("a broken new table takes its delegating VirtualService with it", func(t *testing.T) {
		iso := mustIsolate(t, prev.Config, isoFiles(rtDoc("users", "a"), rtDoc("orders", "nowhere"),
			delegatingVS("api", "api.example.com", "users"), delegatingVS("shop", "shop.example.com", "orders"), vsDoc("blog", "blog.example.com", "b")))
		want := []string{"RouteTable/orders kept=false", "VirtualService/shop kept=false"}
		if got := rejectedNames(iso); !slices.Equal(got, want) {
			t.Errorf("rejected %v, want %v", got, want)
		}
		var names []string
		for _, vs := range iso.Config.VirtualServices {
			names = append(names, vs.Metadata.Name)
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"api", "blog"}) {
			t.Errorf("VirtualServices served: %v, want api and blog", names)
		}
		// The VirtualService's problem names the held-back table as such, not as undefined.
		for _, r := range iso.Rejected {
			if r.Name != "shop" {
				continue
			}
			if len(r.Problems) != 1 || !strings.Contains(r.Problems[0].Message, `RouteTable "orders" is held back by its own errors`) {
				t.Errorf("shop's problems = %v, want one naming orders as held back", r.Problems)
			}
		}
	})
}

// A Gateway that lists a VirtualService by name does not turn that VirtualService's own error
// into an error of the whole change when it is left out.
func TestIsolationGatewayListingBrokenVirtualService(t *testing.T) {
	gw := strings.Replace(gatewayDoc, "spec: {bindPort: 8080}", "spec: {bindPort: 8080, virtualServices: [shop, blog]}", 1)
	files := []SourceFile{{Name: "all.yaml", Data: strings.Join([]string{gw, upstreamNamed("a"), upstreamNamed("b"),
		vsDoc("shop", "shop.example.com", "nowhere"), vsDoc("blog", "blog.example.com", "b")}, "---\n")}}
	iso := mustIsolate(t, nil, files)
	if got, want := served(iso.Config), map[string]string{"blog": "b"}; !mapsEqual(got, want) {
		t.Errorf("served %v, want %v", got, want)
	}
	if got := rejectedNames(iso); !slices.Equal(got, []string{"VirtualService/shop kept=false"}) {
		t.Errorf("rejected %v", got)
	}
	// A Gateway naming a VirtualService that is not in the files at all is the Gateway's error.
	files[0].Data = strings.Replace(files[0].Data, "virtualServices: [shop, blog]", "virtualServices: [shop, blog, typo]", 1)
	if _, err := LoadIsolated(nil, files); err == nil || !strings.Contains(err.Error(), `"typo" is not defined`) {
		t.Errorf("LoadIsolated = %v, want the whole change rejected for the Gateway's typo", err)
	}
}
