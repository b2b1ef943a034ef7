package config

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
)

func (v *validator) checkUpstream(u *Upstream) {
	s := subject{KindUpstream, u.Metadata.Name, &u.Source}
	if !u.Source.valid("spec") {
		return
	}
	// The discovery types are the fields of UpstreamSpec, so a new one is checked here as soon
	// as it is added to the schema.
	types := slices.DeleteFunc(slices.Clone(structInfoOf(reflect.TypeFor[UpstreamSpec]()).names),
		func(f string) bool { return slices.Contains(upstreamSettings, f) })
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
	if u.Spec.DNS != nil && u.Source.valid("spec.dns") {
		v.checkDNSHosts(s, u.Spec.DNS)
	}
	if u.Spec.Etcd != nil && u.Source.valid("spec.etcd") {
		v.checkEtcd(s, u.Spec.Etcd)
	}
	if u.Spec.AWS != nil && u.Source.valid("spec.aws") {
		var tls *UpstreamTLS
		if u.Spec.Options != nil {
			tls = u.Spec.Options.TLS
		}
		v.checkAWSUpstream(s, u.Spec.AWS, tls)
	}
	v.checkUpstreamOptions(s, u.Spec.Options)
	if u.Spec.Options != nil && u.Source.valid("spec.options") {
		v.checkUpstreamTLS(s, u.Spec.Options.TLS)
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
				v.errorf(s, p+".address", "%q is not an IP address; use an IP address, or list host names under dns.hosts instead of static.hosts", excerpt(h.Address))
			}
		}
		if s.src.valid(p+".port") && !validPort(h.Port) {
			v.errorf(s, p+".port", "%s", portRangeMessage(h.Port))
		}
		v.checkWeight(s, p+".weight", h.Weight)
	}
}

func (v *validator) checkDNSHosts(s subject, d *DNSUpstream) {
	if s.src.valid("spec.dns.hosts") && len(d.Hosts) == 0 {
		v.errorf(s, "spec.dns.hosts", "no hosts; add at least one {hostname: <name>, port: <1-65535>}")
	}
	for i, h := range d.Hosts {
		p := fmt.Sprintf("spec.dns.hosts[%d]", i)
		if s.src.valid(p + ".hostname") {
			if _, isIP := parseIP(h.Hostname); isIP {
				v.errorf(s, p+".hostname", "%q is an IP address; list it under static.hosts, or use a host name here", excerpt(h.Hostname))
			} else if !validHostname(h.Hostname) {
				v.errorf(s, p+".hostname", "%q is not a host name; use a DNS name such as \"api.internal\"", excerpt(h.Hostname))
			}
		}
		if s.src.valid(p+".port") && !validPort(h.Port) {
			v.errorf(s, p+".port", "%s", portRangeMessage(h.Port))
		}
		v.checkWeight(s, p+".weight", h.Weight)
	}
	families := []string{LookupFamilyV4, LookupFamilyV6, LookupFamilyAuto}
	if s.src.valid("spec.dns.lookupFamily") && !slices.Contains(families, d.LookupFamily) {
		v.errorf(s, "spec.dns.lookupFamily", "unknown lookup family %q; use one of %s%s",
			excerpt(d.LookupFamily), strings.Join(families, ", "), didYouMean(d.LookupFamily, families))
	}
	v.checkDNSResolution(s, d)
}

// checkWeight checks a host's load-balancing weight, which Envoy wants between 1 and 2^32-1.
func (v *validator) checkWeight(s subject, field string, w int) {
	if s.src.valid(field) && (w < 1 || w > math.MaxUint32) {
		v.errorf(s, field, "weight %d is out of range; use 1 or more (weights are relative to each other)", w)
	}
}
