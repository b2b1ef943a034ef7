package config

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
)

// SourceFile is one configuration file as it was read. A set of them is what produced a
// Config, and what Portico persists as the last known good configuration.
type SourceFile struct {
	Name string `json:"name"`
	Data string `json:"data"`
}

// ReadFiles reads every configuration file under paths, in load order (see Load). I/O problems
// are returned together; validating what could be read would report references to the unread
// files as undefined, so the I/O error alone is what the user must fix.
func ReadFiles(paths ...string) ([]SourceFile, error) {
	names, err := findFiles(paths)
	if err != nil {
		return nil, err
	}
	files := make([]SourceFile, 0, len(names))
	var errs []error
	for _, n := range names {
		data, err := os.ReadFile(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("read config: %w", err))
			continue
		}
		files = append(files, SourceFile{Name: n, Data: string(data)})
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return files, nil
}

// LoadFiles decodes and validates files as one configuration, exactly as Load does for the
// files it reads.
func LoadFiles(files []SourceFile) (*Config, error) {
	return parseFiles(files).finish(fileNames(files))
}

func parseFiles(files []SourceFile) *loader {
	return (*DecodeCache)(nil).parse(files)
}

func fileNames(files []SourceFile) []string {
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = f.Name
	}
	return names
}

// isolatedKinds are the kinds whose errors reject only the resource itself: each is one
// team's routes, and one team's typo must not hold back everybody else's change. Gateways,
// Upstreams and Secrets are shared infrastructure, so their errors reject the whole change.
var isolatedKinds = []string{KindVirtualService, KindRouteTable}

// ResourceRef names one resource.
type ResourceRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

// Rejection is a resource that a partially applied configuration leaves out or holds back.
type Rejection struct {
	ResourceRef
	// Problems are the errors that rejected it.
	Problems Diagnostics
	// Kept reports that the resource's version from the previous configuration is served in
	// its place; otherwise the resource is not served at all.
	Kept bool
}

// Isolated is a configuration to serve built by LoadIsolated.
type Isolated struct {
	// Config is what to serve: every valid resource of the files, plus the previous version of
	// each rejected resource that still fits.
	Config *Config
	// Rejected lists the resources of the files that are not served as written, sorted by
	// kind and name. Empty when the files are valid as a whole.
	Rejected []Rejection
	// Decoded names the files that were decoded, in load order: all of them, or with a
	// DecodeCache those whose content changed since its last load.
	Decoded []string
}

// maxIsolationRounds bounds how often a candidate is re-validated. Each round excludes at least
// one more resource, so it only matters for configurations with very long delegation chains,
// which are then rejected as a whole.
const maxIsolationRounds = 16

// LoadIsolated decodes and validates files as LoadFiles does, but tolerates errors that belong
// to a single VirtualService or RouteTable: such a resource is replaced by its version in prev
// (the configuration served now, may be nil) or, if prev has none or it no longer fits, left
// out. Everything else in the files is served. A resource that depends on a left-out one (a
// VirtualService delegating to a broken RouteTable) is treated as broken too.
//
// The whole change is rejected, with every diagnostic, when any error cannot be pinned on one
// such resource: YAML syntax errors, Gateway, Upstream and Secret errors (a credential file
// that does not parse among them), duplicate names, and clashes
// between VirtualServices (a domain claimed twice) that only exist in combination.
func LoadIsolated(prev *Config, files []SourceFile) (*Isolated, error) {
	return loadIsolated(parseFiles(files), prev, files)
}

