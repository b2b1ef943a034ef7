package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// JWTPolicy checks JSON Web Tokens on the routes of a VirtualService. A token is accepted when
// one of the providers verifies it: its signature against the provider's keys, its issuer,
// audience, expiry and not-before time.
type JWTPolicy struct {
	// Providers are the token issuers accepted. Required, at least one.
	Providers []JWTProvider `yaml:"providers"`
	// Required makes every route of the VirtualService answer 401 to a request without a valid
	// token. Default true. With false a route accepts requests without a token, still rejects
	// an invalid one, and copies the claims of a valid one; a route opts in with
	// security.jwt.required: true.
	Required *bool `yaml:"required,omitempty"`
}

// JWTProvider is one issuer of tokens and the keys that verify them.
type JWTProvider struct {
	// Name identifies the provider in Envoy's statistics and configuration; unique within the
	// VirtualService.
	Name string `yaml:"name"`
	// Issuer is the http(s) URL a token's iss claim must equal.
	Issuer string `yaml:"issuer"`
	// Audiences are accepted values of a token's aud claim: a token must name at least one.
	// Empty: any audience (or none) is accepted.
	Audiences []string `yaml:"audiences,omitempty"`
	// JWKS holds the public keys that sign the tokens: exactly one of file and remote.
	JWKS JWKSSource `yaml:"jwks"`
	// TokenFrom says where the token is read. Default: the Authorization header with the
	// "Bearer " prefix, nowhere else.
	TokenFrom *TokenSource `yaml:"tokenFrom,omitempty"`
	// ClaimToHeaders copy claims of a verified token into request headers for the upstream.
	// The same headers sent by a client are removed on every route of the VirtualService.
	ClaimToHeaders []ClaimToHeader `yaml:"claimToHeaders,omitempty"`
	// ForwardToken keeps the token in the request sent upstream. Default false: the header or
	// query parameter that carried it is removed once it is verified. A token read from a
	// cookie always goes upstream: Envoy does not edit the Cookie header.
	ForwardToken bool `yaml:"forwardToken,omitempty"`
}

// JWKSSource is where a provider's JSON Web Key Set comes from: exactly one of File and Remote.
type JWKSSource struct {
	// File is a JWKS JSON file, read and checked when the configuration loads; a relative path
	// is relative to the configuration file. Its directory is watched, so replacing the file
	// reloads the configuration with the new keys.
	File string `yaml:"file,omitempty"`
	// Remote fetches the JWKS over HTTP(S) through an Upstream and caches it.
	Remote *RemoteJWKS `yaml:"remote,omitempty"`

	// keys is the content of File as validation read and checked it.
	keys string
}

// Keys is the content of File as it was checked when the configuration loaded: Envoy is given
// exactly the keys that were validated, even if the file has changed since.
func (j *JWKSSource) Keys() string { return j.keys }

// RemoteJWKS is a JWKS served at an http(s) URL, fetched by Envoy through an Upstream.
type RemoteJWKS struct {
	// URL is the JWKS address, such as https://idp.example.com/.well-known/jwks.json. Its host
	// is sent as the Host header; the connection goes to the Upstream's hosts.
	URL string `yaml:"url"`
	// Upstream names the Upstream that serves URL. An https URL needs an Upstream with
	// options.tls, an http URL one without.
	Upstream string `yaml:"upstream"`
	// CacheDuration is how long fetched keys are used before they are fetched again. Default 10m.
	CacheDuration string `yaml:"cacheDuration,omitempty"`
	// Timeout bounds one fetch. Default 5s.
	Timeout string `yaml:"timeout,omitempty"`
}

// TokenSource lists the places a token is looked for. Envoy checks them all; a request that
// carries tokens in several places must have every one of them valid.
type TokenSource struct {
	// Headers are request headers carrying the token, after an optional prefix.
	Headers []TokenHeader `yaml:"headers,omitempty"`
	// QueryParameters are query parameters carrying the token. Query strings end up in access
	// logs and browser histories, so prefer a header.
	QueryParameters []string `yaml:"queryParameters,omitempty"`
	// Cookies are cookies carrying the token.
	Cookies []string `yaml:"cookies,omitempty"`
}

