package config

// APIVersion is the only apiVersion this release of Portico reads.
const APIVersion = "portico.dev/v1"

// The kinds of document Portico reads.
const (
	KindGateway        = "Gateway"
	KindVirtualService = "VirtualService"
	KindRouteTable     = "RouteTable"
	KindUpstream       = "Upstream"
)

// Config is one complete, validated configuration snapshot: everything read from the user's
// files at one moment. It is built by Load and never mutated afterwards; the translator reads it.
type Config struct {
	Gateways        []*Gateway
	VirtualServices []*VirtualService
	RouteTables     []*RouteTable
	Upstreams       []*Upstream
	UpstreamGroups  []*UpstreamGroup
	Proxies         []*Proxy
	Secrets         []*Secret
	// GatewayAPI lists the Kubernetes Gateway API documents read and what each became.
	GatewayAPI []*GatewayAPIResource

	// Warnings are findings that do not stop the configuration from being served, such as an
	// unreachable route. Load has already sorted them by position.
	Warnings Diagnostics

	// heldBack lists the resources of the files that isolation leaves out without a previous
	// version to serve instead, so that references to them are worded as such.
	heldBack map[ResourceRef]bool
}

// Metadata names a resource. Names are unique per kind.
type Metadata struct {
	Name string `yaml:"name"`
	// Labels are Kubernetes-style key/value pairs that selectors match.
	Labels map[string]string `yaml:"labels,omitempty"`
}

// LabelSelector selects resources whose labels include every pair of MatchLabels.
type LabelSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// Gateway is a listener: an address and port where Envoy accepts traffic.
type Gateway struct {
	Metadata Metadata    `yaml:"metadata"`
	Spec     GatewaySpec `yaml:"spec"`
	Source   Source      `yaml:"-"`
}

// The protocols a Gateway can speak.
const (
	ProtocolHTTP = "HTTP"
	ProtocolTCP  = "TCP"
)

// GatewaySpec is the body of a Gateway.
type GatewaySpec struct {
	// BindAddress is the IP address to listen on. Default 0.0.0.0.
	BindAddress string `yaml:"bindAddress,omitempty"`
	// BindPort is the TCP port to listen on (1-65535). Required.
	BindPort int `yaml:"bindPort"`
	// Protocol is what the listener speaks: HTTP (the default), HTTPS (see TLS) or TCP (see TCP).
	Protocol string `yaml:"protocol,omitempty"`
	// VirtualServices names the VirtualServices this Gateway serves. With neither this nor
	// VirtualServiceSelector, the Gateway serves every VirtualService that does not exclude it.
	VirtualServices []string `yaml:"virtualServices,omitempty"`
	// VirtualServiceSelector selects VirtualServices by label, in addition to VirtualServices.
	VirtualServiceSelector *LabelSelector `yaml:"virtualServiceSelector,omitempty"`
	// Options tune the listener's HTTP connection handling.
	Options *GatewayOptions `yaml:"options,omitempty"`
	// RateLimit limits the whole Gateway and chooses where global limits count.
	RateLimit *GatewayRateLimit `yaml:"rateLimit,omitempty"`
	// AccessLog writes a JSON line per request; see docs/observability.md. Default: none.
	AccessLog *AccessLog `yaml:"accessLog,omitempty"`
	// Tracing sends spans to an OpenTelemetry collector; see docs/observability.md.
	Tracing *Tracing `yaml:"tracing,omitempty"`
	// TLS holds an HTTPS Gateway's certificates; required when protocol is HTTPS, forbidden otherwise.
	TLS *GatewayTLS `yaml:"tls,omitempty"`
	// TCP proxies raw TCP to one Upstream; required when protocol is TCP, forbidden otherwise.
	TCP *TCPProxy `yaml:"tcp,omitempty"`
	// Compression compresses responses of every VirtualService served; see Compression.
	Compression *Compression `yaml:"compression,omitempty"`
}

