package config

import (
	"math"
	"slices"
	"strings"
	"time"
)

// The safe defaults of every HTTP and HTTPS Gateway, after Envoy's edge proxy best practices.
// Each one is applied when the Gateway's options leave the field out, and each can be changed
// or turned off there; docs/security.md lists them with the reason for each.
const (
	DefaultPerConnectionBufferLimitBytes = 32 << 10
	DefaultUseRemoteAddress              = true
	DefaultNormalizePath                 = true
	DefaultMergeSlashes                  = true
	DefaultEscapedSlashesAction          = EscapedSlashesUnescapeAndRedirect
	DefaultHeadersWithUnderscoresAction  = UnderscoresRejectRequest
	DefaultRequestHeadersTimeout         = 10 * time.Second
	DefaultStreamIdleTimeout             = 5 * time.Minute
	DefaultIdleTimeout                   = time.Hour
	DefaultHTTP2MaxConcurrentStreams     = 100
	DefaultHTTP2InitialStreamWindowSize  = 64 << 10
	DefaultHTTP2InitialConnWindowSize    = 1 << 20
)

// What a Gateway does with a request whose path holds an escaped slash (%2F or %5C), which
// backends may decode differently from Envoy's route matching.
const (
	EscapedSlashesUnescapeAndRedirect = "UNESCAPE_AND_REDIRECT"
	EscapedSlashesUnescapeAndForward  = "UNESCAPE_AND_FORWARD"
	EscapedSlashesRejectRequest       = "REJECT_REQUEST"
	EscapedSlashesKeepUnchanged       = "KEEP_UNCHANGED"
)

// EscapedSlashesActions are the values spec.options.escapedSlashesAction accepts.
var EscapedSlashesActions = []string{EscapedSlashesUnescapeAndRedirect, EscapedSlashesUnescapeAndForward,
	EscapedSlashesRejectRequest, EscapedSlashesKeepUnchanged}

// What a Gateway does with a request header whose name holds an underscore. Backends that map
// headers to CGI-style variables read x_user and x-user as one name, so a client could smuggle a
// header past a rule written for the other spelling.
const (
	UnderscoresRejectRequest = "REJECT_REQUEST"
	UnderscoresDropHeader    = "DROP_HEADER"
	UnderscoresAllow         = "ALLOW"
)

// HeadersWithUnderscoresActions are the values spec.options.headersWithUnderscoresAction accepts.
var HeadersWithUnderscoresActions = []string{UnderscoresRejectRequest, UnderscoresDropHeader, UnderscoresAllow}

// HTTP2Options bound what one HTTP/2 client connection may ask of a Gateway. Absent fields keep
// Portico's defaults (see docs/security.md).
type HTTP2Options struct {
	// MaxConcurrentStreams is how many requests one connection may have open at once. Default 100.
	MaxConcurrentStreams int `yaml:"maxConcurrentStreams,omitempty"`
	// InitialStreamWindowSize is each stream's flow-control window in bytes (65535 or more),
	// which bounds how much Envoy buffers per request. Default 65536.
	InitialStreamWindowSize int `yaml:"initialStreamWindowSize,omitempty"`
	// InitialConnectionWindowSize is the whole connection's flow-control window in bytes
	// (65535 or more). Default 1048576.
	InitialConnectionWindowSize int `yaml:"initialConnectionWindowSize,omitempty"`
}

// http2WindowMin and http2WindowMax are the window sizes HTTP/2 (RFC 9113) and Envoy allow.
const (
	http2WindowMin = 65535
	http2WindowMax = math.MaxInt32
)