// TokenHeader is a request header that carries a token.
type TokenHeader struct {
	Name string `yaml:"name"`
	// Prefix precedes the token in the value, such as "Bearer ". Default: none.
	Prefix string `yaml:"prefix,omitempty"`
}

// ClaimToHeader copies one claim of a verified token into a request header.
type ClaimToHeader struct {
	// Claim is the claim's name; a nested claim is written with dots ("org.id"). Strings,
	// numbers and booleans are copied; a missing claim or another type adds no header.
	Claim string `yaml:"claim"`
	// Header is the request header set to the claim's value.
	Header string `yaml:"header"`
}

// RouteJWT is a route's own JWT setting: at most one of Disabled and Required.
type RouteJWT struct {
	// Disabled turns token checks off on this route; the claim headers are still removed
	// from the request.
	Disabled bool `yaml:"disabled,omitempty"`
	// Required overrides the VirtualService's required on this route: true makes the route
	// answer 401 to requests without a valid token, false lets requests without a token pass.
	Required *bool `yaml:"required,omitempty"`
}

// DefaultTokenHeader is where a token is read when a provider sets no tokenFrom.
var DefaultTokenHeader = TokenHeader{Name: "Authorization", Prefix: "Bearer "}

// DefaultJWKSTimeout bounds one fetch of a remote JWKS unless timeout is set.
const DefaultJWKSTimeout = "5s"

// IsRequired applies Required's default.
func (j *JWTPolicy) IsRequired() bool { return j.Required == nil || *j.Required }

// TokenLocations applies TokenFrom's default.
func (p *JWTProvider) TokenLocations() TokenSource {
	if p.TokenFrom == nil {
		return TokenSource{Headers: []TokenHeader{DefaultTokenHeader}}
	}
	return *p.TokenFrom
}

// JWTMode is how a route treats tokens.
type JWTMode int

// The ways a route can treat tokens.
const (
	// JWTOff checks no token.
	JWTOff JWTMode = iota
	// JWTOptional lets a request without a token pass, and rejects an invalid token.
	JWTOptional
	// JWTRequired rejects a request without a valid token.
	JWTRequired
)

// JWTModeOf says how route r of a VirtualService with security policy sp treats tokens.
func JWTModeOf(sp *SecurityPolicy, r *Route) JWTMode {
	if sp == nil || sp.JWT == nil {
		return JWTOff
	}
	mode := JWTOptional
	if sp.JWT.IsRequired() {
		mode = JWTRequired
	}
	rs := r.Security
	switch {
	case rs == nil:
	case rs.Disabled, rs.JWT != nil && rs.JWT.Disabled:
		mode = JWTOff
	case rs.JWT != nil && rs.JWT.Required != nil:
		mode = JWTOptional
		if *rs.JWT.Required {
			mode = JWTRequired
		}
	}
	return mode
}

// ClaimHeaders lists the headers that the providers of j copy claims into, lower-cased and
// without repeats, in the order they are declared.
func (j *JWTPolicy) ClaimHeaders() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range j.Providers {
		for _, c := range p.ClaimToHeaders {
			h := strings.ToLower(c.Header)
			if !seen[h] {
				seen[h] = true
				out = append(out, h)
			}
		}
	}
	return out
}

// jwksFiles lists the JWKS files of every VirtualService: Envoy is given their content, so a
// change of one must reload the configuration.
func (c *Config) jwksFiles() []string {
	var out []string
	for _, vs := range c.VirtualServices {
		if sp := vs.Spec.Security; sp != nil && sp.JWT != nil {
			for _, p := range sp.JWT.Providers {
				if p.JWKS.File != "" {
					out = append(out, p.JWKS.File)
				}
			}
		}
	}
	return out
}

// jwtDefaults resolves JWKS file paths against the VirtualService's own file.
func jwtDefaults(vs *VirtualService) {
	if vs.Spec.Security == nil || vs.Spec.Security.JWT == nil {
		return
	}
	dir := filepath.Dir(vs.Source.Doc.File)
	for i := range vs.Spec.Security.JWT.Providers {
		j := &vs.Spec.Security.JWT.Providers[i].JWKS
		j.File = resolvePath(dir, j.File)
	}
}

