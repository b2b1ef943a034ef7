package translator

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	oauth2v3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/oauth2/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portico-gw/portico/config"
)

// filterOIDC is the oauth2 filter of OIDC login. The listener holds it without a configuration,
// which leaves requests alone; each OIDC VirtualService gives its virtual host the whole
// configuration (provider, client, paths), so the listener does not change, nor drain its
// connections, when an OIDC setting does.
const filterOIDC = "envoy.filters.http.oauth2"

// oidcRedirectURIBase is the scheme and host the provider sends the browser back to: those of
// the request being logged in, so one configuration serves every domain of the VirtualService.
const oidcRedirectURIBase = "%REQ(x-forwarded-proto)%://%REQ(:authority)%"

// The names of the SDS Secrets of a VirtualService's OIDC login. VirtualService names hold no
// '/', and Gateways' certificate Secrets end otherwise, so no two Secrets share a name.
func oidcClientSecretName(vs *config.VirtualService) string {
	return vs.Metadata.Name + "/oidc-client-secret"
}

func oidcHMACSecretName(vs *config.VirtualService) string { return vs.Metadata.Name + "/oidc-hmac" }

// applyOIDC puts the oauth2 filter in front of the filters already there when a VirtualService
// the Gateway serves logs users in, so that jwt_authn, which runs next, can verify the token
// the login forwards.
func applyOIDC(vss []*config.VirtualService, hcm *hcmv3.HttpConnectionManager) error {
	if !slices.ContainsFunc(vss, func(vs *config.VirtualService) bool { return vs.Spec.Security != nil && vs.Spec.Security.OIDC != nil }) {
		return nil
	}
	f, err := httpFilter(filterOIDC, &oauth2v3.OAuth2{})
	if err != nil {
		return err
	}
	hcm.HttpFilters = append([]*hcmv3.HttpFilter{f}, hcm.HttpFilters...)
	return nil
}

var sameSites = map[string]oauth2v3.CookieConfig_SameSite{
	config.SameSiteLax:  oauth2v3.CookieConfig_LAX,
	config.SameSiteNone: oauth2v3.CookieConfig_NONE,
}

// oidcConfig is the oauth2 filter configuration of a VirtualService's OIDC login. The client
// secret and the key that signs and encrypts the session cookies come over SDS (oidcSecrets),
// so neither appears in the listener.
func oidcConfig(vs *config.VirtualService) (*oauth2v3.OAuth2Config, error) {
	o := vs.Spec.Security.OIDC
	timeout, err := time.ParseDuration(o.Timeout)
	if err != nil {
		return nil, fmt.Errorf("timeout: %w", err)
	}
	sameSite, ok := sameSites[o.Cookies.SameSite]
	if !ok {
		return nil, fmt.Errorf("sameSite %q cannot be translated", o.Cookies.SameSite)
	}
	cookie := func() *oauth2v3.CookieConfig { return &oauth2v3.CookieConfig{SameSite: sameSite} }
	c := &oauth2v3.OAuth2Config{
		TokenEndpoint: &corev3.HttpUri{
			Uri:              o.TokenEndpoint,
			HttpUpstreamType: &corev3.HttpUri_Cluster{Cluster: o.Upstream},
			Timeout:          durationpb.New(timeout),
		},
		AuthorizationEndpoint: o.AuthorizationEndpoint,
		EndSessionEndpoint:    o.EndSessionEndpoint,
		Credentials: &oauth2v3.OAuth2Credentials{
			ClientId:       o.ClientID,
			TokenSecret:    sdsSecret(oidcClientSecretName(vs)),
			TokenFormation: &oauth2v3.OAuth2Credentials_HmacSecret{HmacSecret: sdsSecret(oidcHMACSecretName(vs))},
			CookieDomain:   o.Cookies.Domain,
		},
		RedirectUri:         oidcRedirectURIBase + o.RedirectPath,
		RedirectPathMatcher: exactPath(o.RedirectPath),
		SignoutPath:         exactPath(o.LogoutPath),
		AuthScopes:          append([]string(nil), o.ScopesOrDefault()...),
		StatPrefix:          StatName(vs.Metadata.Name),
		CookieConfigs: &oauth2v3.CookieConfigs{
			BearerTokenCookieConfig:  cookie(),
			OauthHmacCookieConfig:    cookie(),
			OauthExpiresCookieConfig: cookie(),
			IdTokenCookieConfig:      cookie(),
			RefreshTokenCookieConfig: cookie(),
			OauthNonceCookieConfig:   cookie(),
			CodeVerifierCookieConfig: cookie(),
		},
	}
	switch o.ForwardToken {
	case config.OIDCForwardAccessToken:
		c.ForwardBearerToken = true
	case config.OIDCForwardIDToken:
		c.ForwardIdToken = &oauth2v3.OAuth2TokenForwarding{Header: "Authorization"}
	}
	for _, h := range o.PassThrough {
		c.PassThroughMatcher = append(c.PassThroughMatcher, headerMatcher(h))
	}
	return c, nil
}

