package config

import (
	"fmt"
)

// PassthroughRoute sends the TLS connections whose SNI server name it matches to one Upstream.
// The Gateway reads the name from the client's hello and never terminates TLS, so the Upstream
// sees the client's own handshake and presents its own certificate.
type PassthroughRoute struct {
	// ServerNames are the SNI names (such as db.example.com or *.example.com) this route takes.
	// A route without serverNames takes every other connection, including those without SNI;
	// at most one route can leave it out.
	ServerNames []string `yaml:"serverNames,omitempty"`
	// Upstream names the Upstream that receives the matched connections. Required.
	Upstream string `yaml:"upstream"`
}

// checkPassthroughRoutes checks spec.tcp.routes of a TCP Gateway: every route names a defined
// Upstream, a server name selects at most one route (Envoy would reject the listener otherwise),
// and at most one route is the default.
func (v *validator) checkPassthroughRoutes(s subject, routes []PassthroughRoute) {
	const p = "spec.tcp.routes"
	if len(routes) == 0 {
		v.errorf(s, p, "no routes; add one with serverNames and upstream, or use spec.tcp.upstream instead")
		return
	}
	sni := &sniChoice{what: "route", list: "routes", verb: "taken by", example: "db.example.com", owner: map[string]int{}}
	for i, r := range routes {
		rp := fmt.Sprintf("%s[%d]", p, i)
		if !s.src.valid(rp) {
			continue
		}
		// The decoder reports a missing upstream, as upstream is a required field.
		if s.src.valid(rp+".upstream") && v.upstreams[r.Upstream] == nil {
			v.errorf(s, rp+".upstream", "%s", notDefined(KindUpstream, r.Upstream, v.upstreamNames))
		}
		v.checkNotLambdaUpstream(s, rp+".upstream", r.Upstream)
		if s.src.has(rp+".serverNames") && len(r.ServerNames) == 0 {
			v.errorf(s, rp+".serverNames", "empty list; leave serverNames out to make this the default route")
			continue
		}
		v.checkSNIChoice(s, rp, i, r.ServerNames, sni)
	}
}