// queryParamRE and cookieNameRE are the names a token can be read from: URL-safe characters
// for a query parameter, an RFC 6265 token for a cookie.
var (
	queryParamRE = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)
	cookieNameRE = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
)

// reservedClaimHeaders cannot receive claims: Envoy needs them to route or frame the request.
var reservedClaimHeaders = map[string]bool{
	"host": true, "connection": true, "keep-alive": true, "proxy-connection": true, "te": true,
	"trailer": true, "transfer-encoding": true, "upgrade": true, "content-length": true,
}

// checkJWTPolicy checks a VirtualService's spec.security.jwt.
func (v *validator) checkJWTPolicy(s subject, j *JWTPolicy) {
	const p = "spec.security.jwt"
	if j == nil || !s.src.valid(p) {
		return
	}
	if s.src.valid(p+".providers") && len(j.Providers) == 0 {
		v.errorf(s, p+".providers", "no providers; add one with name, issuer and jwks")
	}
	names := map[string]string{}
	// Claim headers are removed from requests before tokens are read, so a header that carries
	// a token cannot also receive a claim: the token would be removed with it.
	tokenHeaders := map[string]string{}
	claimHeaders := map[string]string{}
	for i := range j.Providers {
		pr := &j.Providers[i]
		pp := fmt.Sprintf("%s.providers[%d]", p, i)
		if !s.src.valid(pp) {
			continue
		}
		if s.src.valid(pp + ".name") {
			if !nameRE.MatchString(pr.Name) || len(pr.Name) > 63 {
				v.errorf(s, pp+".name", "invalid name %q: use at most 63 lowercase letters, digits, '-' and '.', starting and ending with a letter or digit", excerpt(pr.Name))
			} else if prev, dup := names[pr.Name]; dup {
				v.errorf(s, pp+".name", "provider name %q is already used by %s; rename one", pr.Name, prev)
			} else {
				names[pr.Name] = pp
			}
		}
		if s.src.valid(pp+".issuer") && !httpURL(pr.Issuer, false) {
			v.errorf(s, pp+".issuer", "issuer %q is not an http(s) URL; write the exact iss claim of the tokens, such as \"https://idp.example.com/\"", excerpt(pr.Issuer))
		}
		seenAud := map[string]bool{}
		for k, a := range pr.Audiences {
			ap := fmt.Sprintf("%s.audiences[%d]", pp, k)
			switch {
			case !s.src.valid(ap):
			case a == "":
				v.errorf(s, ap, "audience is empty; write a value of the tokens' aud claim")
			case seenAud[a]:
				v.errorf(s, ap, "audience %q is listed more than once; remove the repeat", excerpt(a))
			}
			seenAud[a] = true
		}
		v.checkJWKS(s, pp+".jwks", &pr.JWKS)
		v.checkTokenSource(s, pp, pr, tokenHeaders)
		seenHeader := map[string]bool{}
		for k, c := range pr.ClaimToHeaders {
			cp := fmt.Sprintf("%s.claimToHeaders[%d]", pp, k)
			if !s.src.valid(cp) {
				continue
			}
			if s.src.valid(cp+".claim") && !validClaimName(c.Claim) {
				v.errorf(s, cp+".claim", "claim %q has an empty part; write a name such as \"sub\", or \"org.id\" for a nested claim", excerpt(c.Claim))
			}
			if !s.src.valid(cp + ".header") {
				continue
			}
			h := strings.ToLower(c.Header)
			switch {
			case strings.HasPrefix(c.Header, ":"):
				v.errorf(s, cp+".header", "pseudo-header %q cannot receive a claim; use an ordinary header such as x-user", excerpt(c.Header))
			case !headerNameRE.MatchString(c.Header):
				v.checkHeaderName(s, cp+".header", c.Header)
			case reservedClaimHeaders[h]:
				v.errorf(s, cp+".header", "header %q cannot receive a claim: Envoy needs it to route or frame the request; use a header such as x-user", excerpt(c.Header))
			case h == IdentityHeader:
				v.errorf(s, cp+".header", "%s carries the identity API keys and basic auth proved, and routes without them remove it; copy the claim into another header, such as x-user", IdentityHeader)
			case seenHeader[h]:
				v.errorf(s, cp+".header", "header %q already receives another claim of this provider; use one header per claim", excerpt(c.Header))
			default:
				claimHeaders[h] = cp + ".header"
			}
			seenHeader[h] = true
		}
	}
	for h, cp := range claimHeaders {
		if tp, clash := tokenHeaders[h]; clash {
			v.errorf(s, cp, "header %q carries tokens (%s): claim headers are removed from every request before tokens are read, so the token would be lost; copy the claim into another header", h, tp)
		}
	}
}

