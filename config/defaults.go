package config

import "fmt"

// Defaults for fields the user may leave out. They are applied only when a field is absent, so
// that an explicit but empty value (`bindAddress: ""`) is still reported as a mistake.
const (
	DefaultBindAddress          = "0.0.0.0"
	DefaultProtocol             = ProtocolHTTP
	DefaultDomain               = "*"
	DefaultRedirectResponseCode = 301
	DefaultLookupFamily         = LookupFamilyAuto
	DefaultHostWeight           = 1
)

func applyDefaults(cfg *Config) {
	for _, g := range cfg.Gateways {
		if !g.Source.has("spec.bindAddress") {
			g.Spec.BindAddress = DefaultBindAddress
		}
		if !g.Source.has("spec.protocol") {
			g.Spec.Protocol = DefaultProtocol
		}
		tlsDefaults(g)
	}
	for _, s := range cfg.Secrets {
		secretDefaults(s)
	}
	for _, vs := range cfg.VirtualServices {
		if !vs.Source.has("spec.domains") {
			vs.Spec.Domains = []string{DefaultDomain}
		}
		routeDefaults(&vs.Source, vs.Spec.Routes)
		jwtDefaults(vs)
		oidcDefaults(vs)
	}
	for _, rt := range cfg.RouteTables {
		routeDefaults(&rt.Source, rt.Spec.Routes)
	}
	for _, u := range cfg.Upstreams {
		upstreamTLSDefaults(u)
		if st := u.Spec.Static; st != nil {
			for i := range st.Hosts {
				if !u.Source.has(fmt.Sprintf("spec.static.hosts[%d].weight", i)) {
					st.Hosts[i].Weight = DefaultHostWeight
				}
			}
		}
		if d := u.Spec.DNS; d != nil {
			if !u.Source.has("spec.dns.lookupFamily") {
				d.LookupFamily = DefaultLookupFamily
			}
			for i := range d.Hosts {
				if !u.Source.has(fmt.Sprintf("spec.dns.hosts[%d].weight", i)) {
					d.Hosts[i].Weight = DefaultHostWeight
				}
			}
		}
	}
}

func routeDefaults(src *Source, routes []Route) {
	for i := range routes {
		if rd := routes[i].Redirect; rd != nil && !src.has(fmt.Sprintf("spec.routes[%d].redirect.responseCode", i)) {
			rd.ResponseCode = DefaultRedirectResponseCode
		}
	}
}
