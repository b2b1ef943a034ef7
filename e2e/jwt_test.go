package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// jwtSigner signs test tokens with one key, hand-encoded as RFC 7519 describes, so the test
// needs no JWT library.
type jwtSigner struct {
	kid string
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
}

func newRSASigner(t *testing.T, kid string) *jwtSigner {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtSigner{kid: kid, rsa: k}
}

func newECSigner(t *testing.T, kid string) *jwtSigner {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtSigner{kid: kid, ec: k}
}

var b64 = base64.RawURLEncoding.EncodeToString

// jwk is the signer's public key as a JSON Web Key.
func (s *jwtSigner) jwk() map[string]string {
	if s.rsa != nil {
		return map[string]string{"kty": "RSA", "kid": s.kid, "alg": "RS256", "use": "sig",
			"n": b64(s.rsa.N.Bytes()), "e": b64(big.NewInt(int64(s.rsa.E)).Bytes())}
	}
	return map[string]string{"kty": "EC", "kid": s.kid, "alg": "ES256", "crv": "P-256",
		"x": b64(s.ec.X.FillBytes(make([]byte, 32))), "y": b64(s.ec.Y.FillBytes(make([]byte, 32)))}
}

// jwks is a JSON Web Key Set of the signers' public keys.
func jwks(t *testing.T, signers ...*jwtSigner) []byte {
	t.Helper()
	var keys []map[string]string
	for _, s := range signers {
		keys = append(keys, s.jwk())
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// token signs claims.
func (s *jwtSigner) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	alg := "RS256"
	if s.ec != nil {
		alg = "ES256"
	}
	h, err := json.Marshal(map[string]string{"alg": alg, "typ": "JWT", "kid": s.kid})
	if err != nil {
		t.Fatal(err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := b64(h) + "." + b64(p)
	digest := sha256.Sum256([]byte(input))
	var sig []byte
	if s.rsa != nil {
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.rsa, crypto.SHA256, digest[:])
		if err != nil {
			t.Fatal(err)
		}
	} else {
		r, ss, err := ecdsa.Sign(rand.Reader, s.ec, digest[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), ss.FillBytes(make([]byte, 32))...)
	}
	return input + "." + b64(sig)
}

// unsigned is a token with alg none and no signature, which must never be accepted.
func unsigned(t *testing.T, claims map[string]any) string {
	t.Helper()
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(p) + "."
}

// claims are standard claims for iss and aud, valid for the next hour, plus extra.
func claims(iss, aud string, extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": iss, "aud": aud, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// headerEcho is a backend that answers with its name, the path and the request headers that
// matter to JWT: the claim headers and whether a token came along.
func headerEcho(t *testing.T, name string) *backend {
	t.Helper()
	return namedBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s user=%q auth=%q", name, r.URL.Path, r.Header.Values("x-user"), r.Header.Get("authorization"))
	})
}

// jwksServer serves a JWKS at /jwks.json, the way an identity provider does.
func jwksServer(t *testing.T, name string, set []byte) *backend {
	t.Helper()
	return namedBackend(t, name, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("content-type", "application/json")
		w.Write(set)
	})
}

// sendTo is send with a Host header; headers are "Name: value" pairs, and a name may repeat.
func sendTo(t *testing.T, method, url, host string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Add(name, value)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, string(body), resp.Header}
}

func bearer(token string) string { return "Authorization: Bearer " + token }

