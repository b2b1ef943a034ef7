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

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/internal/envoytest"
)

// matchingConfig exercises every route condition and action of the schema on one Gateway, so
// that one portico process serves all of TestRouteMatching's subtests.
func matchingConfig(port, internalPort int, a, b, c *backend) string {
	return gatewayYAML(port) + fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: internal}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  virtualServiceSelector: {matchLabels: {audience: internal}}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata:
  name: admin
  labels: {audience: internal}
spec:
  gateways: [internal]
  routes:
  - match: {prefix: /}
    directResponse: {status: 200, body: "admin"}
`, internalPort) + `---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  options:
    responseHeadersToAdd: [{name: x-served-by, value: portico}]
  routes:
  - match: {regex: '/items/[0-9]+'}
    upstream: a
  - match: {prefix: /hdr, headers: [{name: x-beta, exact: "on"}]}
    upstream: b
  - match: {prefix: /hdr, headers: [{name: x-beta, present: true, invert: true}]}
    upstream: a
  - match: {prefix: /hdr}
    directResponse: {status: 200, body: "hdr other"}
  - match: {prefix: /q, queryParameters: [{name: v, exact: "2"}]}
    upstream: b
  - match: {prefix: /q, queryParameters: [{name: tag, regex: '[a-z]+'}]}
    upstream: c
  - match: {prefix: /q}
    upstream: a
  - match: {prefix: /meth, methods: [POST, PUT]}
    upstream: b
  - match: {prefix: /meth}
    upstream: a
  - match: {prefix: /CI, caseSensitive: false}
    upstream: a
  - match: {prefix: /CS}
    upstream: b
  - match: {prefix: /split}
    destinations:
    - {upstream: a, weight: 80}
    - {upstream: b, weight: 20}
  - match: {exact: /old}
    redirect: {pathRedirect: /new, responseCode: 302}
  - match: {prefix: /moved/}
    redirect: {prefixRewrite: /here/, hostRedirect: www.example.com, httpsRedirect: true, stripQuery: true}
  - match: {exact: /direct}
    directResponse: {status: 201, body: "made it"}
  - match: {prefix: /api, methods: [GET]}
    delegate: {name: api}
  - match: {prefix: /dns}
    upstream: by-name
  - match: {prefix: /}
    directResponse: {status: 404, body: "fallback"}
---
apiVersion: portico.dev/v1
kind: RouteTable
metadata: {name: api}
spec:
  routes:
  - match: {prefix: /api/users}
    upstream: a
  - match: {prefix: /api/nested}
    delegate: {selector: {matchLabels: {level: deep}}}
---
apiVersion: portico.dev/v1
kind: RouteTable
metadata: {name: nested, labels: {level: deep}}
spec:
  routes:
  - match: {prefix: /api/nested/deep}
    upstream: b
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: by-name}
spec:
  dns:
    lookupFamily: V4
    hosts: [{hostname: localhost, port: ` + fmt.Sprint(c.addr.Port) + `}]
