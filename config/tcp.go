package config

import (
	"fmt"
	"slices"
	"strings"
)

// TCPProxy is the body of a TCP Gateway: every connection it accepts is proxied, byte for
// byte, to one Upstream.
type TCPProxy struct {
	// Upstream names the Upstream that receives every connection. Required unless routes is set.
	Upstream string `yaml:"upstream,omitempty"`
	// Routes send TLS connections to Upstreams by SNI server name, without terminating TLS.
	// Set either routes or upstream.
	Routes []PassthroughRoute `yaml:"routes,omitempty"`
	// IdleTimeout closes a connection after this long without bytes in either direction
	// ("1h"). Default: Envoy's, one hour.
	IdleTimeout string `yaml:"idleTimeout,omitempty"`
	// RateLimit limits how fast this Gateway accepts new connections; Envoy closes the ones
	// over the limit before proxying them. Default: no limit.
	RateLimit *TCPRateLimit `yaml:"rateLimit,omitempty"`
}

// checkTCPGateway checks the parts of a Gateway that depend on it speaking TCP: spec.tcp goes
// with protocol TCP and only with it, and a TCP Gateway has no HTTP side, so it cannot name
// or select VirtualServices.
func (v *validator) checkTCPGateway(s subject, g *Gateway) {
	if g.Spec.Protocol != ProtocolTCP {
		if g.Source.has("spec.tcp") {
			v.errorf(s, "spec.tcp", "tcp is only for protocol %s; set protocol: %s or remove tcp", ProtocolTCP, ProtocolTCP)
		}
		return
	}
	if g.Source.has("spec.virtualServices") {
		v.errorf(s, "spec.virtualServices", "a TCP Gateway serves no VirtualServices; remove virtualServices or use protocol %s", ProtocolHTTP)
	}
	if g.Source.has("spec.virtualServiceSelector") {
		v.errorf(s, "spec.virtualServiceSelector", "a TCP Gateway serves no VirtualServices; remove virtualServiceSelector or use protocol %s", ProtocolHTTP)
	}
	for _, field := range []string{"spec.options", "spec.rateLimit", "spec.tracing"} {
		if g.Source.has(field) {
			v.errorf(s, field, "%s applies to HTTP only; a TCP Gateway cannot use it, remove it", field)
		}
	}
	t := g.Spec.TCP
	switch {
	case t == nil && g.Source.has("spec.tcp"):
		// The decoder has already reported why spec.tcp did not decode.
		return
	case g.Source.has("spec.tcp.routes"):
		if g.Source.has("spec.tcp.upstream") {
			v.errorf(s, "spec.tcp.upstream", "set only one of upstream and routes; routes send connections to Upstreams by server name")
		}
		if g.Source.valid("spec.tcp.routes") {
			v.checkPassthroughRoutes(s, t.Routes)
		}
	case t == nil || !g.Source.has("spec.tcp.upstream"):
		field := "spec.protocol"
		if g.Source.has("spec.tcp") {
			field = "spec.tcp"
		}
		v.errorf(s, field, "a TCP Gateway needs spec.tcp.upstream, the Upstream that receives its connections (%s)",
			definedList(KindUpstream, v.upstreamNames))
	case g.Source.valid("spec.tcp.upstream") && v.upstreams[t.Upstream] == nil:
		v.errorf(s, "spec.tcp.upstream", "%s", notDefined(KindUpstream, t.Upstream, v.upstreamNames))
	default:
		v.checkNotLambdaUpstream(s, "spec.tcp.upstream", t.Upstream)
	}
	if t != nil {
		v.checkDuration(s, "spec.tcp.idleTimeout", t.IdleTimeout)
		v.checkTCPRateLimit(s, t.RateLimit)
	}
}

// definedList words which resources of a kind exist, for an error about a missing reference.
func definedList(kind string, defined []string) string {
	if len(defined) == 0 {
		return fmt.Sprintf("no %ss are defined", kind)
	}
	return "defined: " + strings.Join(slices.Sorted(slices.Values(defined)), ", ")
}
