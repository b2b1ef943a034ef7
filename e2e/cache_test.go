package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestCache runs a VirtualService with Envoy's in-memory cache in front of a backend that counts
// its hits per path: a fresh GET response is answered from the cache the second time (with an
// age header, the backend not asked again); no-store and private responses, POSTs and a route
// that opts out always reach the backend, and so do responses with a Vary header (Envoy 1.40
// crashes caching one); direct responses are still answered. With compression in front, the one
// stored copy goes out gzip-encoded or as is, as each client asks.
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
		case "/big":
			w.Header().Set("Cache-Control", "max-age=60")
			w.Header().Set("Content-Type", "text/plain")
			fmt.Fprintf(w, "%s #%d", strings.Repeat("cacheable text ", 200), n)
			return
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
  compression: {}
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
	// The transport must not ask for gzip by itself nor decode behind the test's back.
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(c.CloseIdleConnections)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectServed(t, c, base+"/ready", "")

	type answer struct{ body, age, encoding string }
	call := func(t *testing.T, method, path string, header ...string) answer {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			if header[i+1] != "" {
				req.Header.Set(header[i], header[i+1])
			}
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
		if resp.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if body, err = io.ReadAll(zr); err != nil {
				t.Fatal(err)
			}
		}
		return answer{string(body), resp.Header.Get("Age"), resp.Header.Get("Content-Encoding")}
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
	t.Run("one stored copy is compressed for the clients that ask", func(t *testing.T) {
		want := strings.Repeat("cacheable text ", 200) + " #1"
		for i, step := range []struct{ acceptEncoding, wantEncoding string }{{"gzip", "gzip"}, {"", ""}, {"gzip", "gzip"}} {
			got := call(t, http.MethodGet, "/big", "Accept-Encoding", step.acceptEncoding)
			if got.body != want || got.encoding != step.wantEncoding || (i > 0) != (got.age != "") {
				t.Fatalf("request %d (accept-encoding %q): %d bytes ending %q, encoding %q, age %q; want the first response, encoding %q, age on all but the first",
					i+1, step.acceptEncoding, len(got.body), got.body[max(0, len(got.body)-4):], got.encoding, got.age, step.wantEncoding)
			}
		}
		if n := hitsOf("GET /big"); n != 1 {
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
