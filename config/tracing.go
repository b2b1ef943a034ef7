package config

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
)

// Tracing sends a span for every sampled request to an OpenTelemetry collector over OTLP/gRPC,
// and passes the trace context (W3C traceparent) on to the Upstream.
type Tracing struct {
	// Collector is the OTLP/gRPC collector's address, host:port, such as 127.0.0.1:4317.
	Collector string `yaml:"collector"`
	// ServiceName is the service.name of the spans. Default "portico".
	ServiceName string `yaml:"serviceName,omitempty"`
	// SamplingPercent is the share of requests traced that arrive without a sampling decision
	// of their own (0-100). Default 100.
	SamplingPercent *float64 `yaml:"samplingPercent,omitempty"`
	// Tags are attributes added to every span, such as env: production.
	Tags map[string]string `yaml:"tags,omitempty"`
}

// DefaultTracingServiceName is the service.name of spans when Tracing.ServiceName is empty.
const DefaultTracingServiceName = "portico"

func (v *validator) checkTracing(s subject, t *Tracing) {
	const p = "spec.tracing."
	if t == nil || !s.src.valid("spec.tracing") {
		return
	}
	if s.src.valid(p + "collector") {
		host, port, err := net.SplitHostPort(t.Collector)
		n, perr := strconv.Atoi(port)
		_, isIP := parseIP(host)
		switch {
		case t.Collector == "":
			v.errorf(s, p+"collector", "no collector; set the OTLP/gRPC collector's host:port, such as 127.0.0.1:4317")
		case err != nil || perr != nil || !validPort(n):
			v.errorf(s, p+"collector", "%q is not host:port; write it like 127.0.0.1:4317", excerpt(t.Collector))
		case !isIP && !validHostname(host):
			v.errorf(s, p+"collector", "%q is neither an IP address nor a host name", excerpt(host))
		}
	}
	if sp := t.SamplingPercent; sp != nil && s.src.valid(p+"samplingPercent") && (*sp < 0 || *sp > 100) {
		v.errorf(s, p+"samplingPercent", "%v is out of range; use 0 to 100", *sp)
	}
	for _, k := range slices.Sorted(maps.Keys(t.Tags)) {
		if k == "" {
			v.errorf(s, p+"tags", "a tag has an empty name; name it")
		} else if k == RouteTagName {
			v.errorf(s, fmt.Sprintf("%stags.%s", p, k), "tag %q is set by portico to the route's name; choose another name", k)
		}
	}
}

// RouteTagName is the span attribute carrying the route's name.
const RouteTagName = "portico.route"
