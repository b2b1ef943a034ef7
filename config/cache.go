package config

import "fmt"

// Cache keeps responses in Envoy's memory and answers later requests for them without asking
// the upstream, for as long as the responses' Cache-Control or Expires allow (RFC 9111, as a
// shared cache). Only GET requests without Authorization or conditional headers are looked up;
// responses with a Vary header are not cached. Envoy's in-memory cache has no size limit: see
// docs/security.md before enabling it.
type Cache struct {
	// Disabled turns off, for a route, the cache its VirtualService enables.
	Disabled bool `yaml:"disabled,omitempty"`
}

// checkCache checks a cache block at p; turnsOff says whether disabled means something there.
func (v *validator) checkCache(s subject, p string, c *Cache, turnsOff bool) {
	if c == nil || !s.src.valid(p) {
		return
	}
	if s.src.valid(p + ".disabled") {
		switch {
		case !c.Disabled:
			v.errorf(s, p+".disabled", "disabled: false is the default; remove it")
		case !turnsOff:
			v.errorf(s, p+".disabled", "there is no wider cache to turn off here; remove the cache block")
		}
	}
}

// checkRouteResponsePolicies checks the compression and cache of the route at p.
func (v *validator) checkRouteResponsePolicies(s subject, p string, r *Route) {
	v.checkCompression(s, p+".compression", r.Compression, true)
	v.checkCache(s, p+".cache", r.Cache, true)
	if c := r.Cache; c != nil && !c.Disabled && s.src.valid(p+".cache") && r.NeverCached() {
		v.errorf(s, p+".cache", "a route that redirects, answers directly or invokes Lambda is never cached (Envoy's cache would answer 404 or skip the Lambda signing); remove cache")
	}
}

// NeverCached says whether the route's action keeps it out of the cache: Envoy's cache filter
// answers a request without an Upstream with a 404, and fetches cacheable requests past the
// filters after it, the Lambda filter that signs invocations among them.
func (r *Route) NeverCached() bool {
	return r.Redirect != nil || r.DirectResponse != nil || r.Lambda != nil
}

// checkCacheBypass refuses a cache on routes whose route configuration changes requests or
// responses. Envoy 1.40's cache filter fetches a cacheable request on its own stream straight to
// the route's Upstream, past the router, so path and host rewrites and header changes of the
// route and its VirtualService would silently not apply to it; the removal of a client-sent
// identity header, done the same way, would not either.
func (v *validator) checkCacheBypass(cfg *Config) {
	ownsIdentity := cfg.UsesAuthentication()
	seen := map[*Route]bool{}
	for _, vs := range cfg.VirtualServices {
		if !vs.Source.valid("spec") {
			continue
		}
		vsSubject := subject{KindVirtualService, vs.Metadata.Name, &vs.Source}
		vsCaches := vs.Spec.Cache != nil && !vs.Spec.Cache.Disabled
		if o := vs.Spec.Options; vsCaches && o != nil {
			for _, f := range changedHeaders(o.RequestHeadersToAdd, o.RequestHeadersToSet, o.RequestHeadersToRemove,
				o.ResponseHeadersToAdd, o.ResponseHeadersToSet, o.ResponseHeadersToRemove) {
				v.errorf(vsSubject, "spec.cache", "the cache sends cacheable requests past the route configuration, so spec.options.%s would not apply to them; move the header change to the upstream or remove the cache", f)
			}
		}
		visited := map[*RouteTable]bool{} // a delegation cycle is reported elsewhere
		var walk func(s subject, routes []Route)
		walk = func(s subject, routes []Route) {
			for i := range routes {
				r := &routes[i]
				p := fmt.Sprintf("spec.routes[%d]", i)
				if r.Delegate != nil {
					for _, rt := range cfg.RouteTablesFor(r.Delegate) {
						if visited[rt] {
							continue
						}
						visited[rt] = true
						walk(subject{KindRouteTable, rt.Metadata.Name, &rt.Source}, rt.Spec.Routes)
					}
					continue
				}
				caches := vsCaches
				if r.Cache != nil {
					caches, p = !r.Cache.Disabled, p+".cache"
				}
				if !caches || r.NeverCached() || seen[r] || !s.src.valid(p) {
					continue
				}
				seen[r] = true
				for _, f := range routeRequestChanges(r.Options) {
					v.errorf(s, p, "the cache of VirtualService %q sends cacheable requests past the route configuration, so options.%s would not apply to them; turn the cache off for this route (cache: {disabled: true}) or drop %s", vs.Metadata.Name, f, f)
				}
				if ownsIdentity && !RouteAuthentication(vs.Spec.Security, r.Security).Required() {
					v.errorf(s, p, "the cache of VirtualService %q sends cacheable requests past the route configuration, so the removal of a client-sent %s on routes without authentication would not apply to them; turn the cache off for this route (cache: {disabled: true}) or require authentication on it", vs.Metadata.Name, IdentityHeader)
				}
			}
		}
		walk(vsSubject, vs.Spec.Routes)
	}
}

// changedHeaders names the header fields that are set, in the order request add, set, remove,
// response add, set, remove.
func changedHeaders(reqAdd, reqSet []HeaderValue, reqRemove []string, respAdd, respSet []HeaderValue, respRemove []string) []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"requestHeadersToAdd", len(reqAdd) > 0}, {"requestHeadersToSet", len(reqSet) > 0}, {"requestHeadersToRemove", len(reqRemove) > 0},
		{"responseHeadersToAdd", len(respAdd) > 0}, {"responseHeadersToSet", len(respSet) > 0}, {"responseHeadersToRemove", len(respRemove) > 0},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

// routeRequestChanges names the route options that the route configuration applies to a
// request or its response.
func routeRequestChanges(o *RouteOptions) []string {
	if o == nil {
		return nil
	}
	out := changedHeaders(o.RequestHeadersToAdd, o.RequestHeadersToSet, o.RequestHeadersToRemove,
		o.ResponseHeadersToAdd, o.ResponseHeadersToSet, o.ResponseHeadersToRemove)
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"prefixRewrite", o.PrefixRewrite != ""}, {"regexRewrite", o.RegexRewrite != nil}, {"hostRewrite", o.HostRewrite != ""},
		{"autoHostRewrite", o.AutoHostRewrite}, {"hostRewriteHeader", o.HostRewriteHeader != ""},
	} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}