// checkJWKS checks that exactly one key source is set and that it can work.
func (v *validator) checkJWKS(s subject, p string, j *JWKSSource) {
	if !s.src.valid(p) {
		return
	}
	hasFile, hasRemote := s.src.has(p+".file"), s.src.has(p+".remote")
	switch {
	case hasFile && hasRemote:
		v.errorf(s, p, "set only one of file, remote")
		return
	case !hasFile && !hasRemote:
		v.errorf(s, p, "no keys; set file (a JWKS JSON file) or remote (a JWKS URL and the Upstream that serves it)")
		return
	}
	if hasFile {
		// Keys already read belong to a resource checked before: the previous version that
		// LoadIsolated serves in place of a broken one, which must keep the keys it was
		// accepted with rather than read a file that may be the very thing now broken.
		if !s.src.valid(p+".file") || j.keys != "" {
			return
		}
		if info, err := os.Stat(j.File); err == nil && info.IsDir() {
			v.errorf(s, p+".file", "%s is a directory; name the JWKS file", j.File)
			return
		}
		if msg := unreadable(j.File); msg != "" {
			v.errorf(s, p+".file", "%s", msg)
			return
		}
		keys, msg := readJWKS(j.File)
		if msg != "" {
			v.errorf(s, p+".file", "%s", msg)
			return
		}
		j.keys = keys
		return
	}
	r := j.Remote
	rp := p + ".remote"
	if r == nil || !s.src.valid(rp) {
		return
	}
	if s.src.valid(rp+".url") && !httpURL(r.URL, true) {
		v.errorf(s, rp+".url", "%q is not an http(s) URL with a path; write it like \"https://idp.example.com/.well-known/jwks.json\"", excerpt(r.URL))
	}
	if s.src.valid(rp + ".upstream") {
		u := v.upstreams[r.Upstream]
		v.checkNotLambdaUpstream(s, rp+".upstream", r.Upstream)
		switch {
		case u == nil:
			v.errorf(s, rp+".upstream", "%s", notDefined(KindUpstream, r.Upstream, v.upstreamNames))
		case !s.src.valid(rp + ".url"):
		case strings.HasPrefix(strings.ToLower(r.URL), "https:") && (u.Spec.Options == nil || u.Spec.Options.TLS == nil):
			v.errorf(s, rp+".upstream", "the URL is https but Upstream %q has no options.tls, so Envoy would send the request unencrypted; add options.tls to the Upstream, or use an http URL", r.Upstream)
		case strings.HasPrefix(strings.ToLower(r.URL), "http:") && u.Spec.Options != nil && u.Spec.Options.TLS != nil:
			v.errorf(s, rp+".upstream", "the URL is http but Upstream %q speaks TLS (options.tls); use an https URL", r.Upstream)
		}
	}
	v.checkDuration(s, rp+".cacheDuration", r.CacheDuration)
	v.checkDuration(s, rp+".timeout", r.Timeout)
}

