package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOIDCDiscovery loads a VirtualService whose provider endpoints come from a discovery
// document served here: the endpoints are taken from it, a document naming another issuer or
// lacking an endpoint is refused at the issuer, and an explicit endpoint wins over the
// document's.
func TestOIDCDiscovery(t *testing.T) {
	var doc map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.txt")
	if err := os.WriteFile(secret, []byte("client-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	load := func(extra string) (*OIDC, error) {
		t.Helper()
		cfg, err := Parse(filepath.Join(dir, "portico.yaml"), []byte(`apiVersion: portico.dev/v1
kind: Secret
metadata: {name: client}
spec: {type: generic, file: `+secret+`}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: idp}
spec: {static: {hosts: [{address: 127.0.0.1, port: 9000}]}}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: app}
spec:
  security:
    oidc:
      issuer: `+srv.URL+`
      clientId: app
      clientSecret: client
      upstream: idp
`+extra+`  routes:
  - match: {prefix: /}
    upstream: idp
`))
		if err != nil {
			return nil, err
		}
		if got := string(cfg.SecretNamed("client").Spec.Value); got != "client-secret" {
			t.Errorf("secret value %q, want the file less its line break", got)
		}
		return cfg.VirtualServices[0].Spec.Security.OIDC, nil
	}
	for _, tc := range []struct {
		name           string
		doc            map[string]string
		extra          string
		wantAuthorize  string
		wantToken      string
		wantEndSession string
		wantErr        string
	}{
		{
			name:          "endpoints from the document",
			doc:           map[string]string{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/auth", "token_endpoint": srv.URL + "/tok", "end_session_endpoint": srv.URL + "/bye"},
			wantAuthorize: srv.URL + "/auth", wantToken: srv.URL + "/tok", wantEndSession: srv.URL + "/bye",
		},
		{
			name:          "an explicit endpoint wins",
			doc:           map[string]string{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/auth", "token_endpoint": srv.URL + "/tok"},
			extra:         "      tokenEndpoint: http://127.0.0.1:9000/token\n",
			wantAuthorize: srv.URL + "/auth", wantToken: "http://127.0.0.1:9000/token",
		},
		{
			name:    "another issuer",
			doc:     map[string]string{"issuer": "https://evil.example.com", "authorization_endpoint": srv.URL + "/auth", "token_endpoint": srv.URL + "/tok"},
			wantErr: `names issuer "https://evil.example.com", not this one`,
		},
		{
			name:    "no token endpoint",
			doc:     map[string]string{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/auth"},
			wantErr: "lacks authorization_endpoint or token_endpoint",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc = tc.doc
			// Each case serves another document under the same issuer: start with none remembered.
			saved := oidcDocuments
			oidcDocuments = newOIDCDocumentCache(discoverOIDC, time.Now)
			t.Cleanup(func() { oidcDocuments = saved })
			o, err := load(tc.extra)
			if tc.wantErr != "" {
				var diags Diagnostics
				if !errors.As(err, &diags) || !strings.Contains(err.Error(), "spec.security.oidc.issuer: discovery document") || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want a diagnostic at the issuer containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.AuthorizationEndpoint != tc.wantAuthorize || o.TokenEndpoint != tc.wantToken || o.EndSessionEndpoint != tc.wantEndSession {
				t.Errorf("endpoints %q, %q, %q; want %q, %q, %q", o.AuthorizationEndpoint, o.TokenEndpoint, o.EndSessionEndpoint, tc.wantAuthorize, tc.wantToken, tc.wantEndSession)
			}
		})
	}
}

// TestOIDCDocumentCache: a document is fetched once while fresh, a failure is not retried at
// once, and a provider that fails after a success leaves its last document in use, reported as
// stale; a provider never reached is an error.
func TestOIDCDocumentCache(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	fetches := 0
	var fail error
	c := newOIDCDocumentCache(func(issuer string) (*oidcDiscovery, error) {
		fetches++
		if fail != nil {
			return nil, fail
		}
		return &oidcDiscovery{Issuer: issuer, TokenEndpoint: fmt.Sprintf("%s/token/%d", issuer, fetches)}, nil
	}, func() time.Time { return now })
	const issuer = "https://idp.example.com"

	get := func(wantToken string, wantStale, wantErr bool) {
		t.Helper()
		d, stale, err := c.get(issuer)
		if (err != nil) != wantErr || (stale != nil) != wantStale {
			t.Fatalf("get: stale %v, err %v; want stale %v, err %v", stale, err, wantStale, wantErr)
		}
		if !wantErr && d.TokenEndpoint != wantToken {
			t.Fatalf("token endpoint %q, want %q", d.TokenEndpoint, wantToken)
		}
	}
	get(issuer+"/token/1", false, false)
	now = now.Add(oidcDocumentFresh - time.Second)
	get(issuer+"/token/1", false, false)
	if fetches != 1 {
		t.Fatalf("%d fetches while the document was fresh, want 1", fetches)
	}
	now = now.Add(2 * time.Second)
	get(issuer+"/token/2", false, false)

	fail = errors.New("provider down")
	now = now.Add(oidcDocumentFresh)
	get(issuer+"/token/2", true, false)
	get(issuer+"/token/2", true, false)
	if fetches != 3 {
		t.Fatalf("%d fetches, want 3: a fresh failure is answered from memory", fetches)
	}

	other := newOIDCDocumentCache(func(string) (*oidcDiscovery, error) { fetches++; return nil, fail }, func() time.Time { return now })
	if _, _, err := other.get(issuer); err == nil {
		t.Fatal("a provider never reached gave no error")
	}
}
