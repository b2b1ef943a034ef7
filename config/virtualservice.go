package config

import (
	"fmt"
	"strings"
)

func (v *validator) checkVirtualService(vs *VirtualService, noGateways bool) {
	s := subject{KindVirtualService, vs.Metadata.Name, &vs.Source}
	if noGateways {
		v.warnf(s, "", "no Gateway is defined, so this VirtualService receives no traffic; add a Gateway")
	}
	if !vs.Source.valid("spec") {
		return
	}
	v.checkGatewayRefs(s, vs.Spec.Gateways)
	v.checkDomains(s, vs.Spec.Domains)
	if o := vs.Spec.Options; o != nil && s.src.valid("spec.options") {
		v.checkHeaderOptions(s, o)
		v.checkHeadersToAdd(s, "spec.options.requestHeadersToSet", o.RequestHeadersToSet)
		v.checkHeadersToAdd(s, "spec.options.responseHeadersToSet", o.ResponseHeadersToSet)
		if o.CORS != nil && s.src.valid("spec.options.cors") {
			v.checkCORS(s, "spec.options.cors", o.CORS)
		}
	}
	v.checkVirtualServiceHTTPSRedirect(s, vs)
	v.checkRoutes(s, vs.Spec.Routes)
	v.checkRateLimitPolicy(s, "spec.rateLimit", vs.Spec.RateLimit, true)
	v.checkRoutesRateLimits(s, vs.Spec.Routes)
	v.checkSecurity(s, vs)
	v.checkCompression(s, "spec.compression", vs.Spec.Compression, true)
	v.checkCache(s, "spec.cache", vs.Spec.Cache, false)
}

// checkHeaderOptions checks the headers a VirtualService adds and removes.
func (v *validator) checkHeaderOptions(s subject, o *VirtualServiceOptions) {
	for _, add := range []struct {
		field   string
		headers []HeaderValue
	}{{"spec.options.requestHeadersToAdd", o.RequestHeadersToAdd}, {"spec.options.responseHeadersToAdd", o.ResponseHeadersToAdd}} {
		for i, h := range add.headers {
			p := fmt.Sprintf("%s[%d]", add.field, i)
			if s.src.valid(p+".name") && strings.HasPrefix(h.Name, ":") {
				v.errorf(s, p+".name", "pseudo-header %q cannot be added; use an ordinary header name", excerpt(h.Name))
			} else {
				v.checkHeaderName(s, p+".name", h.Name)
			}
			if s.src.valid(p+".value") && strings.ContainsAny(h.Value, "\r\n\x00") {
				v.errorf(s, p+".value", "header value contains a line break or NUL; remove it")
			}
		}
	}
	for _, rm := range []struct {
		field string
		names []string
	}{{"spec.options.requestHeadersToRemove", o.RequestHeadersToRemove}, {"spec.options.responseHeadersToRemove", o.ResponseHeadersToRemove}} {
		for i, name := range rm.names {
			p := fmt.Sprintf("%s[%d]", rm.field, i)
			if s.src.valid(p) && (strings.HasPrefix(name, ":") || strings.EqualFold(name, "host")) {
				v.errorf(s, p, "header %q cannot be removed; Envoy needs it to route", excerpt(name))
				continue
			}
			v.checkHeaderName(s, p, name)
		}
	}
}

func (v *validator) checkGatewayRefs(s subject, refs []string) {
	seen := map[string]bool{}
	for i, ref := range refs {
		p := fmt.Sprintf("spec.gateways[%d]", i)
		switch {
		case !s.src.valid(p):
		case seen[ref]:
			v.errorf(s, p, "Gateway %q is listed more than once; remove the repeat", excerpt(ref))
		case v.gateways[ref] == nil:
			v.errorf(s, p, "%s", notDefined(KindGateway, ref, v.gatewayNames))
		case v.gateways[ref].Spec.Protocol == ProtocolTCP:
			v.errorf(s, p, "Gateway %q is a TCP Gateway (%s) and serves no VirtualServices; attach to an HTTP Gateway",
				ref, v.gateways[ref].Source.At("spec.protocol"))
		}
		seen[ref] = true
	}
}

