package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	gatewayDoc = `apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: web}
spec: {bindPort: 8080}
`
	upstreamDoc = `apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: NAME}
spec: {static: {hosts: [{address: 127.0.0.1, port: 9000}]}}
`
	virtualServiceDoc = `apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - match: {prefix: /}
    upstream: api
`
)

func upstreamNamed(name string) string { return strings.Replace(upstreamDoc, "NAME", name, 1) }

// Expected resources, with defaults applied and without Source (see withoutSources).
func wantGateway(name, addr string, port int) *Gateway {
	return &Gateway{Metadata: Metadata{Name: name}, Spec: GatewaySpec{BindAddress: addr, BindPort: port, Protocol: DefaultProtocol}}
}

func wantUpstream(name string) *Upstream {
	return &Upstream{Metadata: Metadata{Name: name}, Spec: UpstreamSpec{Static: &StaticUpstream{
		Hosts: []Host{{Address: "127.0.0.1", Port: 9000, Weight: DefaultHostWeight}},
	}}}
}

func wantShop() *VirtualService {
	return &VirtualService{Metadata: Metadata{Name: "shop"}, Spec: VirtualServiceSpec{
		Domains: []string{"*"},
		Routes:  []Route{{Match: RouteMatch{Prefix: "/"}, Upstream: "api"}},
	}}
}

