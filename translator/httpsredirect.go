package translator

import (
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/portico-gw/portico/config"
)

// gatewayRedirectHost is the one virtual host of an HTTP Gateway with httpsRedirect, nil for
// any other Gateway: every request, whatever its host, gets a redirect.
func gatewayRedirectHost(gw *config.Gateway) *routev3.VirtualHost {
	o := gw.Spec.Options
	if gw.Spec.Protocol != config.ProtocolHTTP || o == nil || !o.HTTPSRedirect {
		return nil
	}
	return httpsRedirectHost("https-redirect", []string{"*"}, o.HTTPSRedirectPort)
}

// redirectsToHTTPS reports whether vs, served on gw, only redirects to https: it asks to, and
// the request came over plain HTTP. On an HTTPS Gateway the same VirtualService serves as usual.
func redirectsToHTTPS(gw *config.Gateway, vs *config.VirtualService) bool {
	o := vs.Spec.Options
	return gw.Spec.Protocol == config.ProtocolHTTP && o != nil && o.HTTPSRedirect
}

// httpsRedirectHost answers every request for domains with a 301 to the same host, path and
// query over https, on port (0: the standard 443, named in the Location all the same). It replaces the VirtualService's own virtual
// host on plain HTTP, routes, rate limits and authentication included: nothing is served before
// the client has come back over TLS.
func httpsRedirectHost(name string, domains []string, port int) *routev3.VirtualHost {
	redirect := &routev3.RedirectAction{
		SchemeRewriteSpecifier: &routev3.RedirectAction_HttpsRedirect{HttpsRedirect: true},
		ResponseCode:           routev3.RedirectAction_MOVED_PERMANENTLY,
	}
	// Always explicit: left unset, Envoy keeps a port the client sent in its Host header
	// (unless it is 80), which would send the client to the plain HTTP port over TLS.
	if port == 0 {
		port = config.DefaultHTTPSPort
	}
	redirect.PortRedirect = uint32(port)
	return &routev3.VirtualHost{
		Name:    name,
		Domains: append([]string(nil), domains...),
		Routes: []*routev3.Route{{
			Name:   "https-redirect",
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
			Action: &routev3.Route_Redirect{Redirect: redirect},
		}},
	}
}