func loadIsolated(l *loader, prev *Config, files []SourceFile) (*Isolated, error) {
	if l.syntaxErrors || l.docs == 0 {
		_, err := l.finish(fileNames(files))
		return nil, err
	}
	all := append(slices.Clone(l.diags), validate(&l.cfg)...)
	all.sort()
	if !all.HasErrors() {
		cfg := l.cfg
		cfg.Warnings = l.attributed(all)
		return &Isolated{Config: &cfg, Decoded: l.decoded}, nil
	}
	// Decoding errors (l.diags) leave a resource partly read; they are isolated like any other
	// error of that resource.
	iso := isolator{files: &l.cfg, prev: prev, problems: map[ResourceRef]Diagnostics{}, dropKept: map[ResourceRef]bool{}}
	if !iso.blame(all) || hasDuplicateNames(&l.cfg) || !iso.eachBrokenAloneIsBroken() {
		return nil, l.attributed(all)
	}
	for range maxIsolationRounds {
		cand := iso.candidate()
		diags := iso.withoutLeftOutRefs(append(candidateDecodeDiags(l.diags, iso.problems), validate(cand)...))
		if !diags.HasErrors() {
			diags.sort()
			cand.Warnings = l.attributed(diags)
			rejected := iso.rejections()
			for i := range rejected {
				// The rejection stays the Portico resource's, whose previous version is
				// served in its place; its reasons name what the user wrote.
				rejected[i].Problems = l.attributed(rejected[i].Problems)
			}
			return &Isolated{Config: cand, Rejected: rejected, Decoded: l.decoded}, nil
		}
		if !iso.blame(diags) {
			return nil, l.attributed(all)
		}
	}
	return nil, l.attributed(all)
}

// candidateDecodeDiags keeps the decoding findings (warnings) of the resources still served.
func candidateDecodeDiags(decoded Diagnostics, excluded map[ResourceRef]Diagnostics) Diagnostics {
	var out Diagnostics
	for _, d := range decoded {
		if _, gone := excluded[ResourceRef{d.Kind, d.Name}]; !gone {
			out = append(out, d)
		}
	}
	return out
}

// isolator decides which resources of the files are held back.
type isolator struct {
	files *Config
	prev  *Config
	// problems holds the resources of the files that are not served, with their errors.
	problems map[ResourceRef]Diagnostics
	// dropKept marks rejected resources whose previous version does not fit either.
	dropKept map[ResourceRef]bool
	// progress is set when blame excluded something new.
	progress bool
}

// blame attributes the errors in diags to resources and reports whether every error could be
// pinned on an isolatable resource whose exclusion is progress. An error on a previous version
// standing in for a rejected resource drops that stand-in.
func (iso *isolator) blame(diags Diagnostics) bool {
	progress := false
	for _, d := range diags {
		if d.Severity != SeverityError {
			continue
		}
		ref := ResourceRef{d.Kind, d.Name}
		if d.Name == "" || !slices.Contains(isolatedKinds, d.Kind) {
			return false
		}
		if _, rejected := iso.problems[ref]; rejected {
			if iso.kept(ref) != nil && !iso.dropKept[ref] {
				iso.dropKept[ref] = true
				progress = true
			}
			// Otherwise this is the file's own version, already rejected.
			continue
		}
		iso.problems[ref] = append(iso.problems[ref], d)
		progress = true
	}
	for ref, ds := range iso.problems {
		// Findings gathered in earlier rounds only: keep them in file order.
		ds.sort()
		iso.problems[ref] = ds
	}
	return progress
}

// withoutLeftOutRefs drops a candidate's errors about a Gateway's reference to a VirtualService
// the candidate leaves out: that is the expected effect of leaving it out, and the
// VirtualService's own errors already say why.
func (iso *isolator) withoutLeftOutRefs(diags Diagnostics) Diagnostics {
	return slices.DeleteFunc(diags, iso.refersToLeftOut)
}

// refersToLeftOut reports whether d is a Gateway's spec.virtualServices entry naming a
// VirtualService that the candidate leaves out.
func (iso *isolator) refersToLeftOut(d Diagnostic) bool {
	if d.Kind != KindGateway {
		return false
	}
	var i int
	if n, err := fmt.Sscanf(d.Field, "spec.virtualServices[%d]", &i); n != 1 || err != nil || d.Field != fmt.Sprintf("spec.virtualServices[%d]", i) {
		return false
	}
	for _, g := range iso.files.Gateways {
		if g.Metadata.Name != d.Name || i >= len(g.Spec.VirtualServices) {
			continue
		}
		ref := ResourceRef{KindVirtualService, g.Spec.VirtualServices[i]}
		_, rejected := iso.problems[ref]
		return rejected && (iso.kept(ref) == nil || iso.dropKept[ref])
	}
	return false
}

