package config

// APIVersion is the only apiVersion this release of Portico reads.
const APIVersion = "portico.dev/v1"

// The kinds of document Portico reads.
const (
	KindGateway        = "Gateway"
	KindVirtualService = "VirtualService"
	KindUpstream       = "Upstream"
)

// Config is one complete, validated configuration snapshot: everything read from the user's
// files at one moment. It is built by Load and never mutated afterwards; the translator reads it.
type Config struct {
	Gateways        []*Gateway
	VirtualServices []*VirtualService
	Upstreams       []*Upstream

	// Warnings are findings that do not stop the configuration from being served, such as an
	// unreachable route. Load has already sorted them by position.
	Warnings Diagnostics
}

// Metadata names a resource. Names are unique per kind.
type Metadata struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels,omitempty"`
}

// Gateway is a listener: an address and port where Envoy accepts traffic.
type Gateway struct {
	Metadata Metadata    `yaml:"metadata"`
	Spec     GatewaySpec `yaml:"spec"`
	Source   Source      `yaml:"-"`
}

// GatewaySpec is the body of a Gateway.
type GatewaySpec struct {
	// BindAddress is the IP address to listen on. Default 0.0.0.0.
	BindAddress string `yaml:"bindAddress,omitempty"`
	// BindPort is the TCP port to listen on (1-65535). Required.
	BindPort int `yaml:"bindPort"`
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
}

// Route matches requests and says what to do with them: exactly one action is set.
type Route struct {
	// Name is optional; it names the route in Envoy's configuration and statistics.
	Name  string     `yaml:"name,omitempty"`
	Match RouteMatch `yaml:"match"`

	// Upstream sends matching requests to the named Upstream.
	Upstream string `yaml:"upstream,omitempty"`
	// DirectResponse answers matching requests from the gateway itself.
	DirectResponse *DirectResponse `yaml:"directResponse,omitempty"`
}

// RouteMatch selects requests by path. Exactly one of Prefix and Exact is set.
type RouteMatch struct {
	Prefix string `yaml:"prefix,omitempty"`
	Exact  string `yaml:"exact,omitempty"`
}

// DirectResponse is a fixed answer from the gateway.
type DirectResponse struct {
	Status int    `yaml:"status"`
	Body   string `yaml:"body,omitempty"`
}

// Upstream is a named backend service.
type Upstream struct {
	Metadata Metadata     `yaml:"metadata"`
	Spec     UpstreamSpec `yaml:"spec"`
	Source   Source       `yaml:"-"`
}

// UpstreamSpec is the body of an Upstream. Exactly one discovery type is set.
type UpstreamSpec struct {
	Static *StaticUpstream `yaml:"static,omitempty"`
}

// StaticUpstream lists the backend hosts by IP address.
type StaticUpstream struct {
	Hosts []Host `yaml:"hosts"`
}

// Host is one backend endpoint.
type Host struct {
	Address string `yaml:"address"`
	Port    int    `yaml:"port"`
}
