package config

import (
	"fmt"
	"slices"
	"strings"
)

// The compression algorithms Envoy's official build carries, by their Content-Encoding name.
const (
	CompressionGzip   = "gzip"
	CompressionBrotli = "br"
	CompressionZstd   = "zstd"
)

// DefaultCompressionMinContentLength is the smallest response compressed by default: below a
// kilobyte the bytes saved rarely pay for the CPU spent and the framing added.
const DefaultCompressionMinContentLength = 1024

// DefaultCompressionContentTypes are the media types compressed by default: text formats that
// compress well. Images, video and archives are compressed already.
var DefaultCompressionContentTypes = []string{
	"application/javascript", "application/json", "application/problem+json", "application/xml",
	"image/svg+xml", "text/css", "text/html", "text/javascript", "text/plain", "text/xml",
}

// Compression compresses responses for clients that accept it (Accept-Encoding). A Gateway's
// applies to every VirtualService it serves; a VirtualService's or route's replaces it as a
// whole. Responses that already have a Content-Encoding are left alone, and compressed ones
// get "Vary: Accept-Encoding".
type Compression struct {
	// Disabled turns off the compression a VirtualService (for a route) or Gateway (for a
	// VirtualService) enables; no other field may be set with it.
	Disabled bool `yaml:"disabled,omitempty"`
	// Algorithms are the encodings offered: gzip, br (brotli) and zstd. When a client accepts
	// several equally, the first listed wins. Default [gzip].
	Algorithms []string `yaml:"algorithms,omitempty"`
	// MinContentLength is the smallest Content-Length compressed, in bytes; responses without
	// a Content-Length (streamed) are compressed whatever their size. Default 1024.
	MinContentLength int `yaml:"minContentLength,omitempty"`
	// ContentTypes are the media types compressed (parameters such as charset are ignored).
	// Default: JSON, JavaScript, CSS, HTML, plain text, XML and SVG.
	ContentTypes []string `yaml:"contentTypes,omitempty"`
}

// EffectiveAlgorithms applies the default of Algorithms.
func (c *Compression) EffectiveAlgorithms() []string {
	if len(c.Algorithms) == 0 {
		return []string{CompressionGzip}
	}
	return c.Algorithms
}

// EffectiveMinContentLength applies the default of MinContentLength.
func (c *Compression) EffectiveMinContentLength() int {
	if c.MinContentLength == 0 {
		return DefaultCompressionMinContentLength
	}
	return c.MinContentLength
}

// EffectiveContentTypes applies the default of ContentTypes.
func (c *Compression) EffectiveContentTypes() []string {
	if len(c.ContentTypes) == 0 {
		return DefaultCompressionContentTypes
	}
	return c.ContentTypes
}

// CompressionFor is the compression a VirtualService served by gw applies to its routes (nil:
// none): its own, or else the Gateway's.
func CompressionFor(gw *Gateway, vs *VirtualService) *Compression {
	c := vs.Spec.Compression
	if c == nil {
		c = gw.Spec.Compression
	}
	if c == nil || c.Disabled {
		return nil
	}
	return c
}

// checkCompression checks a compression block at p; turnsOff says whether disabled means
// something there (it has a wider block to turn off).
func (v *validator) checkCompression(s subject, p string, c *Compression, turnsOff bool) {
	if c == nil || !s.src.valid(p) {
		return
	}
	if s.src.valid(p + ".disabled") {
		switch {
		case !c.Disabled:
			v.errorf(s, p+".disabled", "disabled: false is the default; remove it")
		case !turnsOff:
			v.errorf(s, p+".disabled", "there is no wider compression to turn off here; remove the compression block")
		case len(c.Algorithms) > 0 || c.MinContentLength != 0 || len(c.ContentTypes) > 0:
			v.errorf(s, p+".disabled", "disabled: true turns compression off; remove the other fields or disabled")
		}
	}
	seen := map[string]bool{}
	for i, a := range c.Algorithms {
		f := fmt.Sprintf("%s.algorithms[%d]", p, i)
		switch {
		case !s.src.valid(f):
		case a != CompressionGzip && a != CompressionBrotli && a != CompressionZstd:
			v.errorf(s, f, "algorithm %q is not supported; use %s, %s or %s", excerpt(a), CompressionGzip, CompressionBrotli, CompressionZstd)
		case seen[a]:
			v.errorf(s, f, "algorithm %q is listed more than once; remove the repeat", a)
		}
		seen[a] = true
	}
	if s.src.valid(p+".minContentLength") && c.MinContentLength < 0 {
		v.errorf(s, p+".minContentLength", "minContentLength %d is negative; use a size in bytes, such as 1024", c.MinContentLength)
	}
	for i, t := range c.ContentTypes {
		f := fmt.Sprintf("%s.contentTypes[%d]", p, i)
		if !s.src.valid(f) {
			continue
		}
		typ, sub, ok := strings.Cut(t, "/")
		if !ok || typ == "" || sub == "" || strings.ContainsAny(t, " ;,\t\r\n") {
			v.errorf(s, f, "%q is not a media type; use one such as application/json, without parameters", excerpt(t))
		} else if slices.Contains(c.ContentTypes[:i], t) {
			v.errorf(s, f, "content type %q is listed more than once; remove the repeat", t)
		}
	}
}

// checkGatewayCompression checks a Gateway's spec.compression.
func (v *validator) checkGatewayCompression(s subject, g *Gateway) {
	if g.Spec.Compression == nil || !s.src.valid("spec.compression") {
		return
	}
	if g.Spec.Protocol == ProtocolTCP {
		v.errorf(s, "spec.compression", "a TCP Gateway does not see HTTP responses; remove compression or use protocol HTTP or HTTPS")
		return
	}
	v.checkCompression(s, "spec.compression", g.Spec.Compression, false)
}
