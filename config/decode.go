package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// nodeBudget bounds the nodes decoded from one document. Aliases let a small file expand
// exponentially ("billion laughs"); no real configuration comes near this many nodes.
const nodeBudget = 1 << 20

// decoder writes one YAML document into a resource struct, guided only by the struct's yaml
// tags (see the package comment for their rules). It records the position of every field it
// writes into src and reports every problem into diags rather than stopping at the first.
type decoder struct {
	file       string
	kind, name string // the resource, for diagnostics
	src        *Source
	diags      *Diagnostics
	budget     int
	// expanding holds the anchored nodes being decoded: meeting an alias to one of them means
	// the anchor contains itself, which would never end.
	expanding map[*yaml.Node]bool
}

func newDecoder(file string, src *Source, diags *Diagnostics) *decoder {
	return &decoder{file: file, src: src, diags: diags, budget: nodeBudget, expanding: map[*yaml.Node]bool{}}
}

func (d *decoder) pos(n *yaml.Node) Position {
	return Position{File: d.file, Line: n.Line, Column: n.Column}
}

func (d *decoder) report(n *yaml.Node, field, format string, args ...any) {
	*d.diags = append(*d.diags, Diagnostic{
		Pos: d.pos(n), Severity: SeverityError,
		Kind: d.kind, Name: d.name, Field: field,
		Message: fmt.Sprintf(format, args...),
	})
}

// decode writes n into v, recording n's position under path; when the value is rejected the
// path is marked invalid so that validation does not judge its zero value again.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	d.src.set(path, d.pos(n))
	if !d.decodeNode(n, v, path) {
		d.src.markInvalid(path)
	}
}

// decodeNode writes n into v and reports whether v now holds the user's value. Problems inside
// a list or map element are the element's own: the container itself still decoded.
func (d *decoder) decodeNode(n *yaml.Node, v reflect.Value, path string) bool {
	d.budget--
	if d.budget < 0 {
		if d.budget == -1 {
			d.report(n, path, "document is too large (more than %d values after expanding aliases); split it up", nodeBudget)
		}
		return false
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil || d.expanding[n.Alias] {
			d.report(n, path, "alias *%s refers to a value that contains it; write the value out", n.Value)
			return false
		}
		return d.decodeNode(n.Alias, v, path)
	}
	if n.Anchor != "" {
		d.expanding[n] = true
		defer delete(d.expanding, n)
	}
	if v.Type() == notSupportedType {
		d.report(n, path, "this Kubernetes field is not supported by Portico; remove it (see docs/gateway-api.md)")
		return false
	}
	switch v.Kind() {
	case reflect.Pointer:
		if isNull(n) {
			v.SetZero()
			return true
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.decodeNode(n, v.Elem(), path)
	case reflect.Struct:
		return d.decodeStruct(n, v, path, nil)
	case reflect.Slice:
		return d.decodeSlice(n, v, path)
	case reflect.Map:
		return d.decodeMap(n, v, path)
	default:
		return d.decodeScalar(n, v, path)
	}
}

// decodeStruct fills a struct from a YAML map. envelope names keys that the caller has already
// read (apiVersion and kind at the top of a document) and that are therefore allowed here.
//
// It runs for every map of every document, thousands of times per large configuration, so it
// allocates only for what it finds wrong: keys seen are kept in a small slice (a map's keys are
// few) and the list of valid names is built only for a message.
func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string, envelope []string) bool {
	if n.Kind != yaml.MappingNode {
		return d.typeError(n, v.Type(), path)
	}
	info := structInfoOf(v.Type())
	var seenBuf [16]*yaml.Node
	seen := seenBuf[:0]
	var meant map[string]*yaml.Node // field -> the misspelt key that most likely meant it
	merged := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode {
			d.report(key, path, "a field name must be a plain word, got %s", describe(key))
			continue
		}
		name := key.Value
		if key.ShortTag() == "!!merge" {
			d.report(key, path, "YAML merge keys (<<) are not supported; write the fields out")
			merged = true
			continue
		}
		if first := keyNamed(seen, name); first != nil {
			d.report(key, path, "field %q is set more than once (first at %s); keep one", name, d.pos(first))
			continue
		}
		seen = append(seen, key)
		f, known := info.fields[name]
		switch {
		case known:
			// An empty value (`field:`) means the same as leaving the field out.
			if !isNull(resolveAlias(val)) {
				d.decode(val, v.Field(f.index), joinPath(path, name))
			}
		case !slices.Contains(envelope, name):
			valid := append(slices.Clone(envelope), info.names...)
			d.report(key, path, "unknown field %q (valid: %s)%s", name, strings.Join(valid, ", "), didYouMean(name, valid))
			if c := closest(name, info.names); c != "" && meant[c] == nil {
				if meant == nil {
					meant = map[string]*yaml.Node{}
				}
				meant[c] = key
			}
		}
	}
	// A misspelt field counts as written but invalid: the user has been told to fix its name,
	// and reporting the intended field as missing, or a one-of as unset, would say it twice.
	for name, key := range meant {
		if p := joinPath(path, name); keyNamed(seen, name) == nil {
			d.src.set(p, d.pos(key))
			d.src.markInvalid(p)
		}
	}
	if merged {
		// The merged fields are unknown, so any "missing" report could be wrong.
		return true
	}
	for _, f := range info.order {
		if !f.required || d.src.has(joinPath(path, f.name)) {
			continue
		}
		if key := keyNamed(seen, f.name); key != nil {
			d.report(key, path, "field %q is empty; it is required", f.name)
		} else {
			d.report(n, path, "missing required field %q", f.name)
		}
	}
	return true
}

