package translator

import (
	"fmt"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cache/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	simplecachev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/cache/simple_http_cache/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/portico-gw/portico/config"
)

// cacheFilterName is the listener's one cache filter. Envoy 1.40 also has cache_v2, but its
// Vary allow list is not implemented there, so Portico uses the first cache filter.
const cacheFilterName = "envoy.filters.http.cache"

// usesCache says whether a VirtualService a Gateway serves, or one of their routes, caches.
func usesCache(cfg *config.Config, vss []*config.VirtualService) bool {
	used := false
	add := func(c *config.Cache) { used = used || (c != nil && !c.Disabled) }
	for _, vs := range vss {
		add(vs.Spec.Cache)
	}
	eachServedRoute(cfg, vss, func(r *config.Route) { add(r.Cache) })
	return used
}

// responseFilters are the filters that act on responses, in chain order: compression before
// the cache, so that the cache keeps upstream bodies as they came and each client gets the
// encoding it accepts, whether the response came from the cache or not.
func responseFilters(compression []*config.Compression, cache bool) ([]*hcmv3.HttpFilter, error) {
	out, err := compressionFilters(compression)
	if err != nil {
		return nil, fmt.Errorf("compression: %w", err)
	}
	if cache {
		f, err := cacheFilter()
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		out = append(out, f)
	}
	return out, nil
}

// cacheFilter builds the listener's cache filter, disabled until a virtual host or route
// enables it. It sits just before the router: Envoy sends the requests it looks up through no
// filter after it, and every filter before it (authentication, rate limits) still runs for
// cached responses.
func cacheFilter() (*hcmv3.HttpFilter, error) {
	store, err := anypb.New(&simplecachev3.SimpleHttpCacheConfig{})
	if err != nil {
		return nil, err
	}
	// No Vary header is allowed, so a response that varies is never cached: Envoy 1.40 crashes
	// (SIGSEGV) when it caches a response that varies on an allowed header, which any client
	// could trigger against a backend that sends "Vary: Accept-Encoding".
	a, err := anypb.New(&cachev3.CacheConfig{TypedConfig: store})
	if err != nil {
		return nil, err
	}
	return &hcmv3.HttpFilter{Name: cacheFilterName, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: a}, Disabled: true}, nil
}

// cacheVirtualHost enables the cache for the routes of a VirtualService that has one.
func cacheVirtualHost(vs *config.VirtualService, vh *routev3.VirtualHost) error {
	if c := vs.Spec.Cache; c != nil && !c.Disabled {
		return switchFilters(&vh.TypedPerFilterConfig, []string{cacheFilterName}, true)
	}
	return nil
}

// cacheRoute applies a route's own cache block: on, or off against its VirtualService's. The
// cache is off on routes whose action it would break (see config.Route.NeverCached).
func cacheRoute(vs *config.VirtualService, r *config.Route, er *routev3.Route) error {
	vsCaches := vs.Spec.Cache != nil && !vs.Spec.Cache.Disabled
	switch {
	case r.NeverCached():
		if vsCaches {
			return switchFilters(&er.TypedPerFilterConfig, []string{cacheFilterName}, false)
		}
		return nil
	case r.Cache == nil:
		return nil
	}
	return switchFilters(&er.TypedPerFilterConfig, []string{cacheFilterName}, !r.Cache.Disabled)
}

// responseVirtualHost turns on the compression and cache of a VirtualService.
func (b *routeBuilder) responseVirtualHost(vs *config.VirtualService, vh *routev3.VirtualHost) error {
	if err := compressionVirtualHost(b.gateway, vs, vh); err != nil {
		return fmt.Errorf("compression: %w", err)
	}
	if err := cacheVirtualHost(vs, vh); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}

// responseRoute applies a route's own compression and cache.
func (b *routeBuilder) responseRoute(r *config.Route, er *routev3.Route) error {
	if err := compressionRoute(b.gateway, b.current, r, er); err != nil {
		return fmt.Errorf("compression: %w", err)
	}
	if err := cacheRoute(b.current, r, er); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	return nil
}
