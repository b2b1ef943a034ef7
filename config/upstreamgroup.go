package config

// KindUpstreamGroup is the document that names a weighted set of Upstreams.
const KindUpstreamGroup = "UpstreamGroup"

// UpstreamGroup is a named, weighted set of Upstreams that routes use as their destination
// (upstreamGroup: <name>), so that a traffic split is written once and shifted in one place
// for every route that uses it.
type UpstreamGroup struct {
	Metadata Metadata          `yaml:"metadata"`
	Spec     UpstreamGroupSpec `yaml:"spec"`
	Source   Source            `yaml:"-"`
}

// UpstreamGroupSpec is the body of an UpstreamGroup.
type UpstreamGroupSpec struct {
	// Destinations split requests between Upstreams by weight (each 1 or more).
	Destinations []Destination `yaml:"destinations"`
}

// upstreamGroupIndex resolves route references to UpstreamGroups; the first definition wins.
type upstreamGroupIndex struct {
	byName map[string]*UpstreamGroup
	names  []string // in definition order, for hints
}

// UpstreamGroupNamed returns the UpstreamGroup of that name, nil when there is none. A
// validated Config has at most one of each name.
func (c *Config) UpstreamGroupNamed(name string) *UpstreamGroup {
	for _, g := range c.UpstreamGroups {
		if g.Metadata.Name == name {
			return g
		}
	}
	return nil
}

// RouteDestinations returns the weighted Upstreams a route splits its requests between: its
// own destinations, or those of the UpstreamGroup it names. Nil when the route does neither.
func (c *Config) RouteDestinations(r *Route) []Destination {
	if r.UpstreamGroup == "" {
		return r.Destinations
	}
	if g := c.UpstreamGroupNamed(r.UpstreamGroup); g != nil {
		return g.Spec.Destinations
	}
	return nil
}

// checkUpstreamGroups checks the groups' names and destinations and indexes them. It runs
// after the Upstreams are indexed and before any route is checked. Duplicate names are errors
// at the second definition, as for the other kinds.
func (v *validator) checkUpstreamGroups(groups []*UpstreamGroup) {
	v.groups = upstreamGroupIndex{byName: map[string]*UpstreamGroup{}}
	for _, g := range groups {
		s := subject{KindUpstreamGroup, g.Metadata.Name, &g.Source}
		// checkNames has checked the name and labels; the first definition of a name is indexed.
		if _, dup := v.groups.byName[g.Metadata.Name]; g.Source.valid("metadata.name") && !dup {
			v.groups.byName[g.Metadata.Name] = g
			v.groups.names = append(v.groups.names, g.Metadata.Name)
		}
		if g.Source.valid("spec.destinations") {
			v.checkDestinations(s, "spec.destinations", g.Spec.Destinations)
		}
	}
}

// checkUpstreamGroupRef checks a route's upstreamGroup reference at p.
func (v *validator) checkUpstreamGroupRef(s subject, p, name string) {
	if s.src.valid(p) && v.groups.byName[name] == nil {
		v.errorf(s, p, "%s", notDefined(KindUpstreamGroup, name, v.groups.names))
	}
}