// Resolved returns the options with every absent field set to its safe default, the values a
// Gateway actually runs with. A nil receiver is a Gateway without options.
func (o *GatewayOptions) Resolved() GatewayOptions {
	var r GatewayOptions
	if o != nil {
		r = *o
	}
	if r.PerConnectionBufferLimitBytes == 0 {
		r.PerConnectionBufferLimitBytes = DefaultPerConnectionBufferLimitBytes
	}
	r.UseRemoteAddress = boolOr(r.UseRemoteAddress, DefaultUseRemoteAddress)
	r.NormalizePath = boolOr(r.NormalizePath, DefaultNormalizePath)
	r.MergeSlashes = boolOr(r.MergeSlashes, DefaultMergeSlashes)
	if r.EscapedSlashesAction == "" {
		r.EscapedSlashesAction = DefaultEscapedSlashesAction
	}
	if r.HeadersWithUnderscoresAction == "" {
		r.HeadersWithUnderscoresAction = DefaultHeadersWithUnderscoresAction
	}
	if r.RequestHeadersTimeout == "" {
		r.RequestHeadersTimeout = DefaultRequestHeadersTimeout.String()
	}
	if r.StreamIdleTimeout == "" {
		r.StreamIdleTimeout = DefaultStreamIdleTimeout.String()
	}
	if r.IdleTimeout == "" {
		r.IdleTimeout = DefaultIdleTimeout.String()
	}
	h2 := HTTP2Options{}
	if r.HTTP2 != nil {
		h2 = *r.HTTP2
	}
	if h2.MaxConcurrentStreams == 0 {
		h2.MaxConcurrentStreams = DefaultHTTP2MaxConcurrentStreams
	}
	if h2.InitialStreamWindowSize == 0 {
		h2.InitialStreamWindowSize = DefaultHTTP2InitialStreamWindowSize
	}
	if h2.InitialConnectionWindowSize == 0 {
		h2.InitialConnectionWindowSize = DefaultHTTP2InitialConnWindowSize
	}
	r.HTTP2 = &h2
	return r
}

func boolOr(b *bool, def bool) *bool {
	if b != nil {
		return b
	}
	return &def
}

// checkHardeningOptions checks the Gateway options that relax or tighten the safe defaults.
func (v *validator) checkHardeningOptions(s subject, o *GatewayOptions) {
	const p = "spec.options."
	v.checkEnum(s, p+"escapedSlashesAction", o.EscapedSlashesAction, EscapedSlashesActions)
	v.checkEnum(s, p+"headersWithUnderscoresAction", o.HeadersWithUnderscoresAction, HeadersWithUnderscoresActions)
	v.checkTimeoutOrOff(s, p+"requestHeadersTimeout", o.RequestHeadersTimeout)
	v.checkTimeoutOrOff(s, p+"streamIdleTimeout", o.StreamIdleTimeout)
	if s.src.valid(p+"maxConnections") && (o.MaxConnections < 1 || o.MaxConnections > math.MaxInt32) {
		v.errorf(s, p+"maxConnections", "%d connections is out of range; use 1-%d, or leave it out for no per-Gateway limit (the process-wide limit still applies)",
			o.MaxConnections, math.MaxInt32)
	}
	if h := o.HTTP2; h != nil && s.src.valid(p+"http2") {
		if s.src.valid(p+"http2.maxConcurrentStreams") && (h.MaxConcurrentStreams < 1 || h.MaxConcurrentStreams > math.MaxInt32) {
			v.errorf(s, p+"http2.maxConcurrentStreams", "%d streams is out of range; use 1-%d (default %d)",
				h.MaxConcurrentStreams, math.MaxInt32, DefaultHTTP2MaxConcurrentStreams)
		}
		windows := []struct {
			field string
			size  int
		}{{"initialStreamWindowSize", h.InitialStreamWindowSize}, {"initialConnectionWindowSize", h.InitialConnectionWindowSize}}
		for _, w := range windows {
			if f := p + "http2." + w.field; s.src.valid(f) && (w.size < http2WindowMin || w.size > http2WindowMax) {
				v.errorf(s, f, "%d bytes is out of range; HTTP/2 allows %d-%d", w.size, http2WindowMin, http2WindowMax)
			}
		}
	}
}

// checkEnum checks that field, when present, is one of allowed, spelled exactly.
func (v *validator) checkEnum(s subject, field, value string, allowed []string) {
	if !s.src.valid(field) || slices.Contains(allowed, value) {
		return
	}
	v.errorf(s, field, "unknown value %q; use one of %s%s", excerpt(value), strings.Join(allowed, ", "), didYouMean(value, allowed))
}

// checkTimeoutOrOff checks a duration for which "0s" turns the timeout off, as Envoy reads 0.
func (v *validator) checkTimeoutOrOff(s subject, field, d string) {
	if !s.src.valid(field) {
		return
	}
	switch parsed, err := time.ParseDuration(d); {
	case err == nil && parsed == 0:
	case err == nil && parsed < 0:
		v.errorf(s, field, "duration %q is negative; use a positive one, \"0s\" to turn the timeout off, or remove the field to keep the default", excerpt(d))
	default:
		v.checkDuration(s, field, d)
	}
}
