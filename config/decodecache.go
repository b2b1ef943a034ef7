package config

import (
	"crypto/sha256"
	"reflect"
	"sync"
)

// DecodeCache keeps the decoded documents of configuration files, by path and content hash, so
// that a reload decodes only the files whose content changed: with thousands of routes, YAML
// decoding of the unchanged files is most of a reload's work. Only decoding is cached.
// Validation, cross-references and isolation always run on the whole set, and every load gets
// its own deep copy of the cached resources: validation records in a resource what it read
// from the files the resource names (certificates, JWKS, Secrets), so a copy that was never
// validated is what makes a changed certificate or key set be read again, and it keeps a later
// load from writing into a configuration that is being served.
//
// A DecodeCache is safe for concurrent use. It holds the files of the last load only.
type DecodeCache struct {
	mu    sync.Mutex
	files map[string]cachedFile
}

type cachedFile struct {
	sum  [sha256.Size]byte
	docs *fileDocs
}

// NewDecodeCache returns an empty cache.
func NewDecodeCache() *DecodeCache {
	return &DecodeCache{files: map[string]cachedFile{}}
}

// LoadIsolated is the package's LoadIsolated, decoding only the files that changed since this
// cache's last load. Isolated.Decoded names the files it decoded.
func (c *DecodeCache) LoadIsolated(prev *Config, files []SourceFile) (*Isolated, error) {
	return loadIsolated(c.parse(files), prev, files)
}

// parse decodes files into a loader, taking unchanged files from the cache; a nil cache decodes
// them all. The cache then holds exactly files: a removed file's documents go with it.
func (c *DecodeCache) parse(files []SourceFile) *loader {
	var l loader
	if c == nil {
		for _, f := range files {
			l.add(decodeFile(f.Name, []byte(f.Data)), false)
			l.decoded = append(l.decoded, f.Name)
		}
		l.convertGatewayAPI()
		return &l
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := make(map[string]cachedFile, len(files))
	for _, f := range files {
		sum := sha256.Sum256([]byte(f.Data))
		cf, ok := c.files[f.Name]
		if !ok || cf.sum != sum {
			cf = cachedFile{sum: sum, docs: decodeFile(f.Name, []byte(f.Data))}
			l.decoded = append(l.decoded, f.Name)
		}
		next[f.Name] = cf
		l.add(cf.docs, true)
	}
	c.files = next
	l.convertGatewayAPI()
	return &l
}

// deepCopy returns a copy of the resource r that shares no memory the decoder or validation
// writes: pointers, slices and maps reached through exported fields are copied. Unexported
// fields are copied by value; TestDeepCopyCoversResources checks that each is either a plain
// value or a Source, whose maps are complete once decoding ends and are only read afterwards.
func deepCopy[T any](r *T) *T {
	out := new(T)
	copyValue(reflect.ValueOf(out).Elem(), reflect.ValueOf(r).Elem())
	return out
}

// copyValue sets dst, which is addressable, to a deep copy of src.
func copyValue(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		p := reflect.New(src.Type().Elem())
		copyValue(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Struct:
		dst.Set(src)
		for _, i := range referenceFields(src.Type()) {
			copyValue(dst.Field(i), src.Field(i))
		}
	case reflect.Slice:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		if holdsReferences(src.Type().Elem()) {
			for i := range src.Len() {
				copyValue(s.Index(i), src.Index(i))
			}
		} else {
			reflect.Copy(s, src)
		}
		dst.Set(s)
	case reflect.Map:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		for it := src.MapRange(); it.Next(); {
			v := reflect.New(src.Type().Elem()).Elem()
			copyValue(v, it.Value())
			m.SetMapIndex(it.Key(), v)
		}
		dst.Set(m)
	default:
		dst.Set(src)
	}
}

var referenceFieldsCache sync.Map // reflect.Type -> []int

// referenceFields lists the exported fields of struct type t whose values hold references
// (pointers, slices, maps, or structs with such fields): the ones a copy must descend into.
func referenceFields(t reflect.Type) []int {
	if v, ok := referenceFieldsCache.Load(t); ok {
		return v.([]int)
	}
	var out []int
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() && holdsReferences(f.Type) {
			out = append(out, i)
		}
	}
	v, _ := referenceFieldsCache.LoadOrStore(t, out)
	return v.([]int)
}

func holdsReferences(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return true
	case reflect.Struct:
		return len(referenceFields(t)) > 0
	default:
		return false
	}
}
