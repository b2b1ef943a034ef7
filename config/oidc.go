package config

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// SecretTypeGeneric is a Secret whose file holds one secret value, such as an OpenID Connect
// client secret: the whole file, less trailing line breaks.
const SecretTypeGeneric = "generic"

// maxGenericSecretBytes bounds a generic Secret's file; client secrets are far shorter.
const maxGenericSecretBytes = 4096

// The defaults of OIDC login.
const (
	DefaultOIDCRedirectPath = "/oauth2/callback"
	DefaultOIDCLogoutPath   = "/oauth2/logout"
	// DefaultOIDCTimeout bounds each call to the token endpoint.
	DefaultOIDCTimeout = "5s"
	// OIDCDiscoveryTimeout bounds the fetch of the discovery document at load time.
	OIDCDiscoveryTimeout = 5 * time.Second
)

// The tokens OIDC login can forward to the upstream.
const (
	OIDCForwardIDToken     = "idToken"
	OIDCForwardAccessToken = "accessToken"
	OIDCForwardNone        = "none"
)

// The SameSite attributes of OIDC login's cookies. Strict is not one: browsers leave strict
// cookies off the provider's redirect back and the redirects that follow it, so the login
// would never complete.
const (
	SameSiteLax  = "lax"
	SameSiteNone = "none"
)

// OIDC logs browser users in with an OpenID Connect provider (authorization code flow): a
// request without a valid session is redirected to the provider's login page, the provider
// sends the browser back to redirectPath with a code, and Envoy exchanges the code for tokens
// at the token endpoint and keeps them in HttpOnly, Secure cookies.
type OIDC struct {
	// Issuer is the provider's issuer URL ("https://login.example.com"). Unless both
	// authorizationEndpoint and tokenEndpoint are set, Portico reads the provider's endpoints
	// from <issuer>/.well-known/openid-configuration when it loads the configuration.
	Issuer string `yaml:"issuer"`
	// ClientID is the client id registered with the provider.
	ClientID string `yaml:"clientId"`
	// ClientSecret names a Secret of type generic holding the client secret.
	ClientSecret string `yaml:"clientSecret"`
	// Upstream reaches the provider's token endpoint, which Envoy calls itself.
	Upstream string `yaml:"upstream"`
	// AuthorizationEndpoint is the provider's login URL the browser is redirected to.
	AuthorizationEndpoint string `yaml:"authorizationEndpoint,omitempty"`
	// TokenEndpoint is the provider's token URL, called through upstream.
	TokenEndpoint string `yaml:"tokenEndpoint,omitempty"`
	// EndSessionEndpoint is the provider's logout URL (RP-initiated logout): logoutPath then
	// also ends the session at the provider. Taken from discovery when discovery runs.
	EndSessionEndpoint string `yaml:"endSessionEndpoint,omitempty"`
	// Scopes are requested at login. Default [openid]; the list must include openid.
	Scopes []string `yaml:"scopes,omitempty"`
	// RedirectPath is the path the provider sends the browser back to (register
	// <scheme>://<host><redirectPath> with the provider). Default /oauth2/callback.
	RedirectPath string `yaml:"redirectPath,omitempty"`
	// LogoutPath clears the session cookies and redirects to / (through the provider's
	// endSessionEndpoint when there is one). Default /oauth2/logout.
	LogoutPath string `yaml:"logoutPath,omitempty"`
	// ForwardToken is the token sent to the upstream as Authorization: Bearer: idToken
	// (default), accessToken or none.
	ForwardToken string `yaml:"forwardToken,omitempty"`
	// PassThrough lets requests that match any of these header conditions through without a
	// login, such as API clients that send their own bearer token (check it with jwt). A
	// condition on authorization needs forwardToken accessToken or none.
	PassThrough []HeaderMatch `yaml:"passThrough,omitempty"`
	// Cookies sets the session cookies' attributes.
	Cookies *OIDCCookies `yaml:"cookies,omitempty"`
	// Timeout bounds each call to the token endpoint ("5s"). Default 5s.
	Timeout string `yaml:"timeout,omitempty"`
}

// OIDCCookies are the attributes of the session cookies, which are always HttpOnly and Secure.
type OIDCCookies struct {
	// SameSite is lax (default) or none (for an application embedded in another site's
	// frames). strict is refused: browsers leave strict cookies off the provider's redirect
	// back, so the login would never complete.
	SameSite string `yaml:"sameSite,omitempty"`
	// Domain shares the cookies with subdomains ("example.com"). Default: the request's host.
	Domain string `yaml:"domain,omitempty"`
}

// RouteOIDC changes the VirtualService's OIDC login for one route.
type RouteOIDC struct {
	// Disabled must be true: the route needs no login.
	Disabled bool `yaml:"disabled"`
}