// keyNamed returns the key of keys named name, nil if there is none.
func keyNamed(keys []*yaml.Node, name string) *yaml.Node {
	for _, k := range keys {
		if k.Value == name {
			return k
		}
	}
	return nil
}

func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.SequenceNode {
		return d.typeError(n, v.Type(), path)
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(item, s.Index(i), path+"["+strconv.Itoa(i)+"]")
	}
	v.Set(s)
	return true
}

func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.MappingNode {
		return d.typeError(n, v.Type(), path)
	}
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		d.report(n, path, "internal error: schema map %s must have string keys", t)
		return false
	}
	m := reflect.MakeMapWithSize(t, len(n.Content)/2)
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i], n.Content[i+1]
		if key.Kind != yaml.ScalarNode || key.ShortTag() != "!!str" {
			d.report(key, path, "keys must be strings, got %s%s", describe(key), quoteHint(key))
			continue
		}
		if first, dup := seen[key.Value]; dup {
			d.report(key, path, "key %q is set more than once (first at %s); keep one", key.Value, d.pos(first))
			continue
		}
		seen[key.Value] = key
		elem := reflect.New(t.Elem()).Elem()
		d.decode(val, elem, joinPath(path, key.Value))
		m.SetMapIndex(reflect.ValueOf(key.Value).Convert(t.Key()), elem)
	}
	v.Set(m)
	return true
}

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path string) bool {
	if n.Kind != yaml.ScalarNode {
		return d.typeError(n, v.Type(), path)
	}
	tag := n.ShortTag()
	switch v.Kind() {
	case reflect.String:
		if tag != "!!str" {
			return d.typeError(n, v.Type(), path)
		}
		v.SetString(n.Value)
		return true
	case reflect.Bool:
		var b bool
		if tag != "!!bool" || n.Decode(&b) != nil {
			return d.typeError(n, v.Type(), path)
		}
		v.SetBool(b)
		return true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if tag == "!!float" && isIntegerText(n.Value) {
			// YAML reads an integer too large for 64 bits as a float.
			d.report(n, path, "%s is out of range for this field", excerpt(n.Value))
			return false
		}
		if tag != "!!int" {
			return d.typeError(n, v.Type(), path)
		}
		if n.Decode(&i) != nil || v.OverflowInt(i) {
			d.report(n, path, "%s is out of range for this field", n.Value)
			return false
		}
		v.SetInt(i)
		return true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var u uint64
		if tag == "!!float" && isIntegerText(n.Value) {
			d.report(n, path, "%s is out of range for this field", excerpt(n.Value))
			return false
		}
		if tag != "!!int" {
			return d.typeError(n, v.Type(), path)
		}
		if n.Decode(&u) != nil || v.OverflowUint(u) {
			d.report(n, path, "%s is out of range for this field", n.Value)
			return false
		}
		v.SetUint(u)
		return true
	case reflect.Float32, reflect.Float64:
		var f float64
		if (tag != "!!float" && tag != "!!int") || n.Decode(&f) != nil {
			return d.typeError(n, v.Type(), path)
		}
		if v.OverflowFloat(f) {
			d.report(n, path, "%s is out of range for this field", n.Value)
			return false
		}
		v.SetFloat(f)
		return true
	default:
		d.report(n, path, "internal error: schema type %s cannot be decoded", v.Type())
		return false
	}
}

