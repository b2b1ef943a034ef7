package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/portico-gw/portico/config"
)

func generatedSchema(t *testing.T) map[string]any {
	t.Helper()
	code, stdout, stderr := call(t, "schema")
	if code != 0 {
		t.Fatalf("portico schema: exit %d: %s", code, stderr)
	}
	var s map[string]any
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("portico schema does not print JSON: %v", err)
	}
	return s
}

func TestSchemaNamesEveryKind(t *testing.T) {
	s := generatedSchema(t)
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", s["$schema"])
	}
	defs := s["$defs"].(map[string]any)
	bind := defs["GatewaySpec"].(map[string]any)["properties"].(map[string]any)["bindAddress"].(map[string]any)
	if d, _ := bind["description"].(string); !strings.HasPrefix(d, "bindAddress is the IP address") {
		t.Errorf("GatewaySpec.bindAddress has no description from its doc comment: %q", d)
	}
	for _, k := range []string{config.KindGateway, config.KindVirtualService, config.KindRouteTable, config.KindUpstream} {
		def, ok := defs[k].(map[string]any)
		if !ok {
			t.Errorf("no definition for kind %s", k)
			continue
		}
		kind := def["properties"].(map[string]any)["kind"].(map[string]any)
		if kind["const"] != k {
			t.Errorf("%s: kind const = %v", k, kind["const"])
		}
	}
}

// TestSchemaAcceptsValidFiles checks every valid configuration the repository ships against
// the schema, and a few broken documents against it, with a validator for the subset of JSON
// Schema the generator emits.
func TestSchemaAcceptsValidFiles(t *testing.T) {
	s := generatedSchema(t)
	var files []string
	for _, glob := range []string{"../../config/testdata/valid/*.yaml", "../../examples/*.yaml"} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 3 {
		t.Fatalf("found only %d files to check: %v", len(files), files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, doc := range yamlDocs(t, data) {
				if err := checkSchema(s, s, doc, "$"); err != nil {
					t.Errorf("document %d: %v", i+1, err)
				}
			}
		})
	}
}

func TestSchemaRejectsBrokenDocuments(t *testing.T) {
	s := generatedSchema(t)
	for name, doc := range map[string]string{
		"unknown kind":       "apiVersion: portico.dev/v1\nkind: Gatway\nmetadata: {name: a}\nspec: {bindPort: 1}\n",
		"unknown field":      "apiVersion: portico.dev/v1\nkind: Gateway\nmetadata: {name: a}\nspec: {bindPort: 1, bindAdress: x}\n",
		"missing required":   "apiVersion: portico.dev/v1\nkind: Gateway\nmetadata: {name: a}\nspec: {bindAddress: 127.0.0.1}\n",
		"wrong type":         "apiVersion: portico.dev/v1\nkind: Gateway\nmetadata: {name: a}\nspec: {bindPort: eighty}\n",
		"two route actions":  "apiVersion: portico.dev/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  routes:\n  - match: {prefix: /}\n    upstream: x\n    directResponse: {status: 200}\n",
		"no discovery type":  "apiVersion: portico.dev/v1\nkind: Upstream\nmetadata: {name: a}\nspec: {}\n",
		"protocol not known": "apiVersion: portico.dev/v1\nkind: Gateway\nmetadata: {name: a}\nspec: {bindPort: 1, protocol: SMTP}\n",
	} {
		t.Run(name, func(t *testing.T) {
			docs := yamlDocs(t, []byte(doc))
			if err := checkSchema(s, s, docs[0], "$"); err == nil {
				t.Errorf("the schema accepts:\n%s", doc)
			}
		})
	}
}

func yamlDocs(t *testing.T, data []byte) []any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []any
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
}

// checkSchema validates v against schema s (root is the whole schema, for $ref), supporting the
// keywords the generator emits: $ref, type, const, enum, properties, required,
// additionalProperties, items and oneOf.
func checkSchema(root, s map[string]any, v any, at string) error {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/$defs/")
		def, ok := root["$defs"].(map[string]any)[name].(map[string]any)
		if !ok {
			return fmt.Errorf("%s: dangling $ref %s", at, ref)
		}
		return checkSchema(root, def, v, at)
	}
	if c, ok := s["const"]; ok && c != v {
		return fmt.Errorf("%s: %v is not %v", at, v, c)
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
	}
	switch s["type"] {
	case "string":
		if _, ok := v.(string); !ok {
			return fmt.Errorf("%s: %v is not a string", at, v)
		}
	case "integer":
		if _, ok := v.(int); !ok {
			return fmt.Errorf("%s: %v is not an integer", at, v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return fmt.Errorf("%s: %v is not a boolean", at, v)
		}
	case "array":
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s: %v is not a list", at, v)
		}
		for i, item := range list {
			if err := checkSchema(root, s["items"].(map[string]any), item, fmt.Sprintf("%s[%d]", at, i)); err != nil {
				return err
			}
		}
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %v is not a map", at, v)
		}
		if err := checkObject(root, s, obj, at); err != nil {
			return err
		}
	}
	if obj, ok := v.(map[string]any); ok && s["type"] == nil {
		// A bare {"required": [...]}, as in a oneOf alternative.
		if err := checkObject(root, s, obj, at); err != nil {
			return err
		}
	}
	if alts, ok := s["oneOf"].([]any); ok {
		var matched []int
		var errs []error
		for i, alt := range alts {
			err := checkSchema(root, alt.(map[string]any), v, at)
			if err == nil {
				matched = append(matched, i)
			}
			errs = append(errs, err)
		}
		if len(matched) != 1 {
			return fmt.Errorf("%s: matches %d of the oneOf alternatives, want exactly 1: %w", at, len(matched), errors.Join(errs...))
		}
	}
	return nil
}

func checkObject(root, s map[string]any, obj map[string]any, at string) error {
	if req, ok := s["required"].([]any); ok {
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				return fmt.Errorf("%s: missing %s", at, r)
			}
		}
	}
	props, _ := s["properties"].(map[string]any)
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if ps, ok := props[k].(map[string]any); ok {
			if err := checkSchema(root, ps, obj[k], at+"."+k); err != nil {
				return err
			}
			continue
		}
		switch extra := s["additionalProperties"].(type) {
		case bool:
			if !extra {
				return fmt.Errorf("%s: unknown field %s", at, k)
			}
		case map[string]any:
			if err := checkSchema(root, extra, obj[k], at+"."+k); err != nil {
				return err
			}
		}
	}
	return nil
}
