package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// ErrNoDocuments is wrapped by the error Load and Parse return when the given paths hold no
// YAML documents at all, so that a caller can tell an empty directory from a broken file.
var ErrNoDocuments = errors.New("no configuration documents found")

// Load reads every YAML document from paths, each a file or a directory, and returns the
// validated Config. Directories are read recursively in name order: files ending in .yaml or
// .yml are loaded, entries whose name starts with "." are skipped and symlinks are followed,
// which is what a mounted Kubernetes ConfigMap (a "..data" symlink farm) needs.
//
// Problems in the configuration are returned together as Diagnostics (use errors.As), warnings
// included, so that one run shows everything to fix; I/O problems are returned as wrapped
// errors (errors.Is(err, fs.ErrNotExist) works), and an empty set of files wraps
// ErrNoDocuments. On any error the Config is nil.
func Load(paths ...string) (*Config, error) {
	if len(paths) == 0 {
		return nil, errors.New("load config: no paths given")
	}
	files, err := ReadFiles(paths...)
	if err != nil {
		return nil, err
	}
	return parseFiles(files).finish(paths)
}

// Parse reads the YAML documents in data, which came from filename, and validates them as a
// complete configuration, exactly as Load does for a single file.
func Parse(filename string, data []byte) (*Config, error) {
	var l loader
	l.add(decodeFile(filename, data), false)
	l.convertGatewayAPI()
	return l.finish([]string{filename})
}

// findFiles expands paths into the configuration files to read, in load order.
func findFiles(paths []string) ([]string, error) {
	var files []string
	var errs []error
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("read config: %w", err))
			continue
		}
		if !info.IsDir() {
			files = append(files, p)
			continue
		}
		found, err := walkDir(p, []os.FileInfo{info})
		files = append(files, found...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return files, errors.Join(errs...)
}

// walkDir lists the configuration files below dir. filepath.WalkDir does not follow symlinks,
// and ConfigMap mounts consist of them, so this walks by hand; ancestors detects a symlink that
// loops back to a directory being walked.
func walkDir(dir string, ancestors []os.FileInfo) ([]string, error) {
	entries, err := os.ReadDir(dir) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	var files []string
	var errs []error
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		info, err := os.Stat(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("read config: %w", err))
			continue
		}
		if !info.IsDir() {
			if info.Mode().IsRegular() && isYAMLName(e.Name()) {
				files = append(files, path)
			}
			continue
		}
		if loopsBack(info, ancestors) {
			errs = append(errs, fmt.Errorf("read config: %s: symlink loops back to a parent directory", path))
			continue
		}
		found, err := walkDir(path, append(ancestors, info))
		files = append(files, found...)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return files, errors.Join(errs...)
}

func loopsBack(dir os.FileInfo, ancestors []os.FileInfo) bool {
	for _, a := range ancestors {
		if os.SameFile(dir, a) {
			return true
		}
	}
	return false
}

func isYAMLName(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml"
}

// loader accumulates the resources and diagnostics of every file of one load.
type loader struct {
	cfg          Config
	diags        Diagnostics
	docs         int
	syntaxErrors bool
	gw           gatewayAPIDocs
	// decoded lists the files decoded for this load rather than taken from a DecodeCache.
	decoded []string
	// origins maps the resources converted from Gateway API documents to those documents.
	origins map[ResourceRef]origin
}

// convertGatewayAPI adds the resources converted from the load's Gateway API documents. It
// runs once every file is read: a route may name a Gateway or Service of another file.
func (l *loader) convertGatewayAPI() {
	if l.syntaxErrors || l.gw.classes == nil && l.gw.gateways == nil && l.gw.routes == nil && l.gw.services == nil && l.gw.secrets == nil {
		return
	}
	out, resources, origins, diags := convertGatewayAPI(l.gw)
	l.cfg.Gateways = append(l.cfg.Gateways, out.Gateways...)
	l.cfg.VirtualServices = append(l.cfg.VirtualServices, out.VirtualServices...)
	l.cfg.Upstreams = append(l.cfg.Upstreams, out.Upstreams...)
	l.cfg.Secrets = append(l.cfg.Secrets, out.Secrets...)
	l.cfg.GatewayAPI = resources
	l.origins = origins
	l.diags = append(l.diags, diags...)
}

