package config

import "net/netip"

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