// GatewayOptions tune a Gateway's HTTP connection handling. Absent fields keep Portico's safe
// defaults (docs/security.md), which follow Envoy's edge proxy best practices.
type GatewayOptions struct {
	// PerConnectionBufferLimitBytes bounds the read and write buffers of each connection. Default 32768.
	PerConnectionBufferLimitBytes int `yaml:"perConnectionBufferLimitBytes,omitempty"`
	// UseRemoteAddress makes the peer's address the client address (x-forwarded-for is
	// appended to, not trusted), which an edge gateway wants. Default true.
	UseRemoteAddress *bool `yaml:"useRemoteAddress,omitempty"`
	// XffNumTrustedHops is how many x-forwarded-for entries from the right are trusted proxies
	// (load balancers in front of Portico); the entry left of them is the client address. Default 0.
	XffNumTrustedHops int `yaml:"xffNumTrustedHops,omitempty"`
	// IdleTimeout closes a connection without active requests after this long ("1m30s"); "0s" never. Default 1h.
	IdleTimeout string `yaml:"idleTimeout,omitempty"`
	// RequestHeadersTimeout bounds receiving a request's headers ("10s"); "0s" never. Default 10s.
	RequestHeadersTimeout string `yaml:"requestHeadersTimeout,omitempty"`
	// StreamIdleTimeout ends a request that sends or receives nothing for this long ("5m"); "0s" never. Default 5m.
	StreamIdleTimeout string `yaml:"streamIdleTimeout,omitempty"`
	// NormalizePath resolves "." and ".." segments (RFC 3986) before routing. Default true.
	NormalizePath *bool `yaml:"normalizePath,omitempty"`
	// MergeSlashes turns "//" into "/" in paths before routing. Default true.
	MergeSlashes *bool `yaml:"mergeSlashes,omitempty"`
	// EscapedSlashesAction handles %2F and %5C in paths: UNESCAPE_AND_REDIRECT (default),
	// UNESCAPE_AND_FORWARD, REJECT_REQUEST or KEEP_UNCHANGED.
	EscapedSlashesAction string `yaml:"escapedSlashesAction,omitempty"`
	// HeadersWithUnderscoresAction handles header names with "_": REJECT_REQUEST (default, 400),
	// DROP_HEADER or ALLOW.
	HeadersWithUnderscoresAction string `yaml:"headersWithUnderscoresAction,omitempty"`
	// HTTP2 bounds the streams and flow-control windows of HTTP/2 clients.
	HTTP2 *HTTP2Options `yaml:"http2,omitempty"`
	// MaxConnections caps this Gateway's open client connections; more are closed at once. Default: no per-Gateway cap.
	MaxConnections int `yaml:"maxConnections,omitempty"`
	// PreserveExternalRequestID keeps the x-request-id a client sends; by default Envoy replaces
	// it with its own, so a client cannot choose the ids in logs and traces.
	PreserveExternalRequestID bool `yaml:"preserveExternalRequestID,omitempty"`
	// RequestTimeout bounds receiving one whole request ("30s").
	RequestTimeout string `yaml:"requestTimeout,omitempty"`
	// WebSocket allows WebSocket upgrades on every route; a route's own websocket option wins.
	WebSocket bool `yaml:"websocket,omitempty"`
	// HTTPSRedirect answers every request on this HTTP Gateway with a 301 to the same URL over https.
	HTTPSRedirect bool `yaml:"httpsRedirect,omitempty"`
	// HTTPSRedirectPort is the port the redirect names. Default 443, left out of the URL.
	HTTPSRedirectPort int `yaml:"httpsRedirectPort,omitempty"`
}

// VirtualService is a set of domains and the routes that serve them.
type VirtualService struct {
	Metadata Metadata           `yaml:"metadata"`
	Spec     VirtualServiceSpec `yaml:"spec"`
	Source   Source             `yaml:"-"`
}

