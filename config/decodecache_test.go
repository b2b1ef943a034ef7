package config

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// cacheFiles is a configuration of many files: the Gateway and Upstreams in one, and each
// VirtualService in its own.
func cacheFiles(vss map[string]string) []SourceFile {
	files := []SourceFile{{Name: "base.yaml", Data: strings.Join([]string{gatewayDoc, upstreamNamed("a"), upstreamNamed("b")}, "---\n")}}
	for _, name := range slices.Sorted(maps.Keys(vss)) {
		files = append(files, SourceFile{Name: name + ".yaml", Data: vss[name]})
	}
	return files
}

func mustCacheLoad(t *testing.T, c *DecodeCache, prev *Config, files []SourceFile) *Isolated {
	t.Helper()
	iso, err := c.LoadIsolated(prev, files)
	if err != nil {
		t.Fatalf("LoadIsolated: %v", err)
	}
	return iso
}

// TestDecodeCacheDecodesOnlyChangedFiles edits one file of many: only it is decoded again, and
// the result is what loading every file afresh gives. A broken edit is isolated as without the
// cache, and a removed file's resources are gone.
func TestDecodeCacheDecodesOnlyChangedFiles(t *testing.T) {
	vss := map[string]string{}
	for i := range 8 {
		name := fmt.Sprintf("vs%d", i)
		vss[name] = vsDoc(name, name+".example.com", "a")
	}
	c := NewDecodeCache()
	first := mustCacheLoad(t, c, nil, cacheFiles(vss))
	if len(first.Decoded) != 9 {
		t.Fatalf("first load decoded %v, want all 9 files", first.Decoded)
	}

	vss["vs3"] = vsDoc("vs3", "vs3.example.com", "b")
	files := cacheFiles(vss)
	second := mustCacheLoad(t, c, first.Config, files)
	if !slices.Equal(second.Decoded, []string{"vs3.yaml"}) {
		t.Errorf("after editing vs3.yaml decoded %v, want only it", second.Decoded)
	}
	if got := served(second.Config)["vs3"]; got != "b" {
		t.Errorf("vs3's upstream = %q, want the edit (b)", got)
	}
	fresh, err := LoadIsolated(nil, files)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(second.Config, fresh.Config) {
		t.Errorf("cached load differs from a fresh load:\n%s\nwant\n%s", dumpConfig(second.Config), dumpConfig(fresh.Config))
	}
	// Every load has its own resources: one that validation fills in must not reach another.
	if second.Config.VirtualServices[0] == first.Config.VirtualServices[0] {
		t.Error("an unchanged file's VirtualService is shared between loads")
	}

	// A broken edit is held back alone, its last good version serving, as without the cache.
	vss["vs5"] = vsDoc("vs5", "vs5.example.com", "missing")
	third := mustCacheLoad(t, c, second.Config, cacheFiles(vss))
	if !slices.Equal(third.Decoded, []string{"vs5.yaml"}) {
		t.Errorf("after breaking vs5.yaml decoded %v, want only it", third.Decoded)
	}
	if got := strings.Join(rejectedNames(third), ","); got != "VirtualService/vs5 kept=true" {
		t.Errorf("rejected %s, want vs5 kept", got)
	}
	if got := served(third.Config); got["vs5"] != "a" || got["vs3"] != "b" || len(got) != 8 {
		t.Errorf("served %v, want vs5's last good version (a) and the rest as written", got)
	}

	// A syntax error rejects the whole change; fixing it decodes that file alone.
	vss["vs6"] = "apiVersion: [\n"
	if _, err := c.LoadIsolated(third.Config, cacheFiles(vss)); err == nil || !strings.Contains(err.Error(), "vs6.yaml") {
		t.Fatalf("syntax error: err = %v, want it rejected at vs6.yaml", err)
	}
	vss["vs6"] = vsDoc("vs6", "vs6.example.com", "a")
	vss["vs5"] = vsDoc("vs5", "vs5.example.com", "a")
	fixed := mustCacheLoad(t, c, third.Config, cacheFiles(vss))
	if !slices.Equal(fixed.Decoded, []string{"vs5.yaml", "vs6.yaml"}) {
		t.Errorf("after fixing vs5.yaml and vs6.yaml decoded %v, want only them", fixed.Decoded)
	}
	if len(fixed.Rejected) != 0 {
		t.Errorf("fixed files still rejected: %v", rejectedNames(fixed))
	}

	delete(vss, "vs0")
	removed := mustCacheLoad(t, c, fixed.Config, cacheFiles(vss))
	if len(removed.Decoded) != 0 {
		t.Errorf("removing a file decoded %v, want nothing", removed.Decoded)
	}
	if _, ok := served(removed.Config)["vs0"]; ok || len(removed.Config.VirtualServices) != 7 {
		t.Errorf("served %v after removing vs0.yaml", served(removed.Config))
	}
}