// checkTokenSource checks where a provider reads tokens and records its headers, lower-cased,
// in tokenHeaders.
func (v *validator) checkTokenSource(s subject, pp string, pr *JWTProvider, tokenHeaders map[string]string) {
	tp := pp + ".tokenFrom"
	if pr.TokenFrom == nil || !s.src.has(tp) {
		if h := strings.ToLower(DefaultTokenHeader.Name); tokenHeaders[h] == "" {
			tokenHeaders[h] = pp + " reads tokens from it by default"
		}
		return
	}
	if !s.src.valid(tp) {
		return
	}
	t := pr.TokenFrom
	if len(t.Headers)+len(t.QueryParameters)+len(t.Cookies) == 0 {
		v.errorf(s, tp, "no token location; list headers, queryParameters or cookies, or remove tokenFrom for the Authorization header")
	}
	for i, h := range t.Headers {
		hp := fmt.Sprintf("%s.headers[%d]", tp, i)
		if !s.src.valid(hp) {
			continue
		}
		if s.src.valid(hp+".name") && strings.HasPrefix(h.Name, ":") {
			v.errorf(s, hp+".name", "pseudo-header %q cannot carry a token; use an ordinary header", excerpt(h.Name))
		} else {
			v.checkHeaderName(s, hp+".name", h.Name)
		}
		if h := strings.ToLower(h.Name); s.src.valid(hp+".name") && tokenHeaders[h] == "" {
			tokenHeaders[h] = hp
		}
		if s.src.valid(hp+".prefix") && strings.ContainsAny(h.Prefix, "\r\n\x00") {
			v.errorf(s, hp+".prefix", "prefix contains a line break or NUL; remove it")
		}
	}
	for i, q := range t.QueryParameters {
		qp := fmt.Sprintf("%s.queryParameters[%d]", tp, i)
		if s.src.valid(qp) && !queryParamRE.MatchString(q) {
			v.errorf(s, qp, "%q is not a query parameter name; use letters, digits, '-', '_', '.' and '~'", excerpt(q))
		}
	}
	for i, c := range t.Cookies {
		cp := fmt.Sprintf("%s.cookies[%d]", tp, i)
		if s.src.valid(cp) && !cookieNameRE.MatchString(c) {
			v.errorf(s, cp, "%q is not a cookie name; use letters, digits and '-' or '_'", excerpt(c))
		}
	}
}

// checkRouteJWT checks a route's security.jwt at p; vsJWT is its VirtualService's policy, nil
// on a VirtualService without one or for a RouteTable route.
func (v *validator) checkRouteJWT(s subject, p string, rj *RouteJWT, vsJWT *JWTPolicy, isRouteTable bool) {
	if rj == nil || !s.src.valid(p) {
		return
	}
	switch {
	case s.src.valid(p+".disabled") && !rj.Disabled:
		v.errorf(s, p+".disabled", "disabled: false is the default; remove it")
	case rj.Disabled && s.src.has(p+".required"):
		v.errorf(s, p+".required", "set only one of disabled, required")
	case !s.src.has(p+".disabled") && !s.src.has(p+".required"):
		v.errorf(s, p, "nothing set; set required: true or false, or disabled: true")
	case isRouteTable:
		// The delegating VirtualServices are checked by checkJWTDelegation.
	case vsJWT == nil && rj.Required != nil && *rj.Required && s.src.valid(p+".required"):
		v.errorf(s, p+".required", "the route requires a token but the VirtualService declares no providers; add spec.security.jwt with providers")
	case vsJWT == nil:
		v.warnf(s, p, "has no effect: the VirtualService declares no spec.security.jwt; remove it")
	}
}

