package config

import "slices"

// checkGatewayHTTPSRedirect checks options.httpsRedirect on a Gateway: only an HTTP Gateway
// can redirect to HTTPS, and one that does serves no VirtualService, so naming or selecting
// any is a contradiction.
func (v *validator) checkGatewayHTTPSRedirect(s subject, g *Gateway) {
	const p = "spec.options."
	o := g.Spec.Options
	if o == nil || !s.src.valid("spec.options") {
		return
	}
	v.checkHTTPSRedirectPort(s, p, o.HTTPSRedirect, o.HTTPSRedirectPort)
	if !o.HTTPSRedirect || !s.src.valid(p+"httpsRedirect") {
		return
	}
	if g.Spec.Protocol != ProtocolHTTP {
		v.errorf(s, p+"httpsRedirect", "only an HTTP Gateway can redirect to HTTPS; this one speaks %s, remove httpsRedirect", g.Spec.Protocol)
		return
	}
	for _, field := range []string{"spec.virtualServices", "spec.virtualServiceSelector"} {
		if s.src.has(field) {
			v.errorf(s, field, "a Gateway with httpsRedirect answers every request with a redirect and serves no VirtualService; remove %s or httpsRedirect",
				field[len("spec."):])
		}
	}
}

// checkVirtualServiceHTTPSRedirect checks options.httpsRedirect on a VirtualService, and warns
// when no HTTP Gateway serves it, since it redirects only requests that came in over plain HTTP.
func (v *validator) checkVirtualServiceHTTPSRedirect(s subject, vs *VirtualService) {
	const p = "spec.options."
	o := vs.Spec.Options
	if o == nil || !s.src.valid("spec.options") {
		return
	}
	v.checkHTTPSRedirectPort(s, p, o.HTTPSRedirect, o.HTTPSRedirectPort)
	if !o.HTTPSRedirect || !s.src.valid(p+"httpsRedirect") || len(v.cfg.Gateways) == 0 {
		return
	}
	servedOverHTTP := slices.ContainsFunc(v.cfg.Gateways, func(g *Gateway) bool {
		return g.Spec.Protocol == ProtocolHTTP && g.Serves(vs)
	})
	if !servedOverHTTP {
		v.warnf(s, p+"httpsRedirect", "no HTTP Gateway serves this VirtualService, so httpsRedirect redirects nothing")
	}
}

func (v *validator) checkHTTPSRedirectPort(s subject, p string, redirect bool, port int) {
	field := p + "httpsRedirectPort"
	if !s.src.valid(field) {
		return
	}
	switch {
	case !redirect:
		v.errorf(s, field, "httpsRedirectPort needs httpsRedirect: true")
	case !validPort(port):
		v.errorf(s, field, "%s", portRangeMessage(port))
	case port == DefaultHTTPSPort:
		v.errorf(s, field, "%d is the default; remove httpsRedirectPort", DefaultHTTPSPort)
	}
}

// DefaultHTTPSPort is where httpsRedirect sends clients unless httpsRedirectPort says otherwise:
// the standard port, which the Location then leaves out.
const DefaultHTTPSPort = 443