// typeError reports that n is not of the type the schema wants at path, and returns false.
func (d *decoder) typeError(n *yaml.Node, want reflect.Type, path string) bool {
	hint := ""
	if want.Kind() == reflect.String {
		hint = quoteHint(n)
	}
	d.report(n, path, "expected %s, got %s%s", describeType(want), describe(n), hint)
	return false
}

// quoteHint suggests quoting a scalar that YAML read as a number, boolean or date but that the
// schema wants as a string: `version: 2` in labels, say.
func quoteHint(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode || isNull(n) || n.ShortTag() == "!!str" {
		return ""
	}
	return fmt.Sprintf("; quote it: %q", n.Value)
}

// describeType names the YAML shape that decodes into t.
func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return describeType(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	default:
		return "a map"
	}
}

// describe names what the user wrote, with a short excerpt of a scalar's text.
func describe(n *yaml.Node) string {
	n = resolveAlias(n)
	switch n.Kind {
	case yaml.MappingNode:
		return "a map"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
	default:
		return "an unexpected YAML node"
	}
	v := excerpt(n.Value)
	switch tag := n.ShortTag(); tag {
	case "!!str":
		return fmt.Sprintf("a string (%q)", v)
	case "!!int":
		return fmt.Sprintf("an integer (%s)", v)
	case "!!float":
		return fmt.Sprintf("a number (%s)", v)
	case "!!bool":
		return fmt.Sprintf("a boolean (%s)", v)
	case "!!null":
		return "an empty value"
	case "!!timestamp":
		return fmt.Sprintf("a date (%s)", v)
	case "!!binary":
		return "binary data"
	default:
		return fmt.Sprintf("a value tagged %s", excerpt(tag))
	}
}

// excerpt shortens s for a message, keeping it valid UTF-8.
func excerpt(s string) string {
	const maxRunes = 40
	if utf8.RuneCountInString(s) <= maxRunes {
		return s
	}
	return string([]rune(s)[:maxRunes]) + "..."
}

// resolveAlias returns the node an alias stands for; other nodes stand for themselves.
func resolveAlias(n *yaml.Node) *yaml.Node {
	// An anchor is never placed on an alias, so one step suffices; the bound only guards
	// against a parser that ever did otherwise.
	for i := 0; i < 8 && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

// isIntegerText reports whether s is written as a decimal integer, whatever its size.
func isIntegerText(s string) bool {
	s = strings.TrimLeft(s, "+-")
	return s != "" && strings.Trim(s, "0123456789_") == ""
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func joinPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// schemaField is one user-settable struct field.
type schemaField struct {
	name     string
	index    int
	required bool
}

// structInfo is what the decoder needs to know about a schema struct, read from its tags once.
type structInfo struct {
	fields map[string]schemaField
	order  []schemaField // declaration order, for required checks
	names  []string      // declaration order, for "valid: ..." lists
}

var structInfoCache sync.Map // reflect.Type -> *structInfo

func structInfoOf(t reflect.Type) *structInfo {
	if info, ok := structInfoCache.Load(t); ok {
		return info.(*structInfo)
	}
	info := &structInfo{fields: map[string]schemaField{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if !sf.IsExported() || name == "" || name == "-" {
			continue
		}
		f := schemaField{name: name, index: i, required: !slices.Contains(strings.Split(opts, ","), "omitempty")}
		info.fields[name] = f
		info.order = append(info.order, f)
		info.names = append(info.names, name)
	}
	actual, _ := structInfoCache.LoadOrStore(t, info)
	return actual.(*structInfo)
}