// attributed returns a copy of ds with attribute applied, leaving ds as the isolation, which
// works on Portico resources, saw it.
func (l *loader) attributed(ds Diagnostics) Diagnostics {
	if len(l.origins) == 0 {
		return ds
	}
	out := slices.Clone(ds)
	l.attribute(out)
	return out
}

// attribute makes a diagnostic about a resource converted from a Gateway API document name
// that document and its field, which is what the user wrote.
func (l *loader) attribute(ds Diagnostics) {
	for i, d := range ds {
		o, ok := l.origins[ResourceRef{Kind: d.Kind, Name: d.Name}]
		if !ok {
			continue
		}
		name, field := o.name, ""
		for p := d.Field; p != ""; p = parentPath(p) {
			if f, ok := o.fields[p]; ok {
				name, field = f.name, f.path
				break
			}
		}
		ds[i].Message = fmt.Sprintf("%s (as Portico %s %q %s)", d.Message, d.Kind, d.Name, d.Field)
		ds[i].Kind, ds[i].Name, ds[i].Field = o.kind, name, field
	}
}

// fileDocs is what one file decodes to: its resources, defaults applied, and the decoder's
// findings. Once built it is never changed, so a DecodeCache can hand it to many loads.
type fileDocs struct {
	cfg         Config
	diags       Diagnostics
	docs        int
	syntaxError bool
	gw          gatewayAPIDocs
}

// add appends the resources and findings of one file. copied gives the load its own deep copy
// of each resource (see DecodeCache), so that validation, which records what it reads from the
// files a resource names, never writes into f.
func (l *loader) add(f *fileDocs, copied bool) {
	l.cfg.Gateways = appendResources(l.cfg.Gateways, f.cfg.Gateways, copied)
	l.cfg.VirtualServices = appendResources(l.cfg.VirtualServices, f.cfg.VirtualServices, copied)
	l.cfg.RouteTables = appendResources(l.cfg.RouteTables, f.cfg.RouteTables, copied)
	l.cfg.Upstreams = appendResources(l.cfg.Upstreams, f.cfg.Upstreams, copied)
	l.cfg.UpstreamGroups = appendResources(l.cfg.UpstreamGroups, f.cfg.UpstreamGroups, copied)
	l.cfg.Proxies = appendResources(l.cfg.Proxies, f.cfg.Proxies, copied)
	l.cfg.Secrets = appendResources(l.cfg.Secrets, f.cfg.Secrets, copied)
	l.gw.add(f.gw)
	l.diags = append(l.diags, f.diags...)
	l.docs += f.docs
	l.syntaxErrors = l.syntaxErrors || f.syntaxError
}

func appendResources[T any](list, more []*T, copied bool) []*T {
	if !copied {
		return append(list, more...)
	}
	for _, r := range more {
		list = append(list, deepCopy(r))
	}
	return list
}

// parallelBytes is the size from which a file's documents are decoded in parallel: below it,
// starting goroutines costs more than it saves.
const parallelBytes = 64 << 10

// decodeFile decodes every document of one file and applies the defaults, which depend on
// nothing but the resource itself (and its file's directory). A large file's documents are
// decoded in parallel, in as many groups as there are processors: YAML parsing and decoding
// are most of a large configuration's load, and documents are independent until validation.
func decodeFile(filename string, data []byte) *fileDocs {
	n := 1
	if len(data) >= parallelBytes {
		n = runtime.GOMAXPROCS(0)
	}
	return decodeGroups(filename, data, splitDocuments(data, n))
}

