package config

import (
	"fmt"
	"reflect"
	"strings"
)

func (v *validator) checkUpstream(u *Upstream) {
	s := subject{KindUpstream, u.Metadata.Name, &u.Source}
	if !u.Source.valid("spec") {
		return
	}
	// The discovery types are the fields of UpstreamSpec, so a new one is checked here as soon
	// as it is added to the schema.
	types := structInfoOf(reflect.TypeFor[UpstreamSpec]()).names
	var set []string
	for _, t := range types {
		if u.Source.has("spec." + t) {
			set = append(set, t)
		}
	}
	switch {
	case len(set) == 0:
		v.errorf(s, "spec", "no discovery type; set one of: %s", strings.Join(types, ", "))
	case len(set) > 1:
		v.errorf(s, "spec", "set only one discovery type, not all of: %s", strings.Join(set, ", "))
	}
	if u.Spec.Static != nil && u.Source.valid("spec.static") {
		v.checkStaticHosts(s, u.Spec.Static)
	}
}

func (v *validator) checkStaticHosts(s subject, st *StaticUpstream) {
	if s.src.valid("spec.static.hosts") && len(st.Hosts) == 0 {
		v.errorf(s, "spec.static.hosts", "no hosts; add at least one {address: <IP>, port: <1-65535>}")
	}
	for i, h := range st.Hosts {
		p := fmt.Sprintf("spec.static.hosts[%d]", i)
		if s.src.valid(p + ".address") {
			if _, ok := parseIP(h.Address); !ok {
				v.errorf(s, p+".address", "%q is not an IP address; use an IP address (DNS names are not supported yet)", excerpt(h.Address))
			}
		}
		if s.src.valid(p+".port") && !validPort(h.Port) {
			v.errorf(s, p+".port", "%s", portRangeMessage(h.Port))
		}
	}
}