// tree writes files (path -> content) and symlinks (path -> target) under a new directory.
func tree(t *testing.T, files, links map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range links {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, full); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// withoutSources clears positions so configurations compare by content.
func withoutSources(cfg *Config) *Config {
	for _, g := range cfg.Gateways {
		g.Source = Source{}
	}
	for _, vs := range cfg.VirtualServices {
		vs.Source = Source{}
	}
	for _, u := range cfg.Upstreams {
		u.Source = Source{}
	}
	return cfg
}

func TestLoadValid(t *testing.T) {
	// A ConfigMap volume: the real files live in a timestamped directory that "..data" points
	// at, and the visible names are symlinks through "..data".
	const configMapData = "..2024_06_01_12_00_00.000000001"
	tests := []struct {
		name  string
		files map[string]string
		links map[string]string
		paths []string // relative to the tree; "." is the tree itself
		want  *Config
	}{
		{
			name:  "documents with empty ones and comments between them",
			files: map[string]string{"all.yaml": "---\n# nothing yet\n---\n" + gatewayDoc + "---\n---\n" + upstreamNamed("api") + "...\n"},
			paths: []string{"all.yaml"},
			want: &Config{
				Gateways:  []*Gateway{wantGateway("web", "0.0.0.0", 8080)},
				Upstreams: []*Upstream{wantUpstream("api")},
			},
		},
		{
			name: "directory read recursively in name order, hidden and other files skipped",
			files: map[string]string{
				"b.yaml":          upstreamNamed("first"),
				"a/gateway.yml":   gatewayDoc,
				"c/d/second.YAML": upstreamNamed("second"),
				"c/vs.yaml":       virtualServiceDoc,
				"api.yaml":        upstreamNamed("api"),
				".hidden.yaml":    "not: [valid",
				".git/x.yaml":     "not: [valid",
				"README.md":       "not: [valid",
			},
			paths: []string{"."},
			want: &Config{
				Gateways:        []*Gateway{wantGateway("web", "0.0.0.0", 8080)},
				VirtualServices: []*VirtualService{wantShop()},
				Upstreams:       []*Upstream{wantUpstream("api"), wantUpstream("first"), wantUpstream("second")},
			},
		},
		{
			name: "several paths merged before validation",
			files: map[string]string{
				"gateway.yaml":    gatewayDoc,
				"routes/vs.yaml":  virtualServiceDoc,
				"backends/u.yaml": upstreamNamed("api"),
			},
			paths: []string{"routes", "gateway.yaml", "backends/u.yaml"},
			want: &Config{
				Gateways:        []*Gateway{wantGateway("web", "0.0.0.0", 8080)},
				VirtualServices: []*VirtualService{wantShop()},
				Upstreams:       []*Upstream{wantUpstream("api")},
			},
		},
		{
			name: "ConfigMap mount with ..data symlinks",
			files: map[string]string{
				configMapData + "/gateway.yaml":  gatewayDoc,
				configMapData + "/routes.yaml":   virtualServiceDoc,
				configMapData + "/upstream.yaml": upstreamNamed("api"),
			},
			links: map[string]string{
				"..data":        configMapData,
				"gateway.yaml":  "..data/gateway.yaml",
				"routes.yaml":   "..data/routes.yaml",
				"upstream.yaml": "..data/upstream.yaml",
			},
			paths: []string{"."},
			want: &Config{
				Gateways:        []*Gateway{wantGateway("web", "0.0.0.0", 8080)},
				VirtualServices: []*VirtualService{wantShop()},
				Upstreams:       []*Upstream{wantUpstream("api")},
			},
		},
		{
			name: "symlinked directory and file",
			files: map[string]string{
				"real/gateway.yaml":  gatewayDoc,
				"elsewhere/api.yaml": virtualServiceDoc + "---\n" + upstreamNamed("api"),
			},
			links: map[string]string{
				"conf/gateways": "../real",
				"conf/api.yaml": "../elsewhere/api.yaml",
			},
			paths: []string{"conf"},
			want: &Config{
				Gateways:        []*Gateway{wantGateway("web", "0.0.0.0", 8080)},
				VirtualServices: []*VirtualService{wantShop()},
				Upstreams:       []*Upstream{wantUpstream("api")},
			},
		},
		{
			name:  "defaults applied when fields are absent",
			files: map[string]string{"all.yaml": gatewayDoc + "---\n" + virtualServiceDoc + "---\n" + upstreamNamed("api")},
			paths: []string{"all.yaml"},
			want: &Config{
				Gateways:        []*Gateway{wantGateway("web", DefaultBindAddress, 8080)},
				VirtualServices: []*VirtualService{wantShop()},
				Upstreams:       []*Upstream{wantUpstream("api")},
			},
		},
		{
			name: "explicit values are kept over defaults",
			files: map[string]string{"all.yaml": strings.Replace(gatewayDoc, "{bindPort: 8080}", "{bindAddress: \"::1\", bindPort: 8443}", 1) +
				"---\n" + strings.Replace(virtualServiceDoc, "spec:\n", "spec:\n  domains: [a.example.com, \"*.b.example.com\"]\n  gateways: [web]\n", 1) +
				"---\n" + upstreamNamed("api")},
			paths: []string{"all.yaml"},
			want: &Config{
				Gateways: []*Gateway{wantGateway("web", "::1", 8443)},
				VirtualServices: []*VirtualService{{Metadata: Metadata{Name: "shop"}, Spec: VirtualServiceSpec{
					Domains:  []string{"a.example.com", "*.b.example.com"},
					Gateways: []string{"web"},
					Routes:   []Route{{Match: RouteMatch{Prefix: "/"}, Upstream: "api"}},
				}}},
				Upstreams: []*Upstream{wantUpstream("api")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := tree(t, tt.files, tt.links)
			var paths []string
			for _, p := range tt.paths {
				paths = append(paths, filepath.Join(dir, p))
			}
			cfg, err := Load(paths...)
			if err != nil {
				t.Fatal(err)
			}
			if got := withoutSources(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Load() mismatch\ngot:  %s\nwant: %s", dumpConfig(got), dumpConfig(tt.want))
			}
		})
	}
}

// dumpConfig renders a Config readably for failure messages.
func dumpConfig(cfg *Config) string {
	var b strings.Builder
	for _, g := range cfg.Gateways {
		b.WriteString("\n  " + fmt.Sprintf("%+v", *g))
	}
	for _, vs := range cfg.VirtualServices {
		b.WriteString("\n  " + fmt.Sprintf("%+v", *vs))
	}
	for _, u := range cfg.Upstreams {
		b.WriteString("\n  " + fmt.Sprintf("%+v", *u))
	}
	if len(cfg.Warnings) > 0 {
		b.WriteString("\n  warnings: " + cfg.Warnings.Error())
	}
	return b.String()
}

func TestLoadExample(t *testing.T) {
	const path = "testdata/valid/example.yaml"
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	// The positions are those of the fields in the file, which the diagnostics rely on.
	vs := cfg.VirtualServices[0]
	positions := []struct {
		src  Source
		path string
		want Position
	}{
		{cfg.Gateways[0].Source, "", Position{path, 1, 1}},
		{cfg.Gateways[0].Source, "metadata.name", Position{path, 3, 18}},
		{cfg.Gateways[0].Source, "spec.bindPort", Position{path, 4, 42}},
		{vs.Source, "", Position{path, 6, 1}},
		{vs.Source, "spec.domains[1]", Position{path, 10, 33}},
		{vs.Source, "spec.routes[0].upstream", Position{path, 13, 15}},
		{vs.Source, "spec.routes[1].directResponse.status", Position{path, 15, 30}},
		// Fields that were not written resolve to their nearest written parent.
		{vs.Source, "spec.gateways", Position{path, 10, 3}},
		{vs.Source, "spec.routes[1].name", Position{path, 14, 5}},
		{cfg.Upstreams[0].Source, "spec.static.hosts[0].port", Position{path, 22, 40}},
	}
	for _, p := range positions {
		if got := p.src.At(p.path); got != p.want {
			t.Errorf("At(%q) = %v, want %v", p.path, got, p.want)
		}
	}
	want := &Config{
		Gateways: []*Gateway{wantGateway("web", "127.0.0.1", 8080)},
		VirtualServices: []*VirtualService{{Metadata: Metadata{Name: "shop"}, Spec: VirtualServiceSpec{
			Domains: []string{"shop.example.com", "*"},
			Routes: []Route{
				{Match: RouteMatch{Prefix: "/api"}, Upstream: "api"},
				{Match: RouteMatch{Prefix: "/"}, DirectResponse: &DirectResponse{Status: 200, Body: "hello\n"}},
			},
		}}},
		Upstreams: []*Upstream{{Metadata: Metadata{Name: "api"}, Spec: UpstreamSpec{Static: &StaticUpstream{
			Hosts: []Host{{Address: "127.0.0.1", Port: 9001, Weight: DefaultHostWeight}},
		}}}},
	}
	if got := withoutSources(cfg); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(%s) mismatch\ngot:  %s\nwant: %s", path, dumpConfig(got), dumpConfig(want))
	}
}

func TestLoadErrors(t *testing.T) {
	dir := tree(t, map[string]string{
		"ok.yaml":              gatewayDoc,
		"empty/.keep.yaml":     "",
		"empty/notes.txt":      gatewayDoc,
		"comments/only.yaml":   "# nothing here yet\n---\n",
		"loop/a.yaml":          gatewayDoc,
		"dangling/a.yaml":      gatewayDoc,
		"invalid/gateway.yaml": strings.Replace(gatewayDoc, "8080", "0", 1),
	}, map[string]string{
		"loop/sub/back":     "../..",
		"dangling/gone.yml": "missing.yml",
	})
	in := func(p string) string { return filepath.Join(dir, p) }
	tests := []struct {
		name     string
		paths    []string
		is       error  // errors.Is target, if any
		contains string // the error text names this
	}{
		{"missing file", []string{in("ok.yaml"), in("nope.yaml")}, fs.ErrNotExist, in("nope.yaml")},
		{"no paths", nil, nil, "no paths given"},
		{"directory without configuration files", []string{in("empty")}, ErrNoDocuments, in("empty")},
		{"files with no documents", []string{in("comments"), in("empty")}, ErrNoDocuments, in("comments") + ", " + in("empty")},
		{"symlink loop", []string{in("loop")}, nil, "symlink loops back"},
		{"dangling symlink", []string{in("dangling")}, fs.ErrNotExist, in("dangling/gone.yml")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(tt.paths...)
			if err == nil || cfg != nil {
				t.Fatalf("Load() = %v, %v; want an error and no config", cfg, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("error %q is not %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("error %q does not mention %q", err, tt.contains)
			}
			var diags Diagnostics
			if errors.As(err, &diags) {
				t.Errorf("I/O error %q was reported as configuration diagnostics", err)
			}
		})
	}

	t.Run("invalid configuration", func(t *testing.T) {
		_, err := Load(in("invalid"))
		var diags Diagnostics
		if !errors.As(err, &diags) || !diags.HasErrors() {
			t.Fatalf("Load() error = %v; want Diagnostics with errors", err)
		}
		if want := in("invalid/gateway.yaml") + ":4:18:"; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("error %q does not start with %q", err, want)
		}
	})
}

func TestParse(t *testing.T) {
	cfg, err := Parse("inline.yaml", []byte(gatewayDoc+"---\n"+virtualServiceDoc+"---\n"+upstreamNamed("api")))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.VirtualServices[0].Source.At("spec.routes[0].upstream"); got != (Position{"inline.yaml", 12, 15}) {
		t.Errorf("position = %v, want inline.yaml:12:15", got)
	}

	// Parse validates the file as a whole configuration, just as Load does.
	_, err = Parse("inline.yaml", []byte(virtualServiceDoc))
	want := `inline.yaml:7:15: VirtualService "shop" spec.routes[0].upstream: Upstream "api" is not defined (no Upstreams are defined)`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Parse() error = %v; want it to contain %q", err, want)
	}

	if _, err := Parse("empty.yaml", []byte("# empty\n")); !errors.Is(err, ErrNoDocuments) {
		t.Errorf("Parse(empty) error = %v, want ErrNoDocuments", err)
	}
}