// VirtualServiceSpec is the body of a VirtualService.
type VirtualServiceSpec struct {
	// Domains are the Host header values this VirtualService answers. Default ["*"].
	Domains []string `yaml:"domains,omitempty"`
	// Gateways limits the Gateways this VirtualService attaches to. Empty: all Gateways.
	Gateways []string `yaml:"gateways,omitempty"`
	// Routes are matched in order; the first match wins.
	Routes []Route `yaml:"routes"`
	// Options apply to every request this VirtualService serves.
	Options *VirtualServiceOptions `yaml:"options,omitempty"`
	// RateLimit limits the requests of this VirtualService: one budget for all its routes.
	RateLimit *RateLimitPolicy `yaml:"rateLimit,omitempty"`
	// Security authenticates the requests of every route; see docs/security.md.
	Security *SecurityPolicy `yaml:"security,omitempty"`
	// Compression compresses responses of every route, replacing the Gateway's; see Compression.
	Compression *Compression `yaml:"compression,omitempty"`
	// Cache answers repeated requests of every route from Envoy's memory; see Cache.
	Cache *Cache `yaml:"cache,omitempty"`
}

// VirtualServiceOptions change requests and responses of a whole VirtualService.
type VirtualServiceOptions struct {
	// RequestHeadersToAdd are appended to the request before it goes upstream.
	RequestHeadersToAdd []HeaderValue `yaml:"requestHeadersToAdd,omitempty"`
	// RequestHeadersToRemove are removed from the request before it goes upstream.
	RequestHeadersToRemove []string `yaml:"requestHeadersToRemove,omitempty"`
	// ResponseHeadersToAdd are appended to the response before it goes to the client.
	ResponseHeadersToAdd []HeaderValue `yaml:"responseHeadersToAdd,omitempty"`
	// ResponseHeadersToRemove are removed from the response before it goes to the client.
	ResponseHeadersToRemove []string `yaml:"responseHeadersToRemove,omitempty"`
	// RequestHeadersToSet replace any value the request has before it goes upstream.
	RequestHeadersToSet []HeaderValue `yaml:"requestHeadersToSet,omitempty"`
	// ResponseHeadersToSet replace any value the response has before it goes to the client.
	ResponseHeadersToSet []HeaderValue `yaml:"responseHeadersToSet,omitempty"`
	// CORS answers cross-origin requests for every route that has no CORS policy of its own.
	CORS *CORSPolicy `yaml:"cors,omitempty"`
	// HTTPSRedirect answers requests that reach this VirtualService over plain HTTP with a 301 to the same URL over https.
	HTTPSRedirect bool `yaml:"httpsRedirect,omitempty"`
	// HTTPSRedirectPort is the port the redirect names. Default 443, left out of the URL.
	HTTPSRedirectPort int `yaml:"httpsRedirectPort,omitempty"`
}

// HeaderValue is one header to add.
type HeaderValue struct {
	Name  string `yaml:"name"`
	Value string `yaml:"value"`
}

// RouteTable is a list of routes that VirtualService (or other RouteTable) routes delegate to,
// so that a team can own the routes below one path prefix.
type RouteTable struct {
	Metadata Metadata       `yaml:"metadata"`
	Spec     RouteTableSpec `yaml:"spec"`
	Source   Source         `yaml:"-"`
}

// RouteTableSpec is the body of a RouteTable.
type RouteTableSpec struct {
	// Routes are matched in order; the first match wins. Every path must start with the
	// prefix of each route that delegates here.
	Routes []Route `yaml:"routes"`
}