func exactPath(p string) *matcherv3.PathMatcher {
	return &matcherv3.PathMatcher{Rule: &matcherv3.PathMatcher_Path{Path: &matcherv3.StringMatcher{
		MatchPattern: &matcherv3.StringMatcher_Exact{Exact: p},
	}}}
}

// oidcVirtualHost gives a VirtualService's virtual host its OIDC login, and puts the
// callback and logout routes first. The filter acts only on requests that match a route of
// the virtual host, and answers these two paths itself; the routes make sure they match,
// whatever the VirtualService's own routes are. A request that reaches their router anyway
// (the filter did not take it) gets 404.
func oidcVirtualHost(vs *config.VirtualService, vh *routev3.VirtualHost) error {
	sp := vs.Spec.Security
	if sp == nil || sp.OIDC == nil {
		return nil
	}
	c, err := oidcConfig(vs)
	if err != nil {
		return err
	}
	on, err := filterConfig(&oauth2v3.OAuth2PerRoute{Config: c})
	if err != nil {
		return err
	}
	setPerFilter(&vh.TypedPerFilterConfig, filterOIDC, on)
	var routes []*routev3.Route
	for _, r := range []struct{ name, path string }{{"oidc-callback", sp.OIDC.RedirectPath}, {"oidc-logout", sp.OIDC.LogoutPath}} {
		routes = append(routes, &routev3.Route{
			Name:   r.name,
			Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: r.path}},
			Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: http.StatusNotFound}},
		})
	}
	vh.Routes = append(routes, vh.Routes...)
	return nil
}

// oidcRoute turns OIDC login off for a route that opts out of it.
func oidcRoute(vs *config.VirtualService, r *config.Route, er *routev3.Route) error {
	sp := vs.Spec.Security
	if sp == nil || sp.OIDC == nil || config.RouteUsesOIDC(sp, r.Security) {
		return nil
	}
	off, err := filterConfig(nil)
	if err != nil {
		return err
	}
	setPerFilter(&er.TypedPerFilterConfig, filterOIDC, off)
	return nil
}

// oidcSecrets are the Secrets the oauth2 filters name: each VirtualService's client secret,
// and the key that signs and encrypts its session cookies. That key is derived from the client
// secret, so it is as secret as that, stays the same across reloads and restarts (sessions
// survive them) and changes, ending every session, when the client secret does.
func oidcSecrets(cfg *config.Config) ([]*tlsv3.Secret, error) {
	var out []*tlsv3.Secret
	for _, vs := range cfg.VirtualServices {
		sp := vs.Spec.Security
		if sp == nil || sp.OIDC == nil {
			continue
		}
		sec := cfg.SecretNamed(sp.OIDC.ClientSecret)
		if sec == nil || sec.Spec.Value == "" {
			return nil, fmt.Errorf("virtual service %q: client secret %q was not loaded", vs.Metadata.Name, sp.OIDC.ClientSecret)
		}
		hmac := sha256.Sum256([]byte("portico oidc cookie key\x00" + vs.Metadata.Name + "\x00" + string(sec.Spec.Value)))
		out = append(out, genericSecret(oidcClientSecretName(vs), []byte(sec.Spec.Value)), genericSecret(oidcHMACSecretName(vs), hmac[:]))
	}
	return out, nil
}

func genericSecret(name string, value []byte) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_GenericSecret{GenericSecret: &tlsv3.GenericSecret{Secret: inlineBytes(value)}}}
}
