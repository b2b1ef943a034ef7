package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// oidcProvider is a minimal OpenID Connect provider: a discovery document, an authorization
// endpoint that logs everyone in at once and redirects back with a code, a token endpoint
// that exchanges a code for signed tokens once the client secret checks out, and its JWKS.
type oidcProvider struct {
	t        *testing.T
	issuer   string
	clientID string
	signer   *jwtSigner
	// secret is the client secret the token endpoint accepts.
	secret atomic.Value
	// authorizations counts requests to the authorization endpoint, logouts to the logout one.
	authorizations, logouts atomic.Int32

	mu sync.Mutex
	// codes maps an unused code to what it was issued for.
	codes map[string]issuedCode
	// idTokens and accessTokens are the tokens issued, newest last.
	idTokens, accessTokens []string
}

// issuedCode is what an authorization request asked for: the token request must match it.
type issuedCode struct {
	redirectURI, nonce, codeChallenge string
}

func newOIDCProvider(t *testing.T, clientID, secret string) (*oidcProvider, int) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	p := &oidcProvider{
		t:        t,
		issuer:   fmt.Sprintf("http://127.0.0.1:%d", port),
		clientID: clientID,
		signer:   newECSigner(t, "idp-1"),
		codes:    map[string]issuedCode{},
	}
	p.secret.Store(secret)
	srv := &http.Server{Handler: p}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return p, port
}

func (p *oidcProvider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		writeJSON(w, http.StatusOK, map[string]string{
			"issuer":                 p.issuer,
			"authorization_endpoint": p.issuer + "/authorize",
			"token_endpoint":         p.issuer + "/token",
			"end_session_endpoint":   p.issuer + "/logout",
			"jwks_uri":               p.issuer + "/jwks.json",
		})
	case "/jwks.json":
		w.Header().Set("content-type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{p.signer.jwk()}})
	case "/authorize":
		p.authorizations.Add(1)
		q := r.URL.Query()
		// Envoy uses PKCE: a stolen code is useless without the browser's verifier.
		if q.Get("client_id") != p.clientID || q.Get("response_type") != "code" || q.Get("state") == "" ||
			q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		code := rand.Text()
		p.mu.Lock()
		p.codes[code] = issuedCode{q.Get("redirect_uri"), q.Get("nonce"), q.Get("code_challenge")}
		p.mu.Unlock()
		back, err := url.Parse(q.Get("redirect_uri"))
		if err != nil {
			http.Error(w, "bad redirect_uri", http.StatusBadRequest)
			return
		}
		bq := back.Query()
		bq.Set("code", code)
		bq.Set("state", q.Get("state"))
		back.RawQuery = bq.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	case "/logout":
		// RP-initiated logout: the provider would end its own session here.
		p.logouts.Add(1)
		q := r.URL.Query()
		if q.Get("client_id") != p.clientID || q.Get("id_token_hint") == "" || q.Get("post_logout_redirect_uri") == "" {
			http.Error(w, "bad logout request", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, q.Get("post_logout_redirect_uri"), http.StatusFound)
	case "/token":
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
			return
		}
		id, secret, basic := r.BasicAuth()
		if !basic {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		if id != p.clientID || secret != p.secret.Load().(string) {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
			return
		}
		p.mu.Lock()
		issued, ok := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		p.mu.Unlock()
		verifier := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if r.PostForm.Get("grant_type") != "authorization_code" || !ok || issued.redirectURI != r.PostForm.Get("redirect_uri") ||
			b64(verifier[:]) != issued.codeChallenge {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
			return
		}
		extra := map[string]any{"sub": "alice"}
		if issued.nonce != "" {
			extra["nonce"] = issued.nonce
		}
		idToken := p.signer.token(p.t, claims(p.issuer, p.clientID, extra))
		// Access tokens are JWTs for this client too, as many providers issue them.
		accessToken := p.signer.token(p.t, claims(p.issuer, p.clientID, map[string]any{"sub": "alice", "jti": rand.Text()}))
		p.mu.Lock()
		p.idTokens = append(p.idTokens, idToken)
		p.accessTokens = append(p.accessTokens, accessToken)
		p.mu.Unlock()
		writeJSON(w, http.StatusOK, map[string]any{
			"access_token": accessToken, "token_type": "Bearer", "expires_in": 3600, "id_token": idToken,
		})
	default:
		http.NotFound(w, r)
	}
}

// lastTokens returns the ID and access token issued last.
func (p *oidcProvider) lastTokens() (id, access string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idTokens) == 0 {
		return "", ""
	}
	return p.idTokens[len(p.idTokens)-1], p.accessTokens[len(p.accessTokens)-1]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// TestOIDCLogin logs a browser in through Envoy's oauth2 filter against a provider written
// here, with the endpoints found by discovery, and checks the session, the token the upstream
// sees (verified by jwt_authn), logout, a wrong client secret, pass-through of API clients'
// bearer tokens and a route that opts out.
func TestOIDCLogin(t *testing.T) {
	envoytest.Binary(t)
	dir := t.TempDir()
	roots := x509.NewCertPool()
	roots.AddCert(writeSelfSigned(t, dir, "app.example.com"))
	writeFile(t, filepath.Join(dir, "client-secret.txt"), "s3cret-of-portico\n")
	idp, idpPort := newOIDCProvider(t, "portico-app", "s3cret-of-portico")
	app := headerEcho(t, "app")
	port := envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	// oidcYAML is the configuration with the given extra oidc settings.
	configWith := func(oidcExtra string) string {
		return fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: web}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  protocol: HTTPS
  tls:
    certificates:
    - {certFile: app.example.com.crt, keyFile: app.example.com.key}
---
apiVersion: portico.dev/v1
kind: Secret
metadata: {name: idp-client}
spec: {type: generic, file: client-secret.txt}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: idp}
spec:
  static:
    hosts: [{address: 127.0.0.1, port: %d}]
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: app}
spec:
  security:
    oidc:
      issuer: %s
      clientId: portico-app
      clientSecret: idp-client
      upstream: idp
      scopes: [openid, email]
