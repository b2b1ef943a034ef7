package translator

import (
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	brotliv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/brotli/compressor/v3"
	gzipv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/gzip/compressor/v3"
	zstdv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/compression/zstd/compressor/v3"
	compressorv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/compressor/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-gw/portico/config"
)

// Envoy's compressor takes its settings (algorithm, minimum length, content types) from the
// listener, not from the route. A Gateway whose VirtualServices and routes ask for different
// settings therefore gets one set of compressor filters per distinct setting, all disabled on
// the listener and enabled on the virtual hosts and routes that use them. Each filter is named
// after its algorithm and a hash of its setting, so a virtual host or route names the filters
// it needs without any table shared with the listener.

// compressionLibraries are Envoy's compressor extensions by Content-Encoding name.
var compressionLibraries = map[string]struct {
	extension string
	cfg       func() proto.Message
}{
	config.CompressionGzip:   {"envoy.compression.gzip.compressor", func() proto.Message { return &gzipv3.Gzip{} }},
	config.CompressionBrotli: {"envoy.compression.brotli.compressor", func() proto.Message { return &brotliv3.Brotli{} }},
	config.CompressionZstd:   {"envoy.compression.zstd.compressor", func() proto.Message { return &zstdv3.Zstd{} }},
}

// compressionKey identifies a compression setting after defaults.
func compressionKey(c *config.Compression) string {
	return fmt.Sprintf("%s|%d|%s", strings.Join(c.EffectiveAlgorithms(), ","), c.EffectiveMinContentLength(),
		strings.Join(c.EffectiveContentTypes(), ","))
}

// compressionFilterNames names the compressor filters of c, one per algorithm in c's order.
func compressionFilterNames(c *config.Compression) []string {
	h := fnv.New32a()
	h.Write([]byte(compressionKey(c)))
	var names []string
	for _, a := range c.EffectiveAlgorithms() {
		names = append(names, fmt.Sprintf("portico.compression.%s.%08x", a, h.Sum32()))
	}
	return names
}

// compressionNeedsOf lists the distinct compression settings of the VirtualServices gw serves
// and of their routes (those of delegated RouteTables included), sorted by key.
func compressionNeedsOf(cfg *config.Config, gw *config.Gateway, vss []*config.VirtualService) []*config.Compression {
	byKey := map[string]*config.Compression{}
	add := func(c *config.Compression) {
		if c != nil && !c.Disabled {
			byKey[compressionKey(c)] = c
		}
	}
	for _, vs := range vss {
		add(config.CompressionFor(gw, vs))
	}
	eachServedRoute(cfg, vss, func(r *config.Route) { add(r.Compression) })
	keys := make([]string, 0, len(byKey))
	for k := range byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*config.Compression, len(keys))
	for i, k := range keys {
		out[i] = byKey[k]
	}
	return out
}

// compressionFilters builds the listener's compressor filters for settings, each disabled
// until a virtual host or route enables it.
func compressionFilters(settings []*config.Compression) ([]*hcmv3.HttpFilter, error) {
	var out []*hcmv3.HttpFilter
	for _, c := range settings {
		names := compressionFilterNames(c)
		for i, a := range c.EffectiveAlgorithms() {
			lib := compressionLibraries[a]
			if lib.cfg == nil {
				return nil, fmt.Errorf("algorithm %q cannot be translated", a)
			}
			libCfg, err := anypb.New(lib.cfg())
			if err != nil {
				return nil, err
			}
			filter, err := anypb.New(&compressorv3.Compressor{
				ResponseDirectionConfig: &compressorv3.Compressor_ResponseDirectionConfig{
					CommonConfig: &compressorv3.Compressor_CommonDirectionConfig{
						MinContentLength: wrapperspb.UInt32(uint32(c.EffectiveMinContentLength())),
						ContentType:      append([]string(nil), c.EffectiveContentTypes()...),
					},
					// A compressed body is not byte-identical to the upstream's, so a strong
					// ETag becomes weak (RFC 9110 8.8.1) rather than being dropped, which keeps
					// conditional requests working.
					WeakenEtagOnCompress: true,
				},
				CompressorLibrary: &corev3.TypedExtensionConfig{Name: lib.extension, TypedConfig: libCfg},
				// Envoy prefers this one when a client accepts several encodings equally, so
				// the user's first algorithm wins such ties.
				ChooseFirst: i == 0,
			})
			if err != nil {
				return nil, err
			}
			out = append(out, &hcmv3.HttpFilter{
				Name:       names[i],
				ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: filter},
				Disabled:   true,
			})
		}
	}
	return out, nil
}

// compressionVirtualHost enables the compression vs applies to its routes.
func compressionVirtualHost(gw *config.Gateway, vs *config.VirtualService, vh *routev3.VirtualHost) error {
	if c := config.CompressionFor(gw, vs); c != nil {
		return switchFilters(&vh.TypedPerFilterConfig, compressionFilterNames(c), true)
	}
	return nil
}

// compressionRoute applies a route's own compression: it turns off its VirtualService's
// filters, unless it uses the same ones, and turns on its own.
func compressionRoute(gw *config.Gateway, vs *config.VirtualService, r *config.Route, er *routev3.Route) error {
	if r.Compression == nil {
		return nil
	}
	var own []string
	if !r.Compression.Disabled {
		own = compressionFilterNames(r.Compression)
	}
	if c := config.CompressionFor(gw, vs); c != nil {
		var off []string
		for _, name := range compressionFilterNames(c) {
			if !slices.Contains(own, name) {
				off = append(off, name)
			}
		}
		if err := switchFilters(&er.TypedPerFilterConfig, off, false); err != nil {
			return err
		}
	}
	return switchFilters(&er.TypedPerFilterConfig, own, true)
}

// switchFilters enables or disables the named listener filters for a virtual host or route.
// An empty Any as the config is Envoy's way of enabling a filter that is disabled by default
// without giving it per-route settings.
func switchFilters(configs *map[string]*anypb.Any, names []string, on bool) error {
	for _, name := range names {
		fc := &routev3.FilterConfig{Disabled: true}
		if on {
			fc = &routev3.FilterConfig{Config: &anypb.Any{}}
		}
		if err := perFilterConfig(configs, name, fc); err != nil {
			return err
		}
	}
	return nil
}