// TestDecodeCacheRereadsReferencedFiles changes only files the configuration names, never the
// configuration: a new certificate and a new key set are served, and a broken credential file
// still rejects the change, although no configuration file is decoded again.
func TestDecodeCacheRereadsReferencedFiles(t *testing.T) {
	dir := t.TempDir()
	copyFile := func(from, to string) {
		t.Helper()
		data, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, to, string(data))
	}
	crt, key, jwks, creds := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"), filepath.Join(dir, "jwks.json"), filepath.Join(dir, "keys.txt")
	copyFile("testdata/certs/a.example.com.crt", crt)
	copyFile("testdata/certs/a.example.com.key", key)
	copyFile("testdata/jwks/good.json", jwks)
	writeTestFile(t, creds, "ci:0123456789abcdef\n")
	gateway := fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: web}
spec:
  bindPort: 8443
  protocol: HTTPS
  tls:
    certificates: [{certFile: %s, keyFile: %s}]
`, crt, key)
	files := []SourceFile{
		{Name: "gateway.yaml", Data: gateway},
		{Name: "upstreams.yaml", Data: upstreamNamed("a")},
		{Name: "secret.yaml", Data: "apiVersion: portico.dev/v1\nkind: Secret\nmetadata: {name: k}\nspec: {type: apiKeys, file: " + creds + "}\n"},
		{Name: "api.yaml", Data: `apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: api}
spec:
  domains: [api.example.com]
  security:
    jwt:
      providers: [{name: main, issuer: "https://issuer.example.com", jwks: {file: ` + jwks + `}}]
  routes:
  - match: {prefix: /}
    upstream: a
    security: {jwt: {disabled: true}, apiKey: {secrets: [k]}}