// checkJWTDelegation rejects a RouteTable route that requires a token when a VirtualService
// without JWT providers delegates to it: the route would silently let every request through.
func (v *validator) checkJWTDelegation(cfg *Config) {
	for _, vs := range cfg.VirtualServices {
		if !vs.Source.valid("spec") || (vs.Spec.Security != nil && vs.Spec.Security.JWT != nil) {
			continue
		}
		seen := map[*RouteTable]bool{}
		var walk func(routes []Route)
		walk = func(routes []Route) {
			for i := range routes {
				r := &routes[i]
				if r.Delegate == nil {
					continue
				}
				for _, rt := range cfg.RouteTablesFor(r.Delegate) {
					if seen[rt] {
						continue
					}
					seen[rt] = true
					rs := subject{KindRouteTable, rt.Metadata.Name, &rt.Source}
					for k := range rt.Spec.Routes {
						sec := rt.Spec.Routes[k].Security
						p := fmt.Sprintf("spec.routes[%d].security.jwt.required", k)
						if sec != nil && sec.JWT != nil && sec.JWT.Required != nil && *sec.JWT.Required && rt.Source.valid(p) {
							v.errorf(rs, p, "the route requires a token but VirtualService %q (%s), which delegates here, declares no spec.security.jwt providers; add them there",
								vs.Metadata.Name, vs.Source.At("metadata.name"))
						}
						for _, kp := range jwtClaimKeys(rt.Source, fmt.Sprintf("spec.routes[%d].rateLimit", k), rt.Spec.Routes[k].RateLimit) {
							v.errorf(rs, kp, "VirtualService %q (%s), which delegates here, checks no tokens, so no request has the claim and the limit would count nothing; add spec.security.jwt there, or key the limit by header or clientIP",
								vs.Metadata.Name, vs.Source.At("metadata.name"))
						}
					}
					walk(rt.Spec.Routes)
				}
			}
		}
		walk(vs.Spec.Routes)
	}
}

// checkJWTClaimKeys checks the global rate limits of a VirtualService's own routes (and its own
// limits) that are keyed by a JWT claim: the claim is known only where a token is checked, and
// elsewhere the limit would silently count nothing.
func (v *validator) checkJWTClaimKeys(s subject, vs *VirtualService) {
	sp := vs.Spec.Security
	hasJWT := sp != nil && sp.JWT != nil && s.src.valid("spec.security.jwt")
	for _, kp := range jwtClaimKeys(*s.src, "spec.rateLimit", vs.Spec.RateLimit) {
		if !hasJWT {
			v.errorf(s, kp, "the VirtualService checks no tokens, so no request has the claim and the limit would count nothing; add spec.security.jwt, or key the limit by header or clientIP")
		}
	}
	for i := range vs.Spec.Routes {
		r := &vs.Spec.Routes[i]
		for _, kp := range jwtClaimKeys(*s.src, fmt.Sprintf("spec.routes[%d].rateLimit", i), r.RateLimit) {
			switch {
			case !hasJWT:
				v.errorf(s, kp, "the VirtualService checks no tokens, so no request has the claim and the limit would count nothing; add spec.security.jwt, or key the limit by header or clientIP")
			case JWTModeOf(sp, r) == JWTOff:
				v.errorf(s, kp, "the route checks no tokens (its security opts out of JWT), so no request has the claim and the limit would count nothing; remove the opt-out, or key the limit by header or clientIP")
			}
		}
	}
}

// jwtClaimKeys checks the syntax of the jwtClaim keys of the global limits of a rateLimit at p
// and returns the field paths of the well-formed ones.
func jwtClaimKeys(src Source, p string, rl *RateLimitPolicy) []string {
	if rl == nil {
		return nil
	}
	var out []string
	for i, g := range rl.Global {
		kp := fmt.Sprintf("%s.global[%d].key.jwtClaim", p, i)
		if g.Key != nil && g.Key.JWTClaim != "" && src.valid(kp) && validClaimName(g.Key.JWTClaim) {
			out = append(out, kp)
		}
	}
	return out
}

// validClaimName accepts a claim name, dotted for a nested claim, without empty parts.
func validClaimName(c string) bool {
	return c != "" && !strings.HasPrefix(c, ".") && !strings.HasSuffix(c, ".") && !strings.Contains(c, "..")
}

// httpURL reports whether s is an absolute http or https URL with a host and no fragment;
// needPath also asks for a path, which a JWKS address has and an issuer may lack.
func httpURL(s string, needPath bool) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Fragment != "" || u.User != nil {
		return false
	}
	if scheme := strings.ToLower(u.Scheme); scheme != "http" && scheme != "https" {
		return false
	}
	return !needPath || (u.Path != "" && u.Path != "/")
}