%s    jwt:
      providers:
      - name: idp
        issuer: %s
        audiences: [portico-app]
        jwks: {remote: {url: %s/jwks.json, upstream: idp}}
        forwardToken: true
  routes:
  - match: {prefix: /public}
    upstream: app
    security: {disabled: true}
  - match: {prefix: /}
    upstream: app
`, port, idpPort, idp.issuer, oidcExtra, idp.issuer, idp.issuer) + app.upstreamYAML()
	}
	writeFile(t, cfg, configWith(""))
	p := startReady(t, cfg)
	t.Cleanup(func() {
		for _, secret := range []string{"s3cret-of-portico", "rotated-at-the-provider"} {
			if strings.Contains(p.stdout.String()+p.stderr.String(), secret) {
				t.Errorf("the client secret %q appears in portico's output", secret)
			}
		}
	})
	base := fmt.Sprintf("https://127.0.0.1:%d", port)

	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "app.example.com", RootCAs: roots}}
	t.Cleanup(tr.CloseIdleConnections)
	noFollow := &http.Client{Transport: tr, Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	browser := func() *http.Client {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Client{Transport: tr, Timeout: 5 * time.Second, Jar: jar}
	}
	do := func(c *http.Client, path string, headers ...string) reply {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range headers {
			name, value, _ := strings.Cut(h, ": ")
			req.Header.Add(name, value)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return reply{resp.StatusCode, string(body), resp.Header}
	}

	t.Run("unauthenticated request is sent to the provider", func(t *testing.T) {
		var r reply
		eventually(t, 15*time.Second, "302 to the provider", func() error {
			r = do(noFollow, "/orders?page=2")
			if r.status != http.StatusFound {
				return fmt.Errorf("got %d %q", r.status, r.body)
			}
			return nil
		})
		loc, err := url.Parse(r.header.Get("location"))
		if err != nil {
			t.Fatal(err)
		}
		q := loc.Query()
		if got := loc.Scheme + "://" + loc.Host + loc.Path; got != idp.issuer+"/authorize" {
			t.Errorf("redirected to %s, want the discovered %s/authorize", got, idp.issuer)
		}
		for k, want := range map[string]string{"client_id": "portico-app", "redirect_uri": base + "/oauth2/callback", "response_type": "code", "scope": "openid email"} {
			if q.Get(k) != want {
				t.Errorf("%s = %q, want %q", k, q.Get(k), want)
			}
		}
		if q.Get("state") == "" {
			t.Errorf("no state in %s", loc)
		}
	})

	user := browser()
	t.Run("login ends at the backend with the ID token", func(t *testing.T) {
		r := do(user, "/orders?page=2")
		if r.status != http.StatusOK || !strings.HasPrefix(r.body, "app /orders ") {
			t.Fatalf("after login: %d %q", r.status, r.body)
		}
		// jwt_authn let the request through, so the token it saw was the provider's.
		id, _ := idp.lastTokens()
		if want := fmt.Sprintf("auth=%q", "Bearer "+id); id == "" || !strings.Contains(r.body, want) {
			t.Errorf("backend saw %q, want the issued ID token as bearer (%s)", r.body, want)
		}
		if n := idp.authorizations.Load(); n != 1 {
			t.Errorf("provider saw %d authorization requests, want 1", n)
		}
	})

	t.Run("session cookies let the next request through without the provider", func(t *testing.T) {
		before := idp.authorizations.Load()
		r := do(user, "/cart")
		if r.status != http.StatusOK || !strings.HasPrefix(r.body, "app /cart ") {
			t.Fatalf("second request: %d %q", r.status, r.body)
		}
		if n := idp.authorizations.Load(); n != before {
			t.Errorf("provider asked again (%d -> %d)", before, n)
		}
	})

	t.Run("an altered session cookie is not accepted", func(t *testing.T) {
		u, _ := url.Parse(base)
		// copied is a browser holding the user's cookies, with expiry set to expires.
		copied := func(expires string) *http.Client {
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			var cookies []*http.Cookie
			found := false
			for _, c := range user.Jar.Cookies(u) {
				if c.Name == "OauthExpires" && expires != "" {
					c.Value, found = expires, true
				}
				cookies = append(cookies, &http.Cookie{Name: c.Name, Value: c.Value, Secure: true})
			}
			if expires != "" && !found {
				t.Fatalf("no OauthExpires cookie among %v", cookies)
			}
			jar.SetCookies(u, cookies)
			return &http.Client{Transport: tr, Timeout: 5 * time.Second, Jar: jar, CheckRedirect: noFollow.CheckRedirect}
		}
		if r := do(copied(""), "/cart"); r.status != http.StatusOK {
			t.Fatalf("with the cookies as set: %d %q, want 200", r.status, r.body)
		}
		longer := fmt.Sprint(time.Now().Add(24 * time.Hour).Unix())
		if r := do(copied(longer), "/cart"); r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("location"), idp.issuer+"/authorize?") {
			t.Errorf("with a longer OauthExpires: %d %q, want a redirect to the provider", r.status, r.body)
		}
	})

	t.Run("opted-out route needs no login", func(t *testing.T) {
		r := do(noFollow, "/public/info")
		if r.status != http.StatusOK || r.body != `app /public/info user=[] auth=""` {
			t.Errorf("got %d %q", r.status, r.body)
		}
	})

	t.Run("logout clears the session", func(t *testing.T) {
		// The same browser, without following redirects, to see each answer.
		same := &http.Client{Transport: tr, Timeout: 5 * time.Second, Jar: user.Jar, CheckRedirect: noFollow.CheckRedirect}
		r := do(same, "/oauth2/logout")
		// The provider's end_session_endpoint came with discovery, so logout goes there too.
		loc, err := url.Parse(r.header.Get("location"))
		if r.status != http.StatusFound || err != nil || loc.Scheme+"://"+loc.Host+loc.Path != idp.issuer+"/logout" {
			t.Fatalf("logout: %d to %q, want a redirect to the provider's logout", r.status, r.header.Get("location"))
		}
		if id, _ := idp.lastTokens(); loc.Query().Get("id_token_hint") != id {
			t.Errorf("id_token_hint %q, want the session's ID token", loc.Query().Get("id_token_hint"))
		}
		if got := loc.Query().Get("post_logout_redirect_uri"); got != base+"/" {
			t.Errorf("post_logout_redirect_uri %q, want %s/", got, base)
		}
		resp, err := same.Get(loc.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || idp.logouts.Load() != 1 {
			t.Errorf("the provider's logout answered %d after %d requests, want a redirect back after 1", resp.StatusCode, idp.logouts.Load())
		}
		cleared := map[string]bool{}
		for _, c := range r.header.Values("set-cookie") {
			if name, value, _ := strings.Cut(c, "="); strings.HasPrefix(value, "deleted;") {
				cleared[name] = true
			}
		}
		if !cleared["BearerToken"] || !cleared["OauthHMAC"] || !cleared["IdToken"] {
			t.Errorf("logout cleared %v, want BearerToken, OauthHMAC and IdToken among them", cleared)
		}
		if r := do(same, "/cart"); r.status != http.StatusFound || !strings.HasPrefix(r.header.Get("location"), idp.issuer+"/authorize?") {
			t.Errorf("after logout: %d to %q, want a redirect to the provider", r.status, r.header.Get("location"))
		}
	})

	// API clients' bearer tokens can pass the login only when the ID token is not forwarded in
	// the same header.
	writeFile(t, cfg, configWith("      forwardToken: accessToken\n      passThrough:\n      - {name: authorization, regex: \"Bearer .+\"}\n"))
	t.Run("bearer tokens pass through to jwt_authn", func(t *testing.T) {
		token := idp.signer.token(t, claims(idp.issuer, "portico-app", map[string]any{"sub": "robot"}))
		eventually(t, 15*time.Second, "the reloaded configuration passes bearer tokens through", func() error {
			if r := do(noFollow, "/api", bearer(token)); r.status != http.StatusOK || !strings.Contains(r.body, "Bearer "+token) {
				return fmt.Errorf("valid bearer: %d %q", r.status, r.body)
			}
			return nil
		})
		forged := newECSigner(t, "idp-1").token(t, claims(idp.issuer, "portico-app", nil))
		if r := do(noFollow, "/api", bearer(forged)); r.status != http.StatusUnauthorized {
			t.Errorf("forged bearer: %d %q, want 401 from jwt_authn", r.status, r.body)
		}
	})

	t.Run("login forwards the access token", func(t *testing.T) {
		r := do(browser(), "/orders")
		_, access := idp.lastTokens()
		if want := fmt.Sprintf("auth=%q", "Bearer "+access); r.status != http.StatusOK || !strings.Contains(r.body, want) {
			t.Errorf("after login: %d %q, want the access token (%s)", r.status, r.body, want)
		}
	})

	t.Run("wrong client secret fails the login", func(t *testing.T) {
		idp.secret.Store("rotated-at-the-provider")
		r := do(browser(), "/orders")
		if r.status != http.StatusUnauthorized || r.body != "OAuth flow failed." {
			t.Errorf("login with a wrong client secret: %d %q, want 401 \"OAuth flow failed.\"", r.status, r.body)
		}
	})

	t.Run("the rotated secret written to the Secret's file is used", func(t *testing.T) {
		writeFile(t, filepath.Join(dir, "client-secret.txt"), "rotated-at-the-provider\n")
		eventually(t, 15*time.Second, "login with the rotated secret", func() error {
			if r := do(browser(), "/orders"); r.status != http.StatusOK || !strings.HasPrefix(r.body, "app /orders ") {
				return fmt.Errorf("got %d %q", r.status, r.body)
			}
			return nil
		})
	})
}