// decodeGroups decodes each group of documents on its own and joins the results in file order.
func decodeGroups(filename string, data []byte, groups []docGroup) *fileDocs {
	if len(groups) == 1 {
		return decodeStream(filename, data, 0)
	}
	parts := make([]*fileDocs, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Go(func() { parts[i] = decodeStream(filename, data[g.start:g.end], g.line-1) })
	}
	wg.Wait()
	if slices.ContainsFunc(parts, func(p *fileDocs) bool { return p.syntaxError }) {
		// An alias to an anchor of an earlier document (which yaml.v3 allows) is an error
		// in a group of its own, and the error of a broken file must be the one reading it in
		// one go reports: errors are rare, so read it again.
		return decodeStream(filename, data, 0)
	}
	f := &fileDocs{}
	for _, p := range parts {
		f.cfg.Gateways = append(f.cfg.Gateways, p.cfg.Gateways...)
		f.cfg.VirtualServices = append(f.cfg.VirtualServices, p.cfg.VirtualServices...)
		f.cfg.RouteTables = append(f.cfg.RouteTables, p.cfg.RouteTables...)
		f.cfg.Upstreams = append(f.cfg.Upstreams, p.cfg.Upstreams...)
		f.cfg.UpstreamGroups = append(f.cfg.UpstreamGroups, p.cfg.UpstreamGroups...)
		f.cfg.Proxies = append(f.cfg.Proxies, p.cfg.Proxies...)
		f.cfg.Secrets = append(f.cfg.Secrets, p.cfg.Secrets...)
		f.gw.add(p.gw)
		f.diags = append(f.diags, p.diags...)
		f.docs += p.docs
	}
	return f
}

// decodeStream decodes the documents of data, which starts after line lineOffset of the file. A
// YAML syntax error ends it: the parser cannot find the next document boundary reliably after one.
func decodeStream(filename string, data []byte, lineOffset int) *fileDocs {
	f := &fileDocs{}
	defer applyDefaults(&f.cfg)
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return f
		}
		if err != nil {
			d := syntaxDiagnostic(filename, err)
			if d.Pos.Line > 0 {
				d.Pos.Line += lineOffset
			}
			f.syntaxError = true
			f.diags = append(f.diags, d)
			return f
		}
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
			continue // an empty document, such as a trailing "---"
		}
		if lineOffset > 0 {
			shiftLines(doc.Content[0], lineOffset)
		}
		f.docs++
		f.decodeDocument(filename, doc.Content[0])
	}
}

// shiftLines moves the nodes of a document parsed from a part of a file to their lines in the
// whole file. Aliases are not followed: the nodes they refer to are in the tree too.
func shiftLines(n *yaml.Node, by int) {
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by)
	}
}

// docGroup is a run of whole documents of a file: data[start:end], starting at line line.
type docGroup struct {
	start, end, line int
}

// splitDocuments cuts data into at most n groups of whole documents of about equal size, at
// lines that start a document ("---" at the start of a line, alone or followed by a space or a
// tab: YAML allows nothing else there). It returns one group when n is 1, when data has fewer
// documents, and when the cut could change the meaning: a directive (a line starting with
// "%") belongs to the document after it, and text that is not UTF-8 may be UTF-16, whose bytes
// do not split by lines.
func splitDocuments(data []byte, n int) []docGroup {
	whole := []docGroup{{start: 0, end: len(data), line: 1}}
	if n <= 1 || !utf8.Valid(data) {
		return whole
	}
	target := len(data)/n + 1
	groups := []docGroup{{start: 0, line: 1}}
	line := 1
	for off := 0; off < len(data); {
		next := bytes.IndexByte(data[off:], '\n')
		end := len(data)
		if next >= 0 {
			end = off + next + 1
		}
		text := data[off:end]
		if len(text) > 0 && text[0] == '%' {
			return whole
		}
		cur := &groups[len(groups)-1]
		if off > cur.start && off-cur.start >= target && len(groups) < n && startsDocument(text) {
			cur.end = off
			groups = append(groups, docGroup{start: off, line: line})
		}
		off = end
		line++
	}
	groups[len(groups)-1].end = len(data)
	return groups
}

