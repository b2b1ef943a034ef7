package config

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestSplitDecodingMatchesSequential decodes every test file twice: in one go, and cut into as
// many groups of documents as splitDocuments allows, each group decoded on its own. Resources,
// positions (lines are the file's, not the group's), findings and syntax errors must not differ.
func TestSplitDecodingMatchesSequential(t *testing.T) {
	extra := map[string]string{
		"syntax-error-in-third.yaml": vsDoc("a", "a.example.com", "x") + "---\n" + vsDoc("b", "b.example.com", "x") +
			"---\nkind: [\n---\n" + vsDoc("c", "c.example.com", "x"),
		"parser-error-first-line.yaml": vsDoc("a", "a.example.com", "x") + "---\n]\n",
		"markers.yaml": "# comment\n--- # first\n" + vsDoc("a", "a.example.com", "x") + "--- \n" + vsDoc("b", "b.example.com", "x") +
			"---\r\n" + vsDoc("c", "c.example.com", "x") + "...\n---\t\n" + vsDoc("d", "d.example.com", "x") + "---\n---\n",
		"block-scalar.yaml": "apiVersion: portico.dev/v1\nkind: VirtualService\nmetadata: {name: a}\nspec:\n  routes:\n  - match: {prefix: /}\n" +
			"    directResponse:\n      status: 200\n      body: |\n        ---\n        not a document\n---\n" + vsDoc("b", "b.example.com", "x"),
	}
	files := map[string][]byte{}
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isYAMLName(path) {
			return err
		}
		files[path] = []byte(mustRead(t, path))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range extra {
		files[name] = []byte(data)
	}
	split := 0
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			groups := splitDocuments(data, len(data))
			if len(groups) > 1 {
				split++
			}
			whole := decodeGroups(name, data, []docGroup{{start: 0, end: len(data), line: 1}})
			parts := decodeGroups(name, data, groups)
			if d := firstDifference(reflect.ValueOf(whole).Elem(), reflect.ValueOf(parts).Elem(), "fileDocs"); d != "" {
				t.Errorf("decoded in %d groups differs from decoded in one at %s\ndiagnostics:\n%v\nwant\n%v",
					len(groups), d, parts.diags, whole.diags)
			}
		})
	}
	if split < len(extra) {
		t.Errorf("only %d files were split into groups; the test proves nothing for the others", split)
	}
}

func TestSplitDocuments(t *testing.T) {
	doc := vsDoc("a", "a.example.com", "x")
	for _, tc := range []struct {
		name string
		data string
		n    int
		want int
	}{
		{"one processor", doc + "---\n" + doc, 1, 1},
		{"every marker", doc + "---\n" + doc + "---\n" + doc, 100, 3},
		{"fewer groups than documents", strings.Repeat(doc+"---\n", 8), 2, 2},
		{"marker text inside a line", doc + "  ---\n" + doc + "---x\n", 100, 1},
		{"directive", "%YAML 1.2\n---\n" + doc + "---\n" + doc, 100, 1},
		{"not UTF-8", "\xff\xfe" + doc + "---\n" + doc, 100, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			groups := splitDocuments([]byte(tc.data), tc.n)
			if len(groups) != tc.want {
				t.Fatalf("%d groups, want %d: %+v", len(groups), tc.want, groups)
			}
			next, line := 0, 1
			for _, g := range groups {
				if g.start != next || g.line != line {
					t.Errorf("group %+v does not start where the last ended (%d, line %d)", g, next, line)
				}
				line += strings.Count(tc.data[g.start:g.end], "\n")
				next = g.end
			}
			if next != len(tc.data) {
				t.Errorf("groups end at %d of %d bytes", next, len(tc.data))
			}
		})
	}
}

// firstDifference returns the path of the first value that differs between a and b, "" if none
// does. Unlike reflect.DeepEqual it takes NaN as equal to NaN (a test file has `.nan`) and
// compares what pointers point to, not their addresses.
func firstDifference(a, b reflect.Value, path string) string {
	if a.Kind() != b.Kind() {
		return path
	}
	switch a.Kind() {
	case reflect.Pointer, reflect.Interface:
		if a.IsNil() || b.IsNil() {
			if a.IsNil() != b.IsNil() {
				return path
			}
			return ""
		}
		return firstDifference(a.Elem(), b.Elem(), path)
	case reflect.Struct:
		for i := range a.NumField() {
			if d := firstDifference(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); d != "" {
				return d
			}
		}
	case reflect.Slice:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return path
		}
		for i := range a.Len() {
			if d := firstDifference(a.Index(i), b.Index(i), fmt.Sprintf("%s[%d]", path, i)); d != "" {
				return d
			}
		}
	case reflect.Map:
		if a.IsNil() != b.IsNil() || a.Len() != b.Len() {
			return path
		}
		for _, k := range a.MapKeys() {
			if !b.MapIndex(k).IsValid() {
				return fmt.Sprintf("%s[%v]", path, k)
			}
			if d := firstDifference(a.MapIndex(k), b.MapIndex(k), fmt.Sprintf("%s[%v]", path, k)); d != "" {
				return d
			}
		}
	default:
		if fmt.Sprint(a) != fmt.Sprint(b) {
			return fmt.Sprintf("%s: %v, want %v", path, b, a)
		}
	}
	return ""
}
