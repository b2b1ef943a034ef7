package config

import (
	"fmt"
	"math"
	"net/netip"
	"slices"
	"time"
)

func (v *validator) checkGateway(g *Gateway) {
	s := subject{KindGateway, g.Metadata.Name, &g.Source}
	if g.Source.valid("spec.bindPort") && !validPort(g.Spec.BindPort) {
		v.errorf(s, "spec.bindPort", "%s", portRangeMessage(g.Spec.BindPort))
	}
	if g.Source.valid("spec.bindAddress") {
		if _, ok := parseIP(g.Spec.BindAddress); !ok {
			v.errorf(s, "spec.bindAddress", "%q is not an IP address; use one such as 0.0.0.0 (every interface) or 127.0.0.1",
				excerpt(g.Spec.BindAddress))
		}
	}
	if g.Source.valid("spec.protocol") {
		switch g.Spec.Protocol {
		case ProtocolHTTP, ProtocolHTTPS, ProtocolTCP:
		default:
			v.errorf(s, "spec.protocol", "protocol %q is not supported; use %s, %s or %s (or leave protocol out for %s)",
				excerpt(g.Spec.Protocol), ProtocolHTTP, ProtocolHTTPS, ProtocolTCP, ProtocolHTTP)
		}
	}
	v.checkTCPGateway(s, g)
	v.checkGatewayTLS(s, g)
	seen := map[string]bool{}
	for i, name := range g.Spec.VirtualServices {
		p := fmt.Sprintf("spec.virtualServices[%d]", i)
		if !g.Source.valid(p) {
			continue
		}
		vs := v.virtualServices[name]
		switch {
		case seen[name]:
			v.errorf(s, p, "VirtualService %q is listed more than once; remove the repeat", excerpt(name))
		case vs == nil:
			v.errorf(s, p, "%s", notDefined(KindVirtualService, name, v.virtualServiceNames))
		case len(vs.Spec.Gateways) > 0 && !slices.Contains(vs.Spec.Gateways, g.Metadata.Name):
			v.errorf(s, p, "VirtualService %q limits itself to other Gateways (%s); add %q to its spec.gateways or remove it here",
				name, vs.Source.At("spec.gateways"), g.Metadata.Name)
		}
		seen[name] = true
	}
	if sel := g.Spec.VirtualServiceSelector; sel != nil && g.Source.valid("spec.virtualServiceSelector") {
		v.checkLabels(s, "spec.virtualServiceSelector.matchLabels", sel.MatchLabels)
		if g.Spec.Protocol != ProtocolTCP && !slices.ContainsFunc(v.cfg.VirtualServices, g.Serves) {
			v.warnf(s, "spec.virtualServiceSelector", "selects no VirtualService, so this Gateway answers every request with 404; label a VirtualService to match")
		}
	}
	if o := g.Spec.Options; o != nil && g.Source.valid("spec.options") {
		v.checkGatewayOptions(s, o)
	}
	v.checkGatewayHTTPSRedirect(s, g)
	v.checkGatewayRateLimit(s, g.Spec.RateLimit, firstRedisOwner(v.cfg.Gateways))
	v.checkAccessLog(s, g.Spec.AccessLog)
	v.checkTracing(s, g.Spec.Tracing)
	v.checkGatewayCompression(s, g)
}

func (v *validator) checkGatewayOptions(s subject, o *GatewayOptions) {
	const p = "spec.options."
	if s.src.valid(p+"perConnectionBufferLimitBytes") && (o.PerConnectionBufferLimitBytes < 1 || o.PerConnectionBufferLimitBytes > math.MaxUint32) {
		v.errorf(s, p+"perConnectionBufferLimitBytes", "%d is out of range; use 1-%d bytes (Envoy's default is 1048576)", o.PerConnectionBufferLimitBytes, uint32(math.MaxUint32))
	}
	if s.src.valid(p+"xffNumTrustedHops") && (o.XffNumTrustedHops < 0 || o.XffNumTrustedHops > math.MaxUint32) {
		v.errorf(s, p+"xffNumTrustedHops", "%d is out of range; use 0 or more", o.XffNumTrustedHops)
	}
	v.checkTimeoutOrOff(s, p+"idleTimeout", o.IdleTimeout)
	v.checkDuration(s, p+"requestTimeout", o.RequestTimeout)
	v.checkHardeningOptions(s, o)
}