` + a.upstreamYAML() + b.upstreamYAML() + c.upstreamYAML()
}

// noFollow sends requests without following redirects, so tests see the redirect itself.
var noFollow = &http.Client{
	Timeout:       5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type reply struct {
	status int
	body   string
	header http.Header
}

// send makes one request with the given method and headers ("Name: value" pairs).
func send(t *testing.T, method, url string, headers ...string) reply {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		name, value, _ := strings.Cut(h, ": ")
		req.Header.Set(name, value)
	}
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return reply{resp.StatusCode, string(body), resp.Header}
}

// expect sends one request and checks status and body.
func expect(t *testing.T, method, url string, status int, body string, headers ...string) {
	t.Helper()
	if r := send(t, method, url, headers...); r.status != status || r.body != body {
		t.Errorf("%s %s %v: got %d %q, want %d %q", method, url, headers, r.status, r.body, status, body)
	}
}

func TestRouteMatching(t *testing.T) {
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	port, internalPort := envoytest.FreePort(t), envoytest.FreePort(t)
	for internalPort == port {
		internalPort = envoytest.FreePort(t)
	}
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, matchingConfig(port, internalPort, a, b, c))
	// A shadowed route would make a subtest pass or fail for the wrong reason.
	loaded, err := config.Load(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Warnings) > 0 {
		t.Fatalf("test configuration has warnings:\n%v", loaded.Warnings)
	}
	startReady(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	// Every route is in one route configuration, so once one answers all of them do.
	expectBody(t, "", base+"/items/42", 200, "a /items/42")

	t.Run("regex path matches the whole path", func(t *testing.T) {
		expect(t, "GET", base+"/items/7", 200, "a /items/7")
		expect(t, "GET", base+"/items/abc", 404, "fallback")
		expect(t, "GET", base+"/items/7/reviews", 404, "fallback")
	})
	t.Run("header exact, inverted presence and fall-through", func(t *testing.T) {
		expect(t, "GET", base+"/hdr", 200, "b /hdr", "X-Beta: on")
		expect(t, "GET", base+"/hdr", 200, "a /hdr")
		expect(t, "GET", base+"/hdr", 200, "hdr other", "X-Beta: off")
	})
	t.Run("query parameter exact and regex", func(t *testing.T) {
		expect(t, "GET", base+"/q?v=2", 200, "b /q")
		expect(t, "GET", base+"/q?v=3&tag=abc", 200, "c /q")
		expect(t, "GET", base+"/q?tag=ABC", 200, "a /q")
		expect(t, "GET", base+"/q", 200, "a /q")
	})
	t.Run("methods", func(t *testing.T) {
		expect(t, "POST", base+"/meth", 200, "b /meth")
		expect(t, "PUT", base+"/meth", 200, "b /meth")
		expect(t, "GET", base+"/meth", 200, "a /meth")
	})
	t.Run("case-insensitive prefix", func(t *testing.T) {
		expect(t, "GET", base+"/ci/x", 200, "a /ci/x")
		expect(t, "GET", base+"/Ci/x", 200, "a /Ci/x")
		// The default stays case-sensitive.
		expect(t, "GET", base+"/CS/x", 200, "b /CS/x")
		expect(t, "GET", base+"/cs/x", 404, "fallback")
	})
	t.Run("weighted destinations split 80/20", func(t *testing.T) {
		const n = 400
		counts := map[string]int{}
		for range n {
			r := send(t, "GET", base+"/split")
			if r.status != 200 {
				t.Fatalf("got %d %q", r.status, r.body)
			}
			counts[strings.Fields(r.body)[0]]++
		}
		// a's share is Binomial(400, 0.8): mean 320, standard deviation 8. +-40 is five
		// standard deviations, so a correct split fails this about once in a million runs.
		if counts["a"]+counts["b"] != n || counts["a"] < 280 || counts["a"] > 360 {
			t.Errorf("split %v over %d requests, want a in [280, 360] and the rest b", counts, n)
		}
	})
	t.Run("redirects are answered, not followed", func(t *testing.T) {
		r := send(t, "GET", base+"/old?x=1")
		if want := fmt.Sprintf("http://127.0.0.1:%d/new?x=1", port); r.status != 302 || r.header.Get("Location") != want {
			t.Errorf("got %d Location %q, want 302 %q", r.status, r.header.Get("Location"), want)
		}
		r = send(t, "GET", base+"/moved/page?x=1")
		if want := "https://www.example.com/here/page"; r.status != 301 || r.header.Get("Location") != want {
			t.Errorf("got %d Location %q, want 301 %q", r.status, r.header.Get("Location"), want)
		}
	})
	t.Run("direct response and virtual-host response headers", func(t *testing.T) {
		r := send(t, "GET", base+"/direct")
		if r.status != 201 || r.body != "made it" {
			t.Errorf("got %d %q, want 201 %q", r.status, r.body, "made it")
		}
		if got := r.header.Get("X-Served-By"); got != "portico" {
			t.Errorf("x-served-by = %q, want portico", got)
		}
	})
	t.Run("route table delegation, nested, with the parent's method condition", func(t *testing.T) {
		expect(t, "GET", base+"/api/users/1", 200, "a /api/users/1")
		expect(t, "GET", base+"/api/nested/deep/x", 200, "b /api/nested/deep/x")
		// Under /api but matched by no delegated route: not served by the parent either.
		expect(t, "GET", base+"/api/other", 404, "fallback")
		// The parent matches GET only, and that holds for every delegated route.
		expect(t, "POST", base+"/api/users/1", 404, "fallback")
	})
	t.Run("a Gateway's selector decides which VirtualServices it serves", func(t *testing.T) {
		internal := fmt.Sprintf("http://127.0.0.1:%d", internalPort)
		// Only admin is selected there, although shop also answers every domain.
		expectBody(t, "", internal+"/items/1", 200, "admin")
		// And admin, limited to the internal Gateway, is not served on web.
		expect(t, "GET", base+"/anything", 404, "fallback")
	})
	t.Run("DNS upstream resolved by Envoy", func(t *testing.T) {
		// Envoy resolves the name in the background after the cluster arrives.
		expectBody(t, "", base+"/dns/x", 200, "c /dns/x")
	})
}
