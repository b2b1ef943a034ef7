package authz

import (
	"fmt"
	"strings"
)

// The context extension keys of a Policy. Every key is always written, empty when unused:
// Envoy merges a route's context extensions over its virtual host's, and a route's policy must
// replace the virtual host's, not mix with it.
const (
	extPolicy         = "portico.policy"
	extAPIKeySecrets  = "portico.api_key.secrets"
	extAPIKeyHeader   = "portico.api_key.header"
	extAPIKeyQuery    = "portico.api_key.query_parameter"
	extBasicSecret    = "portico.basic_auth.secret"
	extBasicRealm     = "portico.basic_auth.realm"
	extIdentityHeader = "portico.identity_header"
)

// Policy is what the service checks for the requests of one virtual host or route. With both
// API keys and basic auth set, either credential is enough.
type Policy struct {
	// Name identifies the policy in metrics and logs: the VirtualService, or its route.
	Name string
	// APIKeySecrets are the Secrets whose API keys are accepted; none means no API keys.
	APIKeySecrets []string
	// APIKeyHeader is the (lower-case) header that carries the key; APIKeyQuery the query
	// parameter, when the header is empty.
	APIKeyHeader, APIKeyQuery string
	// BasicAuthSecret is the htpasswd Secret of the users; empty means no basic auth.
	BasicAuthSecret string
	// Realm is named in the basic-auth challenge.
	Realm string
	// IdentityHeader is where the authenticated identity goes upstream.
	IdentityHeader string
}

// ContextExtensions encodes p for the ext_authz filter's per-route check settings.
func (p Policy) ContextExtensions() map[string]string {
	return map[string]string{
		extPolicy:         p.Name,
		extAPIKeySecrets:  strings.Join(p.APIKeySecrets, ","),
		extAPIKeyHeader:   p.APIKeyHeader,
		extAPIKeyQuery:    p.APIKeyQuery,
		extBasicSecret:    p.BasicAuthSecret,
		extBasicRealm:     p.Realm,
		extIdentityHeader: p.IdentityHeader,
	}
}

// policyFrom decodes the policy a request's context extensions carry.
func policyFrom(ext map[string]string) (Policy, error) {
	p := Policy{
		Name:            ext[extPolicy],
		APIKeyHeader:    ext[extAPIKeyHeader],
		APIKeyQuery:     ext[extAPIKeyQuery],
		BasicAuthSecret: ext[extBasicSecret],
		Realm:           ext[extBasicRealm],
		IdentityHeader:  ext[extIdentityHeader],
	}
	if s := ext[extAPIKeySecrets]; s != "" {
		p.APIKeySecrets = strings.Split(s, ",")
	}
	switch {
	case p.Name == "":
		return p, fmt.Errorf("the request carries no policy (context extension %s)", extPolicy)
	case len(p.APIKeySecrets) == 0 && p.BasicAuthSecret == "":
		return p, fmt.Errorf("policy %q asks for no credential", p.Name)
	case len(p.APIKeySecrets) > 0 && p.APIKeyHeader == "" && p.APIKeyQuery == "":
		return p, fmt.Errorf("policy %q does not say where the API key is", p.Name)
	case p.IdentityHeader == "":
		return p, fmt.Errorf("policy %q names no identity header", p.Name)
	}
	return p, nil
}