// startsDocument reports whether a line is a document start marker.
func startsDocument(line []byte) bool {
	rest, ok := bytes.CutPrefix(line, []byte("---"))
	return ok && (len(rest) == 0 || rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\n' || rest[0] == '\r')
}

// yamlLine pulls the line number out of the parser's "yaml: line N: message" errors.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are the messages of yaml.v3's parser stage. Unlike its scanner errors, they
// carry a 0-based line number, and none at all for the first line.
var parserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

func syntaxDiagnostic(filename string, err error) Diagnostic {
	d := Diagnostic{Pos: Position{File: filename}, Severity: SeverityError}
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		d.Pos.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if slices.Contains(parserProblems, msg) {
		d.Pos.Line++
	}
	d.Message = "invalid YAML: " + msg
	return d
}

// knownKinds is listed in messages, in the order a configuration usually introduces them.
var knownKinds = []string{KindGateway, KindVirtualService, KindRouteTable, KindUpstream, KindUpstreamGroup, KindProxy, KindSecret}

// decodeDocument checks a document's envelope (apiVersion, kind) and decodes it into the
// resource its kind names.
func (f *fileDocs) decodeDocument(filename string, root *yaml.Node) {
	var src Source
	d := newDecoder(filename, &src, &f.diags)
	src.Doc = d.pos(root)
	if root.Kind != yaml.MappingNode {
		d.report(root, "", "a document must be a map with apiVersion, kind, metadata and spec; got %s", describe(root))
		return
	}
	apiVersion, kind, name := envelope(root)
	if kinds, ok := kubernetesAPIVersion(apiVersion); ok {
		d.name = name
		switch {
		case kind == nil || kind.Kind != yaml.ScalarNode || kind.ShortTag() != "!!str":
			d.report(root, "kind", "missing kind; %s documents are of kind %s", apiVersion.Value, strings.Join(kinds, ", "))
		case !slices.Contains(kinds, kind.Value):
			d.report(kind, "kind", "%s %q is not supported; Portico reads %s documents of kind %s (see docs/gateway-api.md)",
				apiVersion.Value, excerpt(kind.Value), apiVersion.Value, strings.Join(kinds, ", "))
		default:
			f.decodeKubernetes(d, root, &src, apiVersion.Value, kind.Value)
		}
		return
	}
	if kind != nil && kind.ShortTag() == "!!str" && slices.Contains(knownKinds, kind.Value) {
		// A name means little without its kind, so diagnostics name the resource only when
		// both are known.
		d.kind, d.name = kind.Value, name
	}
	switch {
	case apiVersion == nil:
		d.report(root, "", "missing apiVersion; add apiVersion: %s", APIVersion)
	case apiVersion.Kind != yaml.ScalarNode || apiVersion.ShortTag() != "!!str":
		d.report(apiVersion, "apiVersion", "expected a string, got %s; use apiVersion: %s", describe(apiVersion), APIVersion)
	case strings.HasPrefix(apiVersion.Value, gatewayAPIGroup+"/"):
		d.report(apiVersion, "apiVersion", "%q is not supported; Portico reads Gateway API documents of apiVersion %s", excerpt(apiVersion.Value), GatewayAPIVersion)
	case apiVersion.Value != APIVersion:
		d.report(apiVersion, "apiVersion", "%q is not supported; use apiVersion: %s (or %s for Gateway API documents)", excerpt(apiVersion.Value), APIVersion, GatewayAPIVersion)
	}
	if apiVersion != nil && apiVersion.ShortTag() == "!!str" && strings.HasPrefix(apiVersion.Value, gatewayAPIGroup+"/") {
		return // reported above; the kinds of another version of the Gateway API are not Portico's
	}
	known := strings.Join(knownKinds, ", ")
	switch {
	case kind == nil:
		d.report(root, "", "missing kind; set kind to one of %s", known)
		return
	case kind.Kind != yaml.ScalarNode || kind.ShortTag() != "!!str":
		d.report(kind, "kind", "expected a string, got %s; use one of %s", describe(kind), known)
		return
	case d.kind == "":
		d.report(kind, "kind", "unknown kind %q (known: %s)%s", excerpt(kind.Value), known, didYouMean(kind.Value, knownKinds))
		return
	}
	top := []string{"apiVersion", "kind"}
	switch d.kind {
	case KindGateway:
		r := &Gateway{}
		d.decodeStruct(root, reflect.ValueOf(r).Elem(), "", top)
		r.Source = src
		f.cfg.Gateways = append(f.cfg.Gateways, r)
	case KindVirtualService:
		r := &VirtualService{}
		d.decodeStruct(root, reflect.ValueOf(r).Elem(), "", top)
		r.Source = src
		f.cfg.VirtualServices = append(f.cfg.VirtualServices, r)
	case KindRouteTable:
		r := &RouteTable{}
		d.decodeStruct(root, reflect.ValueOf(r).Elem(), "", top)
		r.Source = src
		f.cfg.RouteTables = append(f.cfg.RouteTables, r)
	case KindUpstream:
		r := &Upstream{}
		d.decodeStruct(root, reflect.ValueOf(r).Elem(), "", top)
		r.Source = src
		f.cfg.Upstreams = append(f.cfg.Upstreams, r)
	case KindUpstreamGroup:
		r := &UpstreamGroup{}
		d.decodeStruct(root, reflect.ValueOf(r).Elem(), "", top)
		r.Source = src
		f.cfg.UpstreamGroups = append(f.cfg.UpstreamGroups, r)
	case KindProxy:
		r := &Proxy{}
		d.decodeStruct(root, reflect.ValueOf(r).Elem(), "", top)
		r.Source = src
		f.cfg.Proxies = append(f.cfg.Proxies, r)
	case KindSecret:
		r := &Secret{}
		d.decodeStruct(root, reflect.ValueOf(r).Elem(), "", top)
		r.Source = src
		f.cfg.Secrets = append(f.cfg.Secrets, r)
	}
}

// envelope finds the apiVersion and kind nodes and the resource name of a document before it
// is decoded, so that every diagnostic about the document can name the resource.
func envelope(root *yaml.Node) (apiVersion, kind *yaml.Node, name string) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		val := resolveAlias(root.Content[i+1])
		switch root.Content[i].Value {
		case "apiVersion":
			apiVersion = val
		case "kind":
			kind = val
		case "metadata":
			if val.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(val.Content); j += 2 {
				if n := resolveAlias(val.Content[j+1]); val.Content[j].Value == "name" && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" {
					name = n.Value
				}
			}
		}
	}
	if apiVersion != nil && isNull(apiVersion) {
		apiVersion = nil
	}
	if kind != nil && isNull(kind) {
		kind = nil
	}
	return apiVersion, kind, name
}

// finish validates everything read, as one set, and returns the Config or the diagnostics.
func (l *loader) finish(paths []string) (*Config, error) {
	if l.syntaxErrors {
		// Until every file parses Portico cannot know what is defined, and checking references
		// would report things as missing that are merely unreadable.
		l.diags.sort()
		return nil, l.diags
	}
	if l.docs == 0 {
		return nil, fmt.Errorf("%w in %s: add YAML files (*.yaml, *.yml) with apiVersion: %s",
			ErrNoDocuments, strings.Join(paths, ", "), APIVersion)
	}
	found := validate(&l.cfg)
	l.attribute(found)
	l.diags = append(l.diags, found...)
	l.diags.sort()
	if l.diags.HasErrors() {
		return nil, l.diags
	}
	cfg := l.cfg
	cfg.Warnings = l.diags
	return &cfg, nil
}
