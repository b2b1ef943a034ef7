package config

import "fmt"

// HSTSPreloadMinMaxAge is the shortest maxAge browsers' preload lists accept: one year.
const HSTSPreloadMinMaxAge = 31536000

// HSTS makes an HTTPS Gateway send Strict-Transport-Security (RFC 6797) on every response:
// browsers that have seen it use only HTTPS for the host, for maxAge seconds, so a network
// attacker cannot downgrade them to plain HTTP.
type HSTS struct {
	// MaxAge is how long, in seconds, a browser keeps to HTTPS for the host after a response;
	// 31536000 is a year. 0 tells browsers to forget a policy they have.
	MaxAge int `yaml:"maxAge"`
	// IncludeSubDomains extends the policy to every subdomain of the host. Set it only when
	// every subdomain serves HTTPS.
	IncludeSubDomains bool `yaml:"includeSubDomains,omitempty"`
	// Preload asks browsers' preload lists to include the host (submitted separately); it needs
	// includeSubDomains and a maxAge of at least a year.
	Preload bool `yaml:"preload,omitempty"`
}

// Value is the Strict-Transport-Security header value.
func (h *HSTS) Value() string {
	v := fmt.Sprintf("max-age=%d", h.MaxAge)
	if h.IncludeSubDomains {
		v += "; includeSubDomains"
	}
	if h.Preload {
		v += "; preload"
	}
	return v
}

// checkHSTS checks an HTTPS Gateway's spec.tls.hsts.
func (v *validator) checkHSTS(s subject, h *HSTS) {
	const p = "spec.tls.hsts"
	if h == nil || !s.src.valid(p) {
		return
	}
	if s.src.valid(p+".maxAge") && h.MaxAge < 0 {
		v.errorf(s, p+".maxAge", "maxAge %d is negative; use seconds, such as 31536000 for a year (0 makes browsers forget the policy)", h.MaxAge)
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"includeSubDomains", h.IncludeSubDomains}, {"preload", h.Preload}} {
		if s.src.valid(p+"."+f.name) && !f.set {
			v.errorf(s, p+"."+f.name, "%s: false is the default; remove it", f.name)
		}
	}
	if !h.Preload || !s.src.valid(p+".preload") {
		return
	}
	if !h.IncludeSubDomains {
		v.errorf(s, p+".preload", "preload needs includeSubDomains: true (preload lists cover every subdomain)")
	}
	if s.src.valid(p+".maxAge") && h.MaxAge >= 0 && h.MaxAge < HSTSPreloadMinMaxAge {
		v.errorf(s, p+".preload", "preload needs maxAge of at least %d (a year); maxAge is %d", HSTSPreloadMinMaxAge, h.MaxAge)
	}
}
