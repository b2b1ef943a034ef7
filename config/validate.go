package config

import (
	"fmt"
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
		gateways:  map[string]*Gateway{},
		upstreams: map[string]*Upstream{},
	}
	v.checkNames(cfg)
	for _, g := range cfg.Gateways {
		v.checkGateway(g)
	}
	v.checkGatewayClashes(cfg.Gateways)
	for _, u := range cfg.Upstreams {
		v.checkUpstream(u)
	}
	for _, vs := range cfg.VirtualServices {
		v.checkVirtualService(vs, len(cfg.Gateways) == 0)
	}
	v.checkDomainClaims(cfg)
	return v.diags
}

// validator carries the findings and the name indexes that cross-resource checks consult.
type validator struct {
	diags     Diagnostics
	gateways  map[string]*Gateway  // by name; the first definition wins
	upstreams map[string]*Upstream // by name; the first definition wins
	// gatewayNames and upstreamNames are the defined names in definition order, for hints.
	gatewayNames, upstreamNames []string
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
	for _, u := range cfg.Upstreams {
		all = append(all, named{subject{KindUpstream, u.Metadata.Name, &u.Source}, &u.Metadata})
	}
	first := map[[2]string]subject{}
	for _, r := range all {
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
