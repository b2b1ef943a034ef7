package config

import (
	"slices"
	"strings"
	"time"
)

// KindProxy is the document that sets the Envoy process's own options.
const KindProxy = "Proxy"

// Proxy sets options of the Envoy process itself rather than of the traffic it serves. At most
// one Proxy document may exist; its fields override portico run's flags of the same meaning.
// Changing them makes Portico replace Envoy by hot restart, which keeps connections open.
type Proxy struct {
	Metadata Metadata  `yaml:"metadata"`
	Spec     ProxySpec `yaml:"spec"`
	Source   Source    `yaml:"-"`
}

// ProxySpec is the body of a Proxy. Fields left out keep the value of the corresponding flag.
type ProxySpec struct {
	// Concurrency is the number of Envoy worker threads (1 or more); overrides --concurrency.
	Concurrency int `yaml:"concurrency,omitempty"`
	// LogLevel is Envoy's log level: trace, debug, info, warning, error, critical or off;
	// overrides --envoy-log-level.
	LogLevel string `yaml:"logLevel,omitempty"`
	// DrainTimeout bounds how long a stop or hot restart lets connections finish ("5s");
	// overrides --drain-timeout.
	DrainTimeout string `yaml:"drainTimeout,omitempty"`
}

// EnvoyLogLevels are the values Envoy's -l option accepts, from most to least verbose.
var EnvoyLogLevels = []string{"trace", "debug", "info", "warning", "error", "critical", "off"}

// ProxyDoc returns the configuration's Proxy document, or nil when there is none. A validated
// Config has at most one.
func (c *Config) ProxyDoc() *Proxy {
	if c == nil || len(c.Proxies) == 0 {
		return nil
	}
	return c.Proxies[0]
}

// DrainTimeoutDuration is the parsed DrainTimeout, 0 when it is not set. Validation has
// already rejected values that do not parse.
func (s ProxySpec) DrainTimeoutDuration() time.Duration {
	d, err := time.ParseDuration(s.DrainTimeout)
	if err != nil {
		return 0
	}
	return d
}

// checkProxies allows one Proxy document and checks its fields. A second one is an error at
// the second, naming the first, because which of two conflicting settings should win is the
// user's call.
func (v *validator) checkProxies(ps []*Proxy) {
	for i, p := range ps {
		s := subject{KindProxy, p.Metadata.Name, &p.Source}
		if i > 0 {
			v.errorf(s, "", "a second Proxy document; only one may exist (the first is at %s): merge them", ps[0].Source.Doc)
			continue
		}
		if p.Source.valid("metadata.name") && (len(p.Metadata.Name) > maxNameLen || !nameRE.MatchString(p.Metadata.Name)) {
			v.errorf(s, "metadata.name", "invalid name %q: use at most %d lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
				excerpt(p.Metadata.Name), maxNameLen)
		}
		if !p.Source.valid("spec") {
			continue
		}
		const sp = "spec."
		if p.Source.valid(sp+"concurrency") && p.Spec.Concurrency < 1 {
			v.errorf(s, sp+"concurrency", "%d worker threads: use 1 or more", p.Spec.Concurrency)
		}
		if p.Source.valid(sp+"logLevel") && !slices.Contains(EnvoyLogLevels, p.Spec.LogLevel) {
			v.errorf(s, sp+"logLevel", "unknown log level %q; use one of %s%s",
				excerpt(p.Spec.LogLevel), strings.Join(EnvoyLogLevels, ", "), didYouMean(p.Spec.LogLevel, EnvoyLogLevels))
		}
		v.checkDuration(s, sp+"drainTimeout", p.Spec.DrainTimeout)
	}
}