// ScopesOrDefault applies Scopes' default.
func (o *OIDC) ScopesOrDefault() []string {
	if len(o.Scopes) == 0 {
		return []string{"openid"}
	}
	return o.Scopes
}

// RouteUsesOIDC reports whether requests of a route with security route (may be nil), of a
// VirtualService with policy vs (may be nil), need an OIDC login.
func RouteUsesOIDC(vs *SecurityPolicy, route *RouteSecurity) bool {
	if vs == nil || vs.OIDC == nil {
		return false
	}
	return route == nil || (!route.Disabled && route.OIDC == nil)
}

// oidcDefaults fills in the defaults of a VirtualService's OIDC login.
func oidcDefaults(vs *VirtualService) {
	sp := vs.Spec.Security
	if sp == nil || sp.OIDC == nil {
		return
	}
	o := sp.OIDC
	if o.RedirectPath == "" {
		o.RedirectPath = DefaultOIDCRedirectPath
	}
	if o.LogoutPath == "" {
		o.LogoutPath = DefaultOIDCLogoutPath
	}
	if o.ForwardToken == "" {
		o.ForwardToken = OIDCForwardIDToken
	}
	if o.Timeout == "" {
		o.Timeout = DefaultOIDCTimeout
	}
	if o.Cookies == nil {
		o.Cookies = &OIDCCookies{}
	}
	if o.Cookies.SameSite == "" {
		o.Cookies.SameSite = SameSiteLax
	}
}

// checkOIDC checks a VirtualService's spec.security.oidc and, when the provider's endpoints
// are not given, reads them from its discovery document.
func (v *validator) checkOIDC(s subject, o *OIDC) {
	const p = "spec.security.oidc"
	if o == nil || !s.src.valid(p) {
		return
	}
	issuerOK := s.src.valid(p+".issuer") && v.checkOIDCURL(s, p+".issuer", o.Issuer)
	if s.src.valid(p+".clientId") && o.ClientID == "" {
		v.errorf(s, p+".clientId", "client id is empty; give the id registered with the provider")
	}
	v.checkSecretRef(s, p+".clientSecret", o.ClientSecret, SecretTypeGeneric)
	if s.src.valid(p+".upstream") && v.upstreams[o.Upstream] == nil {
		v.errorf(s, p+".upstream", "%s", notDefined(KindUpstream, o.Upstream, v.upstreamNames))
	}
	v.checkNotLambdaUpstream(s, p+".upstream", o.Upstream)
	for _, f := range []struct{ field, url string }{{"authorizationEndpoint", o.AuthorizationEndpoint}, {"tokenEndpoint", o.TokenEndpoint}, {"endSessionEndpoint", o.EndSessionEndpoint}} {
		if s.src.has(p + "." + f.field) {
			v.checkOIDCURL(s, p+"."+f.field, f.url)
		}
	}
	if s.src.has(p+".scopes") && !slices.Contains(o.Scopes, "openid") {
		v.errorf(s, p+".scopes", "the scopes must include openid, or the provider issues no ID token; add it")
	}
	paths := map[string]string{}
	for _, f := range []struct{ field, path string }{{"redirectPath", o.RedirectPath}, {"logoutPath", o.LogoutPath}} {
		fp := p + "." + f.field
		if !s.src.valid(fp) && s.src.has(fp) {
			continue
		}
		if !strings.HasPrefix(f.path, "/") || strings.ContainsAny(f.path, "?# \t") {
			v.errorf(s, fp, "%q is not a path; start it with / and leave out query and fragment", excerpt(f.path))
			continue
		}
		if other, dup := paths[f.path]; dup {
			v.errorf(s, fp, "%s is also the %s; give each its own path", f.path, other)
		}
		paths[f.path] = f.field
	}
	if s.src.valid(p+".forwardToken") && !slices.Contains([]string{OIDCForwardIDToken, OIDCForwardAccessToken, OIDCForwardNone}, o.ForwardToken) {
		v.errorf(s, p+".forwardToken", "forwardToken %q is not %s, %s or %s", excerpt(o.ForwardToken), OIDCForwardIDToken, OIDCForwardAccessToken, OIDCForwardNone)
	}
	for i, h := range o.PassThrough {
		hp := fmt.Sprintf("%s.passThrough[%d]", p, i)
		if !s.src.valid(hp) {
			continue
		}
		v.checkHeaderName(s, hp+".name", h.Name)
		v.checkStringMatch(s, hp, h.Regex, h.Present)
		// Envoy refuses it too: a client could send any "ID token" of its own and pass.
		if strings.EqualFold(h.Name, "authorization") && o.ForwardToken == OIDCForwardIDToken && s.src.valid(hp+".name") {
			v.errorf(s, hp+".name", "the ID token is forwarded in authorization (forwardToken: %s), so requests carrying that header cannot pass through; set forwardToken: %s to pass API clients' bearer tokens through", OIDCForwardIDToken, OIDCForwardAccessToken)
		}
	}
	if c := o.Cookies; c != nil && s.src.valid(p+".cookies.sameSite") {
		switch c.SameSite {
		case SameSiteLax, SameSiteNone:
		case "strict":
			v.errorf(s, p+".cookies.sameSite", "sameSite strict would break the login: browsers leave strict cookies off the provider's redirect back and the redirects after it; use %s (the default)", SameSiteLax)
		default:
			v.errorf(s, p+".cookies.sameSite", "sameSite %q is not %s or %s", excerpt(c.SameSite), SameSiteLax, SameSiteNone)
		}
	}
	v.checkDuration(s, p+".timeout", o.Timeout)
	if o.AuthorizationEndpoint == "" || o.TokenEndpoint == "" {
		if !issuerOK {
			return
		}
		d, stale, err := oidcDocuments.get(o.Issuer)
		if err != nil {
			v.errorf(s, p+".issuer", "%v; set authorizationEndpoint and tokenEndpoint to skip discovery", err)
			return
		}
		if stale != nil {
			v.warnf(s, p+".issuer", "%v; using the endpoints its document named when last read", stale)
		}
		if o.AuthorizationEndpoint == "" {
			o.AuthorizationEndpoint = d.AuthorizationEndpoint
		}
		if o.TokenEndpoint == "" {
			o.TokenEndpoint = d.TokenEndpoint
		}
		if o.EndSessionEndpoint == "" {
			o.EndSessionEndpoint = d.EndSessionEndpoint
		}
	}
	// The client secret and the tokens cross this connection.
	u := v.upstreams[o.Upstream]
	switch tls := u != nil && u.Spec.Options != nil && u.Spec.Options.TLS != nil; {
	case u == nil || !s.src.valid(p+".upstream"):
	case strings.HasPrefix(o.TokenEndpoint, "https:") && !tls:
		v.errorf(s, p+".upstream", "the token endpoint %s is https but Upstream %q has no options.tls, so Envoy would send the client secret unencrypted; add options.tls to the Upstream", excerpt(o.TokenEndpoint), o.Upstream)
	case strings.HasPrefix(o.TokenEndpoint, "http:") && tls:
		v.errorf(s, p+".upstream", "the token endpoint %s is http but Upstream %q speaks TLS (options.tls); use an https endpoint", excerpt(o.TokenEndpoint), o.Upstream)
	}
}

