package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// decodeInto runs the decoder over one YAML document into v, as it runs over a resource.
func decodeInto(t *testing.T, text string, v any) (Source, Diagnostics) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	var src Source
	var diags Diagnostics
	newDecoder("t.yaml", &src, &diags).decodeStruct(doc.Content[0], reflect.ValueOf(v).Elem(), "", nil)
	return src, diags
}

// derivedAtLoad are fields that validation fills in from what the user wrote, by type and name.
var derivedAtLoad = map[string]bool{"LambdaDestination.ARN": true, "AWSUpstream.SystemCAFile": true, "SecretSpec.AWS": true, "SecretSpec.Value": true}

// TestSchemaTags guards the decoder's contract with types.go: the decoder sees only fields with
// a yaml name, so a field added without one would silently be impossible to set.
func TestSchemaTags(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(t reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := range typ.NumField() {
			f := typ.Field(i)
			if !f.IsExported() {
				continue
			}
			tag := f.Tag.Get("yaml")
			name, opts, _ := strings.Cut(tag, ",")
			if f.Type == reflect.TypeFor[Source]() {
				if tag != "-" {
					t.Errorf("%s.%s: Source must be tagged `yaml:\"-\"`", path, f.Name)
				}
				continue
			}
			if tag == "-" && (f.Type == reflect.TypeFor[[]byte]() || f.Type == reflect.TypeFor[PrivateKeyPEM]()) {
				// The content of a file the user names, read at load time.
				continue
			}
			if tag == "-" && derivedAtLoad[typ.Name()+"."+f.Name] {
				continue
			}
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no yaml name, so users cannot set it", path, f.Name)
			}
			if strings.Contains(opts, "inline") {
				t.Errorf("%s.%s: the decoder does not support inline fields", path, f.Name)
			}
			walk(f.Type, path+"."+name)
		}
	}
	for _, r := range []any{Gateway{}, VirtualService{}, Upstream{}} {
		walk(reflect.TypeOf(r), reflect.TypeOf(r).Name())
	}
}

// scalars exercises every scalar kind the decoder supports, beyond those the schema uses today.
type scalars struct {
	S  string         `yaml:"s,omitempty"`
	B  bool           `yaml:"b,omitempty"`
	I8 int8           `yaml:"i8,omitempty"`
	U  uint16         `yaml:"u,omitempty"`
	F  float64        `yaml:"f,omitempty"`
	P  *int           `yaml:"p,omitempty"`
	M  map[string]int `yaml:"m,omitempty"`
	R  int            `yaml:"r"`
}

func intPtr(i int) *int { return &i }

func TestDecodeScalars(t *testing.T) {
	tests := []struct {
		in   string
		want scalars
		err  string // the single expected diagnostic, if any
	}{
		{in: "{r: 1, s: text, b: true, i8: -128, u: 65535, f: 2.5, p: 7, m: {a: 1}}",
			want: scalars{R: 1, S: "text", B: true, I8: -128, U: 65535, F: 2.5, P: intPtr(7), M: map[string]int{"a": 1}}},
		{in: "{r: 0x1F, f: 3}", want: scalars{R: 31, F: 3}},
		{in: "{r: 1_000}", want: scalars{R: 1000}},
		{in: "{r: 1, p: ~}", want: scalars{R: 1}},
		{in: "{r: 1, i8: 128}", want: scalars{R: 1}, err: "t.yaml:1:12: i8: 128 is out of range for this field"},
		{in: "{r: 1, u: -1}", want: scalars{R: 1}, err: "t.yaml:1:11: u: -1 is out of range for this field"},
		{in: "{r: 1, b: yes}", want: scalars{R: 1}, err: `t.yaml:1:11: b: expected a boolean (true or false), got a string ("yes")`},
		{in: "{r: 1, f: abc}", want: scalars{R: 1}, err: `t.yaml:1:11: f: expected a number, got a string ("abc")`},
		{in: "{r: 1, s: true}", want: scalars{R: 1}, err: `t.yaml:1:11: s: expected a string, got a boolean (true); quote it: "true"`},
		{in: "{r: 1, m: {1: 2}}", want: scalars{R: 1, M: map[string]int{}}, err: `t.yaml:1:12: m: keys must be strings, got an integer (1); quote it: "1"`},
		{in: "{r: 1, m: {a: x}}", want: scalars{R: 1, M: map[string]int{"a": 0}}, err: `t.yaml:1:15: m.a: expected an integer, got a string ("x")`},
		{in: "{r: }", err: `t.yaml:1:2: field "r" is empty; it is required`},
		{in: "{s: x}", want: scalars{S: "x"}, err: `t.yaml:1:1: missing required field "r"`},
		{in: "{r: 1, [a]: 1}", want: scalars{R: 1}, err: `t.yaml:1:8: a field name must be a plain word, got a list`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got scalars
			_, diags := decodeInto(t, tt.in, &got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decoded %+v, want %+v", got, tt.want)
			}
			if gotErr := diags.Error(); gotErr != tt.err {
				t.Errorf("diagnostics = %q, want %q", gotErr, tt.err)
			}
		})
	}
}

