package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestCache runs a VirtualService with Envoy's in-memory cache in front of a backend that counts
// its hits per path: a fresh GET response is answered from the cache the second time (with an
// age header, the backend not asked again); no-store and private responses, POSTs and a route
// that opts out always reach the backend, direct responses are answered, and so do responses with a Vary header, which Envoy
// 1.40 crashes on once cached.
func TestCache(t *testing.T) {
	var mu sync.Mutex
	hits := map[string]int{}
	be := namedBackend(t, "app", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hits[r.Method+" "+r.URL.Path]++
		n := hits[r.Method+" "+r.URL.Path]
		mu.Unlock()
		switch r.URL.Path {
		case "/no-store":
			w.Header().Set("Cache-Control", "no-store")
		case "/private":
			w.Header().Set("Cache-Control", "private, max-age=60")
		case "/vary":
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Vary", "Accept-Encoding")
		default:
			w.Header().Set("Cache-Control", "max-age=60")
		}
		fmt.Fprintf(w, "%s %s #%d", r.Method, r.URL.Path, n)
	})
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: site}
spec:
  cache: {}
  routes:
  - match: {prefix: /fresh}
    cache: {disabled: true}
    upstream: app
  - match: {prefix: /direct}
    directResponse: {status: 200, body: "direct"}
  - match: {prefix: /}
    upstream: app
%s`, be.upstreamYAML()))
	startReady(t, cfg)
	c := &http.Client{Timeout: 5 * time.Second}
	t.Cleanup(c.CloseIdleConnections)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectServed(t, c, base+"/ready", "")

	type answer struct{ body, age string }
	call := func(t *testing.T, method, path string) answer {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s: status %d %q", method, path, resp.StatusCode, body)
		}
		return answer{string(body), resp.Header.Get("Age")}
	}
	hitsOf := func(key string) int {
		mu.Lock()
		defer mu.Unlock()
		return hits[key]
	}

	t.Run("a fresh GET response is served from the cache", func(t *testing.T) {
		first := call(t, http.MethodGet, "/cacheable")
		if first.age != "" {
			t.Fatalf("first response has age %q; it cannot come from the cache", first.age)
		}
		second := call(t, http.MethodGet, "/cacheable")
		if second.body != first.body || second.age == "" {
			t.Fatalf("second response %q (age %q), want the first %q with an age header", second.body, second.age, first.body)
		}
		if n := hitsOf("GET /cacheable"); n != 1 {
			t.Fatalf("backend asked %d times, want 1", n)
		}
	})
	for _, tc := range []struct{ name, method, path string }{
		{"no-store is not cached", http.MethodGet, "/no-store"},
		{"private is not cached by a shared cache", http.MethodGet, "/private"},
		{"POST is never cached", http.MethodPost, "/post"},
		{"a route that opts out is not cached", http.MethodGet, "/fresh"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := 1; i <= 2; i++ {
				got := call(t, tc.method, tc.path)
				if want := fmt.Sprintf("%s %s #%d", tc.method, tc.path, i); got.body != want || got.age != "" {
					t.Fatalf("request %d: %q (age %q), want %q from the backend", i, got.body, got.age, want)
				}
			}
		})
	}
	t.Run("direct responses skip the cache", func(t *testing.T) {
		// Envoy's cache filter answers a request without an Upstream with a 404, so Portico
		// turns it off on such routes.
		if got := call(t, http.MethodGet, "/direct"); got.body != "direct" {
			t.Fatalf("got %q, want the direct response", got.body)
		}
	})
	t.Run("a response with vary is not cached and Envoy keeps serving", func(t *testing.T) {
		for i := 1; i <= 3; i++ {
			if got, want := call(t, http.MethodGet, "/vary"), fmt.Sprintf("GET /vary #%d", i); got.body != want || got.age != "" {
				t.Fatalf("request %d: %q (age %q), want %q from the backend", i, got.body, got.age, want)
			}
		}
	})
}