func (v *validator) checkDomains(s subject, domains []string) {
	if s.src.valid("spec.domains") && len(domains) == 0 {
		v.errorf(s, "spec.domains", "no domains; list at least one, or remove domains to answer every host (%q)", DefaultDomain)
	}
	// Envoy compares domains case-insensitively and rejects a route configuration that lists
	// one twice, so "Shop.example.com" repeats "shop.example.com".
	seen := map[string]string{}
	for i, d := range domains {
		p := fmt.Sprintf("spec.domains[%d]", i)
		if !s.src.valid(p) {
			continue
		}
		star := strings.Index(d, "*")
		switch {
		case d == "":
			v.errorf(s, p, "domain is empty; use a host name such as \"shop.example.com\", or %q for every host", DefaultDomain)
			continue
		case star >= 0 && d != "*" && (strings.Count(d, "*") > 1 || (star != 0 && star != len(d)-1)):
			v.errorf(s, p, "domain %q: a '*' may only be the whole domain, or its first or last character", excerpt(d))
		}
		key := strings.ToLower(d)
		if prev, dup := seen[key]; dup {
			v.errorf(s, p, "domain %q is listed more than once (also %s); domains are case-insensitive, remove the repeat", excerpt(d), prev)
			continue
		}
		seen[key] = p
	}
}

// checkDomainClaims rejects two VirtualServices that serve the same domain on one Gateway:
// Envoy rejects duplicate domains within one route configuration.
func (v *validator) checkDomainClaims(cfg *Config) {
	type claim struct {
		vs    *VirtualService
		index int
	}
	owners := map[string]map[string]claim{} // gateway name -> lower-cased domain -> first claim
	for _, vs := range cfg.VirtualServices {
		if !vs.Source.valid("spec") {
			continue
		}
		attached := v.attachedGateways(vs)
		for i, d := range vs.Spec.Domains {
			if d == "" {
				continue
			}
			key := strings.ToLower(d)
			// Group the clashes by the other VirtualService, so one message names all Gateways.
			var others []claim
			clashOn := map[*VirtualService][]string{}
			for _, gw := range attached {
				if owners[gw] == nil {
					owners[gw] = map[string]claim{}
				}
				c, taken := owners[gw][key]
				switch {
				case !taken:
					owners[gw][key] = claim{vs, i}
				case c.vs != vs:
					if clashOn[c.vs] == nil {
						others = append(others, c)
					}
					clashOn[c.vs] = append(clashOn[c.vs], gw)
				}
			}
			for _, c := range others {
				p := fmt.Sprintf("spec.domains[%d]", i)
				what := fmt.Sprintf("domain %q", excerpt(d))
				if !vs.Source.has("spec.domains") {
					what += " (the default when domains is not set)"
				}
				gws := clashOn[c.vs]
				on := fmt.Sprintf("Gateway %q", gws[0])
				if len(gws) > 1 {
					on = fmt.Sprintf("Gateways %s", quoteList(gws))
				}
				v.errorf(subject{KindVirtualService, vs.Metadata.Name, &vs.Source}, p,
					"%s on %s is also claimed by VirtualService %q (%s); a domain may belong to only one VirtualService per Gateway, remove it from one of them",
					what, on, c.vs.Metadata.Name, c.vs.Source.At(fmt.Sprintf("spec.domains[%d]", c.index)))
			}
		}
	}
}

// attachedGateways names the defined Gateways that serve a VirtualService, whichever side
// chose the attachment.
func (v *validator) attachedGateways(vs *VirtualService) []string {
	var out []string
	for _, name := range v.gatewayNames {
		if v.gateways[name].Serves(vs) {
			out = append(out, name)
		}
	}
	return out
}

func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quote(n)
	}
	return strings.Join(q, ", ")
}