// checkOIDCURL checks an absolute http(s) URL without query or fragment.
func (v *validator) checkOIDCURL(s subject, field, raw string) bool {
	if !s.src.valid(field) {
		return false
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		v.errorf(s, field, "%q is not an http(s) URL without query and fragment, such as \"https://login.example.com\"", excerpt(raw))
		return false
	}
	return true
}

// oidcDiscovery is the part of a provider's discovery document Portico uses.
type oidcDiscovery struct {
	Issuer                string `json:"issuer"`
	AuthorizationEndpoint string `json:"authorization_endpoint"`
	TokenEndpoint         string `json:"token_endpoint"`
	EndSessionEndpoint    string `json:"end_session_endpoint"`
}

// oidcDocuments remembers discovery documents for the life of the process. A load validates
// several times (once per isolation round) and every reload validates again: without it, an
// unrelated edit would wait on the provider and be rejected while the provider is briefly down.
var oidcDocuments = newOIDCDocumentCache(discoverOIDC, time.Now)

const (
	// oidcDocumentFresh is how long a fetched document is used without asking again.
	oidcDocumentFresh = 5 * time.Minute
	// oidcFailureFresh is how long a failed fetch is answered from memory, so that the rounds
	// of one load do not each wait for an unreachable provider.
	oidcFailureFresh = 10 * time.Second
	// oidcDocumentsMax bounds how many issuers are remembered.
	oidcDocumentsMax = 64
)

type oidcDocumentCache struct {
	fetch func(issuer string) (*oidcDiscovery, error)
	now   func() time.Time
	mu    sync.Mutex
	byURL map[string]*oidcDocument
}

type oidcDocument struct {
	good   *oidcDiscovery // the last document fetched and accepted, nil if none yet
	goodAt time.Time
	err    error // the last fetch's failure, nil after a success
	errAt  time.Time
}

func newOIDCDocumentCache(fetch func(string) (*oidcDiscovery, error), now func() time.Time) *oidcDocumentCache {
	return &oidcDocumentCache{fetch: fetch, now: now, byURL: map[string]*oidcDocument{}}
}

