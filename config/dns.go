package config

import (
	"slices"
	"strings"
)

// The ways a DNS Upstream turns its host names into endpoints.
const (
	// DNSResolutionStrict makes every address a name resolves to an endpoint.
	DNSResolutionStrict = "strict"
	// DNSResolutionLogical keeps one endpoint per name and connects to the first address the
	// name resolves to, so services behind DNS that returns many rotating addresses do not
	// churn the endpoint set.
	DNSResolutionLogical = "logical"
)

var dnsResolutions = []string{DNSResolutionStrict, DNSResolutionLogical}

// checkDNSResolution checks spec.dns.resolution; logical resolution follows exactly one
// name, so Envoy would reject a logical Upstream listing several hosts.
func (v *validator) checkDNSResolution(s subject, d *DNSUpstream) {
	const p = "spec.dns.resolution"
	if !s.src.has(p) || !s.src.valid(p) {
		return
	}
	if !slices.Contains(dnsResolutions, d.Resolution) {
		v.errorf(s, p, "unknown resolution %q; use one of %s%s",
			excerpt(d.Resolution), strings.Join(dnsResolutions, ", "), didYouMean(d.Resolution, dnsResolutions))
		return
	}
	if d.Resolution == DNSResolutionLogical && len(d.Hosts) > 1 {
		v.errorf(s, p, "logical resolution follows exactly one host name, but %d hosts are listed; use strict, or split the Upstream", len(d.Hosts))
	}
}
