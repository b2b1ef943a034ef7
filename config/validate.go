package config

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strings"
)

// validate runs every semantic check on a decoded configuration with defaults applied. Each
// check looks only at fields that were written and decoded (Source.valid): a field the decoder
// already rejected, or a required field that is missing, has been reported once and is not
// judged again by its zero value.
func validate(cfg *Config) Diagnostics {
	v := &validator{
		cfg:             cfg,
		gateways:        map[string]*Gateway{},
		virtualServices: map[string]*VirtualService{},
		routeTables:     map[string]*RouteTable{},
		upstreams:       map[string]*Upstream{},
	}
	v.checkNames(cfg)
	// Gateways and Upstreams refer to tls Secrets, so Secrets are indexed first.
	v.checkSecrets(cfg.Secrets)
	for _, g := range cfg.Gateways {
		v.checkGateway(g)
	}
	v.checkGatewayClashes(cfg.Gateways)
	v.checkProxies(cfg.Proxies)
	for _, u := range cfg.Upstreams {
		v.checkUpstream(u)
	}
	v.checkUpstreamGroups(cfg.UpstreamGroups)
	for _, vs := range cfg.VirtualServices {
		v.checkVirtualService(vs, len(cfg.Gateways) == 0)
	}
	for _, rt := range cfg.RouteTables {
		v.checkRouteTable(rt)
	}
	v.checkDelegation(cfg)
	v.checkCacheBypass(cfg)
	v.checkJWTDelegation(cfg)
	v.checkDomainClaims(cfg)
	return v.diags
}

// validator carries the findings and the name indexes that cross-resource checks consult.
type validator struct {
	cfg   *Config
	diags Diagnostics
	// The resources by name; the first definition wins.
	gateways        map[string]*Gateway
	virtualServices map[string]*VirtualService
	routeTables     map[string]*RouteTable
	upstreams       map[string]*Upstream
	groups          upstreamGroupIndex
	secrets         secretIndex
	// The defined names in definition order, for hints.
	gatewayNames, virtualServiceNames, routeTableNames, upstreamNames []string
}

// subject is the resource a finding is about.
type subject struct {
	kind, name string
	src        *Source
}

func (v *validator) errorf(s subject, field, format string, args ...any) {
	v.add(SeverityError, s, field, fmt.Sprintf(format, args...))
}

func (v *validator) warnf(s subject, field, format string, args ...any) {
	v.add(SeverityWarning, s, field, fmt.Sprintf(format, args...))
}

func (v *validator) add(sev Severity, s subject, field, msg string) {
	v.diags = append(v.diags, Diagnostic{
		Pos: s.src.At(field), Severity: sev,
		Kind: s.kind, Name: s.name, Field: field, Message: msg,
	})
}