// TestJWT drives JWT authentication through real Envoy: tokens signed here with RSA and EC
// keys from a JWKS file and an EC key from a JWKS served by a Go backend behind an Upstream.
func TestJWT(t *testing.T) {
	envoytest.Binary(t)
	dir := t.TempDir()
	rsaKey, ecKey := newRSASigner(t, "rsa-1"), newECSigner(t, "ec-1")
	remoteKey := newECSigner(t, "remote-1")
	rogue := newRSASigner(t, "rsa-1") // same kid, different key: a forged signature
	// The keys live outside the configuration's directory, which the watcher covers anyway, to
	// show that a JWKS file is watched for its own sake.
	keysDir := filepath.Join(dir, "keys")
	if err := os.Mkdir(keysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	keysFile := filepath.Join(keysDir, "jwks.json")
	writeFile(t, keysFile, string(jwks(t, rsaKey, ecKey)))
	app := headerEcho(t, "app")
	idp := jwksServer(t, "idp", jwks(t, remoteKey))
	port := envoytest.FreePort(t)
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+app.upstreamYAML()+idp.upstreamYAML()+`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: api}
spec:
  domains: [api.test]
  security:
    jwt:
      providers:
      - name: local
        issuer: https://issuer.test
        audiences: [api]
        jwks: {file: keys/jwks.json}
        claimToHeaders: [{claim: sub, header: x-user}]
      - name: remote
        issuer: https://remote.test
        audiences: [api]
        jwks:
          remote: {url: "http://idp.test/jwks.json", upstream: idp, timeout: 2s}
        claimToHeaders: [{claim: sub, header: x-user}]
  routes:
  - match: {prefix: /public}
    upstream: app
    security: {jwt: {disabled: true}}
  - match: {prefix: /health}
    upstream: app
    security: {disabled: true}
  - match: {prefix: /}
    upstream: app
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  domains: [shop.test]
  security:
    jwt:
      required: false
      providers:
      - name: local
        issuer: https://issuer.test
        jwks: {file: keys/jwks.json}
        claimToHeaders: [{claim: sub, header: x-user}]
  routes:
  - match: {prefix: /checkout}
    upstream: app
    security: {jwt: {required: true}}
  - match: {prefix: /}
    upstream: app
`)
	p := startReady(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	valid := rsaKey.token(t, claims("https://issuer.test", "api", map[string]any{"sub": "alice"}))
	eventually(t, 15*time.Second, "a valid token is accepted", func() error {
		if a := sendTo(t, "GET", base+"/orders", "api.test", bearer(valid)); a.status != 200 {
			return fmt.Errorf("got %d %q", a.status, a.body)
		}
		return nil
	})

	t.Run("accepted", func(t *testing.T) {
		for _, tc := range []struct {
			name, host, path string
			headers          []string
			wantBody         string
		}{
			{"rsa token, claim copied, token removed", "api.test", "/orders", []string{bearer(valid)}, `app /orders user=["alice"] auth=""`},
			{"ec token", "api.test", "/orders", []string{bearer(ecKey.token(t, claims("https://issuer.test", "api", map[string]any{"sub": "bob"})))}, `app /orders user=["bob"] auth=""`},
			{"client's claim header replaced by the token's", "api.test", "/orders", []string{bearer(valid), "x-user: admin"}, `app /orders user=["alice"] auth=""`},
			{"client's claim header removed when the token lacks the claim", "api.test", "/orders",
				[]string{bearer(rsaKey.token(t, claims("https://issuer.test", "api", nil))), "x-user: admin"}, `app /orders user=[] auth=""`},
			{"jwt opted out: no token needed, claim header removed", "api.test", "/public", []string{"x-user: admin"}, `app /public user=[] auth=""`},
			{"all security opted out", "api.test", "/health", nil, `app /health user=[] auth=""`},
			{"optional route without a token", "shop.test", "/browse", []string{"x-user: admin"}, `app /browse user=[] auth=""`},
			{"optional route with a token copies the claim", "shop.test", "/browse", []string{bearer(valid)}, `app /browse user=["alice"] auth=""`},
			{"route-only requirement met", "shop.test", "/checkout", []string{bearer(valid)}, `app /checkout user=["alice"] auth=""`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := sendTo(t, "GET", base+tc.path, tc.host, tc.headers...)
				if a.status != 200 || a.body != tc.wantBody {
					t.Errorf("got %d %q, want 200 %q", a.status, a.body, tc.wantBody)
				}
			})
		}
	})

	t.Run("rejected", func(t *testing.T) {
		expired := claims("https://issuer.test", "api", map[string]any{"sub": "alice"})
		expired["exp"] = time.Now().Add(-time.Hour).Unix()
		expired["iat"] = time.Now().Add(-2 * time.Hour).Unix()
		for _, tc := range []struct {
			name, host, path string
			headers          []string
			wantBody         string
			invalidToken     bool
		}{
			{"no token", "api.test", "/orders", nil, "Jwt is missing", false},
			{"expired", "api.test", "/orders", []string{bearer(rsaKey.token(t, expired))}, "Jwt is expired", true},
			{"wrong audience", "api.test", "/orders", []string{bearer(rsaKey.token(t, claims("https://issuer.test", "other", nil)))}, "Audiences in Jwt are not allowed", true},
			{"wrong issuer", "api.test", "/orders", []string{bearer(rsaKey.token(t, claims("https://evil.test", "api", nil)))}, "Jwt issuer is not configured", true},
			{"bad signature", "api.test", "/orders", []string{bearer(rogue.token(t, claims("https://issuer.test", "api", nil)))}, "Jwt verification fails", true},
			{"unsigned (alg none)", "api.test", "/orders", []string{bearer(unsigned(t, claims("https://issuer.test", "api", nil)))}, "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections", true},
			{"not a token", "api.test", "/orders", []string{bearer("garbage")}, "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections", true},
			{"route-only requirement without a token", "shop.test", "/checkout", nil, "Jwt is missing", false},
			{"optional route with an invalid token", "shop.test", "/browse", []string{bearer(rsaKey.token(t, expired))}, "Jwt is expired", true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a := sendTo(t, "GET", base+tc.path, tc.host, tc.headers...)
				if a.status != 401 || a.body != tc.wantBody {
					t.Errorf("got %d %q, want 401 %q", a.status, a.body, tc.wantBody)
				}
				want := fmt.Sprintf("Bearer realm=%q", "http://"+tc.host+tc.path)
				if tc.invalidToken {
					want += `, error="invalid_token"`
				}
				if got := a.header.Get("www-authenticate"); got != want {
					t.Errorf("www-authenticate = %q, want %q", got, want)
				}
			})
		}
	})

	t.Run("remote jwks", func(t *testing.T) {
		tok := remoteKey.token(t, claims("https://remote.test", "api", map[string]any{"sub": "carol"}))
		eventually(t, 15*time.Second, "a token signed by the remote key is accepted", func() error {
			if a := sendTo(t, "GET", base+"/orders", "api.test", bearer(tok)); a.status != 200 || a.body != `app /orders user=["carol"] auth=""` {
				return fmt.Errorf("got %d %q", a.status, a.body)
			}
			return nil
		})
		forged := rsaKey.token(t, claims("https://remote.test", "api", map[string]any{"sub": "carol"}))
		if a := sendTo(t, "GET", base+"/orders", "api.test", bearer(forged)); a.status != 401 {
			t.Errorf("a remote-issuer token signed by a local key: got %d %q, want 401", a.status, a.body)
		}
	})

	t.Run("cors preflight passes", func(t *testing.T) {
		a := sendTo(t, "OPTIONS", base+"/orders", "api.test", "Origin: https://app.test", "Access-Control-Request-Method: POST")
		if a.status != 200 || !strings.HasPrefix(a.body, "app /orders") {
			t.Errorf("got %d %q, want the backend's 200", a.status, a.body)
		}
		if a := sendTo(t, "OPTIONS", base+"/orders", "api.test"); a.status != 401 {
			t.Errorf("OPTIONS without preflight headers: got %d, want 401", a.status)
		}
	})

	// Last, as it changes the keys every other case relies on.
	t.Run("jwks file replaced", func(t *testing.T) {
		next := newRSASigner(t, "rsa-2")
		writeFile(t, keysFile, string(jwks(t, next)))
		tok := next.token(t, claims("https://issuer.test", "api", map[string]any{"sub": "dave"}))
		eventually(t, 15*time.Second, "a token signed by the new key is accepted", func() error {
			if a := sendTo(t, "GET", base+"/orders", "api.test", bearer(tok)); a.status != 200 || a.body != `app /orders user=["dave"] auth=""` {
				return fmt.Errorf("got %d %q", a.status, a.body)
			}
			return nil
		})
		if a := sendTo(t, "GET", base+"/orders", "api.test", bearer(valid)); a.status != 401 {
			t.Errorf("a token signed by the replaced key: got %d %q, want 401", a.status, a.body)
		}

		writeFile(t, keysFile, `{"keys": [`)
		eventually(t, 15*time.Second, "the broken key file is reported", func() error {
			if !strings.Contains(p.stderr.String()+p.stdout.String(), "is not a JSON Web Key Set") {
				return fmt.Errorf("no report yet")
			}
			return nil
		})
		if a := sendTo(t, "GET", base+"/orders", "api.test", bearer(tok)); a.status != 200 {
			t.Errorf("after a broken key file: got %d %q, want the last good keys to accept the token", a.status, a.body)
		}
	})
}