// Route matches requests and says what to do with them: exactly one action is set.
type Route struct {
	// Name is optional; it names the route in Envoy's configuration, and a named route gets per-route statistics.
	Name  string     `yaml:"name,omitempty"`
	Match RouteMatch `yaml:"match"`

	// Upstream sends matching requests to the named Upstream.
	Upstream string `yaml:"upstream,omitempty"`
	// Destinations split matching requests between Upstreams by weight.
	Destinations []Destination `yaml:"destinations,omitempty"`
	// UpstreamGroup splits matching requests as the named UpstreamGroup says.
	UpstreamGroup string `yaml:"upstreamGroup,omitempty"`
	// Redirect answers matching requests with a redirect.
	Redirect *Redirect `yaml:"redirect,omitempty"`
	// DirectResponse answers matching requests from the gateway itself.
	DirectResponse *DirectResponse `yaml:"directResponse,omitempty"`
	// Delegate hands matching requests to the routes of one or more RouteTables.
	Delegate *Delegate `yaml:"delegate,omitempty"`
	// Lambda invokes an AWS Lambda function through an aws Upstream.
	Lambda *LambdaDestination `yaml:"lambda,omitempty"`
	// RateLimit limits the requests this route matches, in addition to its VirtualService's.
	RateLimit *RateLimitPolicy `yaml:"rateLimit,omitempty"`
	// Security refines or opts out of the VirtualService's security for this route.
	Security *RouteSecurity `yaml:"security,omitempty"`
	// Compression replaces or turns off ({disabled: true}) its VirtualService's compression.
	Compression *Compression `yaml:"compression,omitempty"`
	// Cache replaces or turns off ({disabled: true}) its VirtualService's cache.
	Cache *Cache `yaml:"cache,omitempty"`

	// Options change how the route forwards requests: rewrites, headers, timeouts, retries.
	Options *RouteOptions `yaml:"options,omitempty"`
}

// RouteMatch selects requests. Exactly one of Prefix, Exact and Regex is set; every other
// condition must hold too.
type RouteMatch struct {
	// Prefix matches paths that start with it (a plain string prefix, not path segments).
	Prefix string `yaml:"prefix,omitempty"`
	// Exact matches one path.
	Exact string `yaml:"exact,omitempty"`
	// Regex matches paths that the RE2 regular expression matches in full.
	Regex string `yaml:"regex,omitempty"`
	// Headers must all match.
	Headers []HeaderMatch `yaml:"headers,omitempty"`
	// QueryParameters must all match.
	QueryParameters []QueryParameterMatch `yaml:"queryParameters,omitempty"`
	// Methods lists the HTTP methods matched; empty means any.
	Methods []string `yaml:"methods,omitempty"`
	// CaseSensitive says whether Prefix and Exact compare case. Default true.
	CaseSensitive *bool `yaml:"caseSensitive,omitempty"`
	// GRPC matches only gRPC requests: those whose content-type starts with application/grpc.
	GRPC bool `yaml:"grpc,omitempty"`
}

// IsCaseSensitive applies the default of CaseSensitive.
func (m RouteMatch) IsCaseSensitive() bool { return m.CaseSensitive == nil || *m.CaseSensitive }

// HeaderMatch is a condition on one request header: exactly one of Exact, Regex and Present.
type HeaderMatch struct {
	Name    string `yaml:"name"`
	Exact   string `yaml:"exact,omitempty"`
	Regex   string `yaml:"regex,omitempty"`
	Present bool   `yaml:"present,omitempty"`
	// Invert matches the requests the condition would not match.
	Invert bool `yaml:"invert,omitempty"`
}

// QueryParameterMatch is a condition on one query parameter: exactly one of Exact, Regex and
// Present.
type QueryParameterMatch struct {
	Name    string `yaml:"name"`
	Exact   string `yaml:"exact,omitempty"`
	Regex   string `yaml:"regex,omitempty"`
	Present bool   `yaml:"present,omitempty"`
}

// Destination is one Upstream of a weighted split.
type Destination struct {
	Upstream string `yaml:"upstream"`
	// Weight is this destination's share relative to the others' (> 0).
	Weight int `yaml:"weight"`
}