// get returns the issuer's document: a fresh one, else one fetched now. When the fetch fails
// but an earlier document exists, it returns that document with the failure as stale, so the
// configuration keeps loading with the endpoints the provider last named.
func (c *oidcDocumentCache) get(issuer string) (doc *oidcDiscovery, stale, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.byURL[issuer]
	now := c.now()
	switch {
	case e != nil && e.err == nil && now.Sub(e.goodAt) < oidcDocumentFresh:
		return e.good, nil, nil
	case e != nil && e.err != nil && now.Sub(e.errAt) < oidcFailureFresh:
		return e.answer()
	}
	if e == nil {
		if len(c.byURL) >= oidcDocumentsMax {
			clear(c.byURL)
		}
		e = &oidcDocument{}
		c.byURL[issuer] = e
	}
	// Fetching under the lock keeps concurrent loads from asking the provider twice; the fetch
	// is bounded by OIDCDiscoveryTimeout.
	d, err := c.fetch(issuer)
	if err != nil {
		e.err, e.errAt = err, now
		return e.answer()
	}
	e.good, e.goodAt, e.err = d, now, nil
	return d, nil, nil
}

func (e *oidcDocument) answer() (*oidcDiscovery, error, error) {
	if e.good != nil {
		return e.good, e.err, nil
	}
	return nil, nil, e.err
}

// discoverOIDC reads the provider's endpoints from its discovery document. The document must
// name the issuer it was fetched for (OpenID Connect Discovery 1.0, section 4.3), which catches
// a mistyped issuer before any login fails on it.
func discoverOIDC(issuer string) (*oidcDiscovery, error) {
	ctx, cancel := context.WithTimeout(context.Background(), OIDCDiscoveryTimeout)
	defer cancel()
	u := strings.TrimSuffix(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery document cannot be fetched: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery document %s answered %s", u, resp.Status)
	}
	var d oidcDiscovery
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&d); err != nil {
		return nil, fmt.Errorf("discovery document %s is not JSON: %w", u, err)
	}
	switch {
	case strings.TrimSuffix(d.Issuer, "/") != strings.TrimSuffix(issuer, "/"):
		return nil, fmt.Errorf("discovery document %s names issuer %q, not this one", u, excerpt(d.Issuer))
	case d.AuthorizationEndpoint == "" || d.TokenEndpoint == "":
		return nil, fmt.Errorf("discovery document %s lacks authorization_endpoint or token_endpoint", u)
	}
	for _, e := range []string{d.AuthorizationEndpoint, d.TokenEndpoint, d.EndSessionEndpoint} {
		if pu, err := url.Parse(e); e != "" && (err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "") {
			return nil, fmt.Errorf("discovery document %s names endpoint %q, which is not an http(s) URL", u, excerpt(e))
		}
	}
	return &d, nil
}

// checkRouteOIDC checks a route's security.oidc at p.
func (v *validator) checkRouteOIDC(s subject, p string, rs *RouteSecurity) {
	if rs.OIDC == nil || !s.src.valid(p+".oidc") {
		return
	}
	switch {
	case rs.Disabled:
		v.errorf(s, p+".oidc", "the route opts out of all security (disabled: true); remove oidc, or remove disabled")
	case s.src.valid(p+".oidc.disabled") && !rs.OIDC.Disabled:
		v.errorf(s, p+".oidc.disabled", "a route can only turn oidc off (disabled: true); remove oidc to keep the VirtualService's")
	}
}

// checkGenericSecret reads a generic Secret's file and keeps its value in the Secret. The
// messages name the file, never its content.
func (v *validator) checkGenericSecret(s subject, sec *Secret) {
	for _, f := range []string{"certFile", "keyFile", "caFile"} {
		if s.src.has("spec." + f) {
			v.errorf(s, "spec."+f, "%s is for Secrets of type %s; a %s Secret names its one file with file", f, SecretTypeTLS, SecretTypeGeneric)
		}
	}
	if !s.src.has("spec.file") {
		v.errorf(s, "spec", "missing required field \"file\": the file holding the secret value")
		return
	}
	data, ok := v.readFileField(s, "spec.file", sec.Spec.File)
	if !ok {
		return
	}
	value := strings.TrimRight(string(data), "\r\n")
	switch {
	case len(data) > maxGenericSecretBytes:
		v.errorf(s, "spec.file", "%s holds more than %d bytes; is it the right file?", sec.Spec.File, maxGenericSecretBytes)
	case value == "":
		v.errorf(s, "spec.file", "%s is empty; write the secret value in it", sec.Spec.File)
	default:
		sec.Spec.Value = RedactedString(value)
	}
}

// genericSecretFiles lists the files of every generic Secret: their values are served to
// Envoy, so a change must be applied like a change of the configuration.
func (c *Config) genericSecretFiles() []string {
	var out []string
	for _, s := range c.Secrets {
		if s.Spec.Type == SecretTypeGeneric && s.Spec.File != "" {
			out = append(out, s.Spec.File)
		}
	}
	return out
}
