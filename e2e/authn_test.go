package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/portico-gw/portico/internal/envoytest"
)

// echoBackend answers with what authentication left in the request: the identity header, the
// credentials and the query string, one per line.
func echoBackend(t *testing.T) *backend {
	t.Helper()
	return namedBackend(t, "api", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "identity=%s\napikey=%s\nauthorization=%s\nquery=%s\n",
			strings.Join(r.Header.Values("x-portico-identity"), ","), r.Header.Get("x-api-key"),
			r.Header.Get("authorization"), r.URL.RawQuery)
	})
}

// authResponse is one answer through the gateway.
type authResponse struct {
	status int
	body   string
	header http.Header
}

func getWith(t *testing.T, url string, headers map[string]string) authResponse {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return authResponse{resp.StatusCode, string(body), resp.Header}
}

func bcryptEntry(t *testing.T, user, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

const (
	keyPartnerA = "KEYA-0123456789abcdef"
	keyPartnerB = "KEYB-0123456789abcdef"
	keyRotated  = "KEYC-0123456789abcdef"
	staffPass   = "PASSWORD-wonderland"
)

const authnConfig = `---
apiVersion: portico.dev/v1
kind: Secret
metadata: {name: partners}
spec: {type: apiKeys, file: keys.txt}
---
apiVersion: portico.dev/v1
kind: Secret
metadata: {name: staff}
spec: {type: htpasswd, file: users.htpasswd}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  security:
    apiKey: {secrets: [partners]}
  routes:
  - name: open
    match: {prefix: /open}
    upstream: api
    security: {disabled: true}
  - name: staff
    match: {prefix: /staff}
    upstream: api
    security:
      apiKey: {disabled: true}
      basicAuth: {secret: staff, realm: staff area}
  - name: feed
    match: {prefix: /feed}
    upstream: api
    security: {apiKey: {secrets: [partners], queryParameter: key}}
  - match: {prefix: /}
    upstream: api
`

func TestAPIKeysAndBasicAuth(t *testing.T) {
	api := echoBackend(t)
	dir := t.TempDir()
	port := envoytest.FreePort(t)
	keys := filepath.Join(dir, "keys.txt")
	writeFile(t, keys, "# partners\na:"+keyPartnerA+"\nb:"+keyPartnerB+"\n")
	writeFile(t, filepath.Join(dir, "users.htpasswd"), bcryptEntry(t, "alice", staffPass))
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+authnConfig+api.upstreamYAML())
	admin, flag := adminAddr(t)
	p := startReady(t, cfg, flag...)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	eventually(t, 15*time.Second, "the authz service answers", func() error {
		if r := getWith(t, base+"/", map[string]string{"x-api-key": keyPartnerA}); r.status != 200 {
			return fmt.Errorf("got %d %q", r.status, r.body)
		}
		return nil
	})

	t.Run("API key: missing or wrong is 401 with a clear body", func(t *testing.T) {
		for _, key := range []string{"", "KEYX-0123456789abcdef"} {
			r := getWith(t, base+"/", map[string]string{"x-api-key": key})
			if r.status != 401 || !strings.Contains(r.body, "needs a valid API key in the x-api-key header") {
				t.Errorf("key %q: %d %q, want 401 naming the header", key, r.status, r.body)
			}
			if r.header.Get("www-authenticate") != "" {
				t.Errorf("key %q: www-authenticate %q on an API key route", key, r.header.Get("www-authenticate"))
			}
		}
	})
	t.Run("API key: the identity reaches the backend, the key and a spoofed identity do not", func(t *testing.T) {
		r := getWith(t, base+"/x", map[string]string{"x-api-key": keyPartnerB, "x-portico-identity": "admin"})
		if r.status != 200 || r.body != "identity=b\napikey=\nauthorization=\nquery=\n" {
			t.Errorf("got %d %q, want identity b only", r.status, r.body)
		}
	})
	t.Run("opted-out route is open and strips a spoofed identity", func(t *testing.T) {
		r := getWith(t, base+"/open", map[string]string{"x-portico-identity": "admin"})
		if r.status != 200 || !strings.HasPrefix(r.body, "identity=\n") {
			t.Errorf("got %d %q, want 200 without an identity", r.status, r.body)
		}
	})
	t.Run("basic auth: challenge, wrong password, user", func(t *testing.T) {
		r := getWith(t, base+"/staff", nil)
		if r.status != 401 || r.header.Get("www-authenticate") != `Basic realm="staff area", charset="UTF-8"` {
			t.Errorf("no credentials: %d www-authenticate %q", r.status, r.header.Get("www-authenticate"))
		}
		if r := getWith(t, base+"/staff", map[string]string{"x-api-key": keyPartnerA}); r.status != 401 {
			t.Errorf("an API key on a basic-auth-only route: %d, want 401", r.status)
		}
		req, _ := http.NewRequest(http.MethodGet, base+"/staff", nil)
		req.SetBasicAuth("alice", "wrong")
		if resp, err := client.Do(req); err != nil || resp.StatusCode != 401 {
			t.Errorf("wrong password: %v %v, want 401", resp.StatusCode, err)
		} else {
			resp.Body.Close()
		}
		req.SetBasicAuth("alice", staffPass)
		req.Header.Set("x-portico-identity", "root")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "identity=alice\napikey=\nauthorization=\nquery=\n" {
			t.Errorf("alice: %d %q, want identity alice without her credentials", resp.StatusCode, body)
		}
	})
	t.Run("API key in a query parameter is removed before the backend", func(t *testing.T) {
		r := getWith(t, base+"/feed?page=2&key="+keyPartnerA, nil)
		if r.status != 200 || r.body != "identity=a\napikey=\nauthorization=\nquery=page=2\n" {
			t.Errorf("got %d %q", r.status, r.body)
		}
	})
	t.Run("a changed key file applies without a reload; a broken one keeps the last good keys", func(t *testing.T) {
		writeFile(t, keys, "a:"+keyRotated+"\n")
		eventually(t, 10*time.Second, "the rotated key is accepted", func() error {
			if r := getWith(t, base+"/", map[string]string{"x-api-key": keyRotated}); r.status != 200 {
				return fmt.Errorf("rotated key: %d", r.status)
			}
			return nil
		})
		if r := getWith(t, base+"/", map[string]string{"x-api-key": keyPartnerB}); r.status != 401 {
			t.Errorf("removed key b: %d, want 401", r.status)
		}
		writeFile(t, keys, "a:"+keyRotated+"\nb:short\n")
		eventually(t, 10*time.Second, "the broken file is logged", func() error {
			if !strings.Contains(p.stderr.String(), "keys.txt:2: the key is shorter") {
				return fmt.Errorf("not logged yet")
			}
			return nil
		})
		if r := getWith(t, base+"/", map[string]string{"x-api-key": keyRotated}); r.status != 200 {
			t.Errorf("after a broken save: %d, want the last good key to work", r.status)
		}
	})
	t.Run("decisions are counted per policy", func(t *testing.T) {
		_, body, err := get("", "http://"+admin+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`portico_authz_decisions_total{decision="allowed",policy="shop/staff"} 1`,
			`portico_authz_decisions_total{decision="denied",policy="shop/staff"} 3`,
		} {
			if !strings.Contains(body, want+"\n") {
				t.Errorf("/metrics lacks %q", want)
			}
		}
	})
	secrets := []string{"KEYA", "KEYB", "KEYC", "PASSWORD", "$2a$"}
	t.Run("status shows the broken key file by line, and neither it nor the config dump any secret", func(t *testing.T) {
		// The key file sits beside the configuration, so its broken save was also a rejected
		// configuration change: status says so, pointing at the line.
		eventually(t, 10*time.Second, "status shows the broken key file", func() error {
			st, err := porticoStatus(t, admin)
			if err != nil {
				return err
			}
			states := map[string]string{}
			for _, r := range st.Resources {
				if r.Kind == "Secret" {
					states[r.Name] = r.State + " " + strings.Join(r.Reasons, "; ")
				}
			}
			if !strings.HasPrefix(states["partners"], "Rejected "+keys+":2: ") || states["staff"] != "Accepted " {
				return fmt.Errorf("Secret states %q, want partners rejected at keys.txt:2 and staff accepted", states)
			}
			return nil
		})
		for _, path := range []string{"/status", "/config_dump"} {
			code, body, err := get("", "http://"+admin+path)
			if err != nil || code != 200 {
				t.Fatalf("GET %s = %d, %v", path, code, err)
			}
			for _, secret := range secrets {
				if strings.Contains(body, secret) {
					t.Errorf("%s contains secret material %q", path, secret)
				}
			}
		}
	})
	p.stop()
	logs := p.stdout.String() + p.stderr.String()
	for _, secret := range secrets {
		if strings.Contains(logs, secret) {
			t.Errorf("portico's output contains secret material %q", secret)
		}
	}
}
