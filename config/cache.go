package config

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
}
