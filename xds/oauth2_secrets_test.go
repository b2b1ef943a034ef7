package xds

import (
	"strings"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	oauth2v3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/oauth2/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestOAuth2SecretReferencesChecked refuses a route configuration whose oauth2 login (a
// virtual host's per-filter configuration) names a client or cookie Secret the push does not
// hold, and accepts it once both are served.
func TestOAuth2SecretReferencesChecked(t *testing.T) {
	res := gateway(t, 8080, "x")
	ads := &core.ConfigSource{ResourceApiVersion: core.ApiVersion_V3, ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}
	login, err := anypb.New(&oauth2v3.OAuth2PerRoute{Config: &oauth2v3.OAuth2Config{Credentials: &oauth2v3.OAuth2Credentials{
		ClientId:       "app",
		TokenSecret:    &tlsv3.SdsSecretConfig{Name: "app/client", SdsConfig: ads},
		TokenFormation: &oauth2v3.OAuth2Credentials_HmacSecret{HmacSecret: &tlsv3.SdsSecretConfig{Name: "app/hmac", SdsConfig: ads}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := anypb.New(&route.FilterConfig{Config: login})
	if err != nil {
		t.Fatal(err)
	}
	rc := res[resource.RouteType][0].(*route.RouteConfiguration)
	rc.VirtualHosts[0].TypedPerFilterConfig = map[string]*anypb.Any{"envoy.filters.http.oauth2": wrapped}
	generic := func(name string) *tlsv3.Secret {
		return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_GenericSecret{GenericSecret: &tlsv3.GenericSecret{
			Secret: &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: "s"}},
		}}}
	}
	for _, missing := range []string{"app/client", "app/hmac"} {
		res[resource.SecretType] = nil
		for _, n := range []string{"app/client", "app/hmac"} {
			if n != missing {
				res[resource.SecretType] = append(res[resource.SecretType], generic(n))
			}
		}
		if _, err := Check(res); err == nil || !strings.Contains(err.Error(), `route configuration "`+rc.Name+`" names secret "`+missing+`", which is not served`) {
			t.Errorf("Check without %s = %v, want the missing secret named", missing, err)
		}
	}
	res[resource.SecretType] = append(res[resource.SecretType][:0], generic("app/client"), generic("app/hmac"))
	if _, err := Check(res); err != nil {
		t.Fatalf("Check with both secrets: %v", err)
	}
}