// eachBrokenAloneIsBroken checks that every rejected VirtualService is wrong on its own, next to
// the Gateways, Upstreams and RouteTables but without the other VirtualServices. If it is
// valid alone, its error comes from a clash with another VirtualService, and which of the two
// is to blame is the user's call.
func (iso *isolator) eachBrokenAloneIsBroken() bool {
	for ref := range iso.problems {
		if ref.Kind != KindVirtualService {
			continue
		}
		for _, vs := range iso.files.VirtualServices {
			if vs.Metadata.Name != ref.Name {
				continue
			}
			alone := *iso.files
			alone.VirtualServices = []*VirtualService{vs}
			if !validate(&alone).HasErrors() {
				return false
			}
		}
	}
	return true
}

// kept returns the previous version of a rejected resource, nil if there is none.
func (iso *isolator) kept(ref ResourceRef) any {
	if iso.prev == nil {
		return nil
	}
	switch ref.Kind {
	case KindVirtualService:
		if r := findNamed(iso.prev.VirtualServices, ref.Name, func(r *VirtualService) string { return r.Metadata.Name }); r != nil {
			return r
		}
	case KindRouteTable:
		if r := findNamed(iso.prev.RouteTables, ref.Name, func(r *RouteTable) string { return r.Metadata.Name }); r != nil {
			return r
		}
	}
	return nil
}

func findNamed[T any](list []*T, name string, nameOf func(*T) string) *T {
	for _, r := range list {
		if nameOf(r) == name {
			return r
		}
	}
	return nil
}

// candidate is the files' configuration with the rejected resources replaced by their kept
// previous versions. The stand-ins come last, so that a clash between a stand-in and a
// resource of the files is reported on the stand-in.
func (iso *isolator) candidate() *Config {
	cand := *iso.files
	cand.Warnings = nil
	cand.VirtualServices = filterOut(iso.files.VirtualServices, KindVirtualService, iso.problems,
		func(r *VirtualService) string { return r.Metadata.Name })
	cand.RouteTables = filterOut(iso.files.RouteTables, KindRouteTable, iso.problems,
		func(r *RouteTable) string { return r.Metadata.Name })
	cand.heldBack = map[ResourceRef]bool{}
	for _, ref := range iso.sortedRefs() {
		if iso.dropKept[ref] || iso.kept(ref) == nil {
			cand.heldBack[ref] = true
			continue
		}
		switch r := iso.kept(ref).(type) {
		case *VirtualService:
			cand.VirtualServices = append(cand.VirtualServices, r)
		case *RouteTable:
			cand.RouteTables = append(cand.RouteTables, r)
		}
	}
	return &cand
}

func filterOut[T any](list []*T, kind string, excluded map[ResourceRef]Diagnostics, nameOf func(*T) string) []*T {
	var out []*T
	for _, r := range list {
		if _, gone := excluded[ResourceRef{kind, nameOf(r)}]; !gone {
			out = append(out, r)
		}
	}
	return out
}

func (iso *isolator) sortedRefs() []ResourceRef {
	refs := make([]ResourceRef, 0, len(iso.problems))
	for ref := range iso.problems {
		refs = append(refs, ref)
	}
	slices.SortFunc(refs, func(a, b ResourceRef) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Name, b.Name))
	})
	return refs
}

func (iso *isolator) rejections() []Rejection {
	var out []Rejection
	for _, ref := range iso.sortedRefs() {
		out = append(out, Rejection{
			ResourceRef: ref,
			Problems:    iso.problems[ref],
			Kept:        iso.kept(ref) != nil && !iso.dropKept[ref],
		})
	}
	return out
}

// hasDuplicateNames reports whether two resources of one kind share a name: which of them is
// meant cannot be decided, so the change is rejected as a whole.
func hasDuplicateNames(cfg *Config) bool {
	seen := map[ResourceRef]bool{}
	add := func(kind, name string) bool {
		ref := ResourceRef{kind, name}
		if seen[ref] {
			return true
		}
		seen[ref] = true
		return false
	}
	for _, r := range cfg.VirtualServices {
		if add(KindVirtualService, r.Metadata.Name) {
			return true
		}
	}
	for _, r := range cfg.RouteTables {
		if add(KindRouteTable, r.Metadata.Name) {
			return true
		}
	}
	return false
}