// checkDuration checks a Go-style duration ("30s", "1m30s") that must be positive.
func (v *validator) checkDuration(s subject, field, d string) {
	if !s.src.valid(field) {
		return
	}
	parsed, err := time.ParseDuration(d)
	switch {
	case err != nil:
		v.errorf(s, field, "%q is not a duration; write it like \"30s\", \"1m30s\" or \"500ms\"", excerpt(d))
	case parsed <= 0:
		v.errorf(s, field, "duration %q must be positive; remove the field to keep the default", excerpt(d))
	case parsed%time.Millisecond != 0:
		v.errorf(s, field, "duration %q is finer than a millisecond, which Envoy does not honour; round it", excerpt(d))
	}
}

// Serves reports whether Gateway g serves VirtualService vs. Both sides may narrow the
// attachment and both must agree: a VirtualService that lists gateways attaches only to those,
// and a Gateway that lists or selects VirtualServices serves only those. A TCP Gateway serves
// none: it has no HTTP routing to attach them to; nor does one with httpsRedirect, which
// answers every request with a redirect.
func (g *Gateway) Serves(vs *VirtualService) bool {
	if g.Spec.Protocol == ProtocolTCP || g.Spec.Options != nil && g.Spec.Options.HTTPSRedirect {
		return false
	}
	if len(vs.Spec.Gateways) > 0 && !slices.Contains(vs.Spec.Gateways, g.Metadata.Name) {
		return false
	}
	sel := g.Spec.VirtualServiceSelector
	if len(g.Spec.VirtualServices) == 0 && sel == nil {
		return true
	}
	return slices.Contains(g.Spec.VirtualServices, vs.Metadata.Name) || sel.Matches(vs.Metadata.Labels)
}

// Matches reports whether labels hold every pair the selector asks for. A nil selector selects
// nothing; an empty matchLabels selects everything.
func (s *LabelSelector) Matches(labels map[string]string) bool {
	if s == nil {
		return false
	}
	for k, want := range s.MatchLabels {
		if got, ok := labels[k]; !ok || got != want {
			return false
		}
	}
	return true
}

// checkGatewayClashes rejects two Gateways that would listen on overlapping sockets: the same
// address and port, or a wildcard address and any address of its family on the same port.
// Envoy would fail to bind the second listener and reject the whole update.
func (v *validator) checkGatewayClashes(gateways []*Gateway) {
	type bound struct {
		gw   *Gateway
		addr netip.AddrPort
	}
	var seen []bound
	for _, g := range gateways {
		if !g.Source.valid("spec.bindPort") || !validPort(g.Spec.BindPort) {
			continue
		}
		// bindAddress is absent (defaulted) or was checked in checkGateway.
		if g.Source.has("spec.bindAddress") && !g.Source.valid("spec.bindAddress") {
			continue
		}
		ip, ok := parseIP(g.Spec.BindAddress)
		if !ok {
			continue
		}
		b := bound{g, netip.AddrPortFrom(ip, uint16(g.Spec.BindPort))}
		for _, prev := range seen {
			if !overlaps(b.addr, prev.addr) {
				continue
			}
			v.errorf(subject{KindGateway, g.Metadata.Name, &g.Source}, "spec.bindPort",
				"%s overlaps Gateway %q on %s (%s); use another bindPort or bindAddress",
				b.addr, prev.gw.Metadata.Name, prev.addr, prev.gw.Source.At("spec.bindPort"))
			break
		}
		seen = append(seen, b)
	}
}

func overlaps(a, b netip.AddrPort) bool {
	if a.Port() != b.Port() || a.Addr().Is4() != b.Addr().Is4() {
		return false
	}
	return a.Addr() == b.Addr() || a.Addr().IsUnspecified() || b.Addr().IsUnspecified()
}