// recursive is self-referential, as route delegation may make the schema one day: only the decoder's own
// guards stop an alias cycle or an alias bomb from running forever.
type recursive struct {
	Name     string      `yaml:"name,omitempty"`
	Children []recursive `yaml:"children,omitempty"`
}

func TestDecodeAliasCycle(t *testing.T) {
	var got recursive
	_, diags := decodeInto(t, "children: [&a {name: x, children: [*a]}]", &got)
	want := "t.yaml:1:36: children[0].children[0]: alias *a refers to a value that contains it; write the value out"
	if diags.Error() != want {
		t.Errorf("diagnostics = %q, want %q", diags.Error(), want)
	}
}

func TestDecodeAliasBomb(t *testing.T) {
	// Ten levels of ten aliases each expand to 10^10 nodes.
	var b strings.Builder
	b.WriteString("l0: &l0 {name: x}\n")
	for i := 1; i <= 10; i++ {
		refs := strings.Repeat(fmt.Sprintf("*l%d, ", i-1), 10)
		fmt.Fprintf(&b, "l%d: &l%d {children: [%s]}\n", i, i, strings.TrimSuffix(refs, ", "))
	}
	b.WriteString("top: {children: [*l10]}\n")
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatal(err)
	}
	top := doc.Content[0].Content[len(doc.Content[0].Content)-1]
	var got recursive
	var src Source
	var diags Diagnostics
	d := newDecoder("t.yaml", &src, &diags)
	d.budget = 10_000 // the mechanism, not nodeBudget's size, is under test; this keeps it fast
	d.decodeStruct(top, reflect.ValueOf(&got).Elem(), "", nil)
	if len(diags) != 1 || !strings.Contains(diags[0].Message, "document is too large") {
		t.Errorf("diagnostics = %v, want one 'too large' error", diags)
	}
}

func TestSourceAt(t *testing.T) {
	src, diags := decodeInto(t, "name: a\nchildren:\n- name: b\n- children:\n  - name: c\n", &recursive{})
	if len(diags) > 0 {
		t.Fatal(diags)
	}
	src.Doc = Position{File: "t.yaml", Line: 1, Column: 1}
	for path, want := range map[string]Position{
		"name":                         {"t.yaml", 1, 7},
		"children[1].children[0]":      {"t.yaml", 5, 5},
		"children[1].children[0].name": {"t.yaml", 5, 11},
		"children[1].name":             {"t.yaml", 4, 3}, // unset: the route's own position
		"children[7]":                  {"t.yaml", 3, 1}, // no such element: the list's
		"labels":                       {"t.yaml", 1, 1}, // nothing written: the document
	} {
		if got := src.At(path); got != want {
			t.Errorf("At(%q) = %v, want %v", path, got, want)
		}
	}
}