`},
	}
	c := NewDecodeCache()
	first := mustCacheLoad(t, c, nil, files)
	if len(first.Rejected) != 0 {
		t.Fatalf("rejected: %v", first.Rejected)
	}

	copyFile("testdata/certs/b.example.com.crt", crt)
	copyFile("testdata/certs/b.example.com.key", key)
	writeTestFile(t, jwks, "\n"+mustRead(t, "testdata/jwks/good.json")) // the same keys, other bytes
	second := mustCacheLoad(t, c, first.Config, files)
	if len(second.Decoded) != 0 {
		t.Errorf("decoded %v, want nothing: no configuration file changed", second.Decoded)
	}
	cert := second.Config.Gateways[0].Spec.TLS.Certificates[0]
	if want := mustRead(t, "testdata/certs/b.example.com.crt"); !bytes.Equal(cert.CertPEM, []byte(want)) {
		t.Error("the replaced certificate was not read again")
	}
	if want := mustRead(t, "testdata/certs/b.example.com.key"); !bytes.Equal(cert.KeyPEM, []byte(want)) {
		t.Error("the replaced key was not read again")
	}
	if got := second.Config.VirtualServices[0].Spec.Security.JWT.Providers[0].JWKS.Keys(); got != mustRead(t, jwks) {
		t.Error("the rewritten key set was not read again")
	}
	if old := first.Config.Gateways[0].Spec.TLS.Certificates[0].CertPEM; bytes.Equal(old, cert.CertPEM) {
		t.Error("the configuration served before now holds the new certificate: a load wrote into it")
	}

	writeTestFile(t, creds, "ci:short\n")
	if _, err := c.LoadIsolated(second.Config, files); err == nil || !strings.Contains(err.Error(), "keys.txt:1") {
		t.Errorf("broken key file: err = %v, want the change rejected at keys.txt:1", err)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestDeepCopyCoversResources walks every type a resource can hold. deepCopy copies the
// references behind exported fields, and unexported fields only by value: each must be a plain
// value or a Source, whose maps the decoder completes and nothing writes afterwards. A new
// unexported slice or pointer would be shared between loads, so this test would fail.
func TestDeepCopyCoversResources(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(t2 reflect.Type, path string)
	walk = func(t2 reflect.Type, path string) {
		if seen[t2] {
			return
		}
		seen[t2] = true
		switch t2.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map:
			walk(t2.Elem(), path+"[]")
		case reflect.Interface, reflect.Array, reflect.Chan, reflect.Func:
			t.Errorf("%s: %s cannot be deep-copied", path, t2)
		case reflect.Struct:
			if t2 == reflect.TypeFor[Source]() {
				return
			}
			for i := range t2.NumField() {
				f := t2.Field(i)
				if !f.IsExported() && holdsReferences(f.Type) {
					t.Errorf("%s.%s: unexported %s would be shared by deepCopy", path, f.Name, f.Type)
					continue
				}
				walk(f.Type, path+"."+f.Name)
			}
		}
	}
	for _, r := range []any{Gateway{}, VirtualService{}, RouteTable{}, Upstream{}, UpstreamGroup{}, Proxy{}, Secret{}} {
		walk(reflect.TypeOf(r), reflect.TypeOf(r).Name())
	}
}

// TestDeepCopyEqualButSeparate copies every valid test configuration: the copies are equal to
// the originals and share no slice, map or pointer reached through exported fields.
func TestDeepCopyEqualButSeparate(t *testing.T) {
	for _, path := range []string{"testdata/valid/example.yaml", "testdata/valid/https.yaml", "testdata/valid/jwt.yaml", "testdata/valid/security", "testdata/valid/anchors.yaml"} {
		t.Run(path, func(t *testing.T) {
			cfg, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			check := func(orig, cp any) {
				if !reflect.DeepEqual(orig, cp) {
					t.Errorf("copy of %T differs from the original", orig)
				}
				if p := sharedReference(reflect.ValueOf(orig), reflect.ValueOf(cp), ""); p != "" {
					t.Errorf("copy of %T shares %s with the original", orig, p)
				}
			}
			for _, r := range cfg.Gateways {
				check(r, deepCopy(r))
			}
			for _, r := range cfg.VirtualServices {
				check(r, deepCopy(r))
			}
			for _, r := range cfg.Upstreams {
				check(r, deepCopy(r))
			}
			for _, r := range cfg.Secrets {
				check(r, deepCopy(r))
			}
		})
	}
}

// sharedReference returns the path of a pointer, non-empty slice or map that a and b share
// below their exported fields, or "".
func sharedReference(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return path
		}
		return sharedReference(a.Elem(), b.Elem(), path)
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return path
		}
		for i := range a.Len() {
			if p := sharedReference(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	case reflect.Map:
		if !a.IsNil() && a.Pointer() == b.Pointer() {
			return path
		}
	case reflect.Struct:
		if a.Type() == reflect.TypeFor[Source]() {
			return ""
		}
		for i := range a.NumField() {
			if !a.Type().Field(i).IsExported() {
				continue
			}
			if p := sharedReference(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
				return p
			}
		}
	}
	return ""
}