// Redirect describes the redirect answered. Fields left out keep that part of the request URL.
type Redirect struct {
	HostRedirect string `yaml:"hostRedirect,omitempty"`
	// PathRedirect replaces the whole path.
	PathRedirect string `yaml:"pathRedirect,omitempty"`
	// PrefixRewrite replaces the matched prefix (prefix matches only).
	PrefixRewrite string `yaml:"prefixRewrite,omitempty"`
	// SchemeRedirect is "http" or "https".
	SchemeRedirect string `yaml:"schemeRedirect,omitempty"`
	// HTTPSRedirect is shorthand for schemeRedirect: https.
	HTTPSRedirect bool `yaml:"httpsRedirect,omitempty"`
	PortRedirect  int  `yaml:"portRedirect,omitempty"`
	// StripQuery drops the query string.
	StripQuery bool `yaml:"stripQuery,omitempty"`
	// ResponseCode is 301, 302, 303, 307 or 308. Default 301.
	ResponseCode int `yaml:"responseCode,omitempty"`
}

// DirectResponse is a fixed answer from the gateway.
type DirectResponse struct {
	Status int    `yaml:"status"`
	Body   string `yaml:"body,omitempty"`
	// Headers are set on the response, replacing a header of the same name (so content-type
	// replaces Envoy's default text/plain for a body).
	Headers []HeaderValue `yaml:"headers,omitempty"`
}

// Delegate names the RouteTables a route delegates to: exactly one of Name and Selector.
type Delegate struct {
	Name string `yaml:"name,omitempty"`
	// Selector selects RouteTables by label; their routes are taken in RouteTable name order.
	Selector *LabelSelector `yaml:"selector,omitempty"`
}

// Upstream is a named backend service.
type Upstream struct {
	Metadata Metadata     `yaml:"metadata"`
	Spec     UpstreamSpec `yaml:"spec"`
	Source   Source       `yaml:"-"`
}

// UpstreamSpec is the body of an Upstream. Exactly one discovery type is set.
type UpstreamSpec struct {
	// Static lists hosts by IP address.
	Static *StaticUpstream `yaml:"static,omitempty"`
	// DNS lists hosts by name; Envoy resolves them and follows changes.
	DNS *DNSUpstream `yaml:"dns,omitempty"`
	// Etcd discovers hosts at run time from the keys under a prefix in etcd, following changes.
	Etcd *EtcdUpstream `yaml:"etcd,omitempty"`
	// AWS is an AWS Lambda endpoint that routes invoke functions through (lambda action).
	AWS *AWSUpstream `yaml:"aws,omitempty"`

	// Options tune connections, load balancing, health checking and limits.
	Options *UpstreamOptions `yaml:"options,omitempty"`
}

// StaticUpstream lists the backend hosts by IP address.
type StaticUpstream struct {
	Hosts []Host `yaml:"hosts"`
}

// Host is one backend endpoint.
type Host struct {
	Address string `yaml:"address"`
	Port    int    `yaml:"port"`
	// Weight is the host's share of load balancing relative to the others'. Default 1.
	Weight int `yaml:"weight,omitempty"`
}

// The address families a DNS Upstream can resolve.
const (
	LookupFamilyV4   = "V4"
	LookupFamilyV6   = "V6"
	LookupFamilyAuto = "AUTO"
)

// DNSUpstream lists backend hosts by DNS name.
type DNSUpstream struct {
	Hosts []DNSHost `yaml:"hosts"`
	// LookupFamily is V4, V6 or AUTO (IPv6 if the name has any, else IPv4). Default AUTO.
	LookupFamily string `yaml:"lookupFamily,omitempty"`
	// Resolution is strict (default: every address the names resolve to is a host) or logical
	// (one host name; Envoy connects to the first address it resolves to, for large
	// DNS-balanced services whose addresses rotate).
	Resolution string `yaml:"resolution,omitempty"`
}

// DNSHost is one backend found through DNS.
type DNSHost struct {
	Hostname string `yaml:"hostname"`
	Port     int    `yaml:"port"`
	// Weight is the host's share of load balancing relative to the others'. Default 1.
	Weight int `yaml:"weight,omitempty"`
}