// nameRE is a DNS-1123-like name: names end up in Envoy resource names and statistics, where
// this alphabet needs no escaping.
var nameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`)

const maxNameLen = 253

// checkNames checks every resource's name and builds the indexes used to resolve references.
func (v *validator) checkNames(cfg *Config) {
	type named struct {
		subject
		meta *Metadata
	}
	var all []named
	for _, g := range cfg.Gateways {
		all = append(all, named{subject{KindGateway, g.Metadata.Name, &g.Source}, &g.Metadata})
	}
	for _, vs := range cfg.VirtualServices {
		all = append(all, named{subject{KindVirtualService, vs.Metadata.Name, &vs.Source}, &vs.Metadata})
	}
	for _, rt := range cfg.RouteTables {
		all = append(all, named{subject{KindRouteTable, rt.Metadata.Name, &rt.Source}, &rt.Metadata})
	}
	for _, u := range cfg.Upstreams {
		all = append(all, named{subject{KindUpstream, u.Metadata.Name, &u.Source}, &u.Metadata})
	}
	for _, g := range cfg.UpstreamGroups {
		all = append(all, named{subject{KindUpstreamGroup, g.Metadata.Name, &g.Source}, &g.Metadata})
	}
	for _, sec := range cfg.Secrets {
		all = append(all, named{subject{KindSecret, sec.Metadata.Name, &sec.Source}, &sec.Metadata})
	}
	first := map[[2]string]subject{}
	for _, r := range all {
		if r.src.valid("metadata.labels") {
			v.checkLabels(r.subject, "metadata.labels", r.meta.Labels)
		}
		if !r.src.valid("metadata.name") {
			continue
		}
		name := r.meta.Name
		if len(name) > maxNameLen || !nameRE.MatchString(name) {
			v.errorf(r.subject, "metadata.name", "invalid name %q: use at most %d lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
				excerpt(name), maxNameLen)
		}
		key := [2]string{r.kind, name}
		if prev, dup := first[key]; dup {
			v.errorf(r.subject, "metadata.name", "already defined at %s; names must be unique per kind, rename one",
				prev.src.At("metadata.name"))
			continue
		}
		first[key] = r.subject
	}
	for _, g := range cfg.Gateways {
		if _, dup := v.gateways[g.Metadata.Name]; g.Source.valid("metadata.name") && !dup {
			v.gateways[g.Metadata.Name] = g
			v.gatewayNames = append(v.gatewayNames, g.Metadata.Name)
		}
	}
	for _, vs := range cfg.VirtualServices {
		if _, dup := v.virtualServices[vs.Metadata.Name]; vs.Source.valid("metadata.name") && !dup {
			v.virtualServices[vs.Metadata.Name] = vs
			v.virtualServiceNames = append(v.virtualServiceNames, vs.Metadata.Name)
		}
	}
	for _, rt := range cfg.RouteTables {
		if _, dup := v.routeTables[rt.Metadata.Name]; rt.Source.valid("metadata.name") && !dup {
			v.routeTables[rt.Metadata.Name] = rt
			v.routeTableNames = append(v.routeTableNames, rt.Metadata.Name)
		}
	}
	for _, u := range cfg.Upstreams {
		if _, dup := v.upstreams[u.Metadata.Name]; u.Source.valid("metadata.name") && !dup {
			v.upstreams[u.Metadata.Name] = u
			v.upstreamNames = append(v.upstreamNames, u.Metadata.Name)
		}
	}
}

// notDefined words an unresolved reference: what is defined instead, and the likely intent.
func notDefined(kind, name string, defined []string) string {
	if len(defined) == 0 {
		return fmt.Sprintf("%s %q is not defined (no %ss are defined)", kind, excerpt(name), kind)
	}
	sorted := slices.Sorted(slices.Values(defined))
	const maxListed = 10
	list := strings.Join(sorted[:min(len(sorted), maxListed)], ", ")
	if len(sorted) > maxListed {
		list += fmt.Sprintf(" and %d more", len(sorted)-maxListed)
	}
	return fmt.Sprintf("%s %q is not defined (defined: %s)%s", kind, excerpt(name), list, didYouMean(name, sorted))
}

func validPort(p int) bool { return p >= 1 && p <= 65535 }

func portRangeMessage(p int) string {
	return fmt.Sprintf("port %d is out of range; use 1-65535", p)
}

// parseIP accepts an IP literal as Envoy's socket addresses do: no zone, no host name.
func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	return a, err == nil && a.Zone() == ""
}

// labelNameRE is the name part of a Kubernetes label key, and the form of a non-empty value.
var labelNameRE = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)

// labelPrefixRE is the optional DNS-subdomain prefix of a label key ("example.com/").
var labelPrefixRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)

// checkLabels holds labels to Kubernetes' rules, so that the same labels work in both worlds
// and selectors never meet a key they cannot express.
func (v *validator) checkLabels(s subject, field string, labels map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		p := field + "." + k
		prefix, name, hasPrefix := strings.Cut(k, "/")
		if !hasPrefix {
			name, prefix = prefix, ""
		}
		switch {
		case hasPrefix && (len(prefix) > 253 || !labelPrefixRE.MatchString(prefix)):
			v.errorf(s, p, "label key %q: the prefix before '/' must be a lowercase DNS name such as \"example.com\"", excerpt(k))
		case len(name) > 63 || !labelNameRE.MatchString(name):
			v.errorf(s, p, "label key %q: use at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit", excerpt(k))
		}
		if !s.src.valid(p) {
			continue
		}
		if val := labels[k]; val != "" && (len(val) > 63 || !labelNameRE.MatchString(val)) {
			v.errorf(s, p, "label value %q: use at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit", excerpt(val))
		}
	}
}
