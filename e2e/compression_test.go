package e2e

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestCompression runs a Gateway that compresses with gzip, a VirtualService that inherits it
// and one that offers brotli first: large JSON comes back in the encoding the client asked for
// and decodes to the backend's bytes; nothing is compressed for a client that does not ask, below
// the minimum length, on a route that opts out, or when the backend has encoded it already; a
// route's own setting (a lower minimum) replaces the Gateway's.
func TestCompression(t *testing.T) {
	big := []byte(`{"items":[` + strings.Repeat(`{"name":"portico","size":12345},`, 300) + `{}]}`)
	small := []byte(`{"ok":true}`)
	var pregzipped bytes.Buffer
	zw := gzip.NewWriter(&pregzipped)
	zw.Write(big)
	zw.Close()
	be := namedBackend(t, "app", func(w http.ResponseWriter, r *http.Request) {
		body := big
		switch r.URL.Path {
		case "/small", "/tiny":
			body = small
		case "/encoded":
			w.Header().Set("Content-Encoding", "gzip")
			body = pregzipped.Bytes()
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body)
	})
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: web}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  compression: {}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: site}
spec:
  domains: [site]
  routes:
  - match: {prefix: /raw}
    compression: {disabled: true}
    upstream: app
  - match: {prefix: /tiny}
    compression: {minContentLength: 5}
    upstream: app
  - match: {prefix: /}
    upstream: app
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: api}
spec:
  domains: [api]
  compression: {algorithms: [br, gzip], contentTypes: [application/json]}
  routes:
  - match: {prefix: /}
    upstream: app
%s`, port, be.upstreamYAML()))
	startReady(t, cfg)

	// The transport must not ask for gzip by itself nor decode behind the test's back.
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableCompression: true}}
	t.Cleanup(c.CloseIdleConnections)
	type answer struct {
		encoding, vary string
		body           []byte
	}
	call := func(host, path, acceptEncoding string) (answer, error) {
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
		if err != nil {
			return answer{}, err
		}
		req.Host = host
		if acceptEncoding != "" {
			req.Header.Set("Accept-Encoding", acceptEncoding)
		}
		resp, err := c.Do(req)
		if err != nil {
			return answer{}, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return answer{}, err
		}
		if resp.StatusCode != http.StatusOK {
			return answer{}, fmt.Errorf("status %d: %q", resp.StatusCode, body)
		}
		return answer{resp.Header.Get("Content-Encoding"), strings.Join(resp.Header.Values("Vary"), ","), body}, nil
	}
	expectServed(t, c, fmt.Sprintf("http://127.0.0.1:%d/", port), "site")

	gunzip := func(t *testing.T, b []byte) []byte {
		t.Helper()
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("not gzip: %v", err)
		}
		out, err := io.ReadAll(zr)
		if err != nil {
			t.Fatalf("gzip body: %v", err)
		}
		return out
	}
	for _, tc := range []struct {
		name, host, path, acceptEncoding string
		wantEncoding                     string
		// wantBody is the body after decoding wantEncoding (br is only checked to be smaller).
		wantBody []byte
	}{
		{"gzip when asked", "site", "/data", "gzip", "gzip", big},
		{"q-values choose among the client's", "site", "/data", "br;q=1, gzip;q=0.5", "gzip", big},
		{"identity without accept-encoding", "site", "/data", "", "", big},
		{"identity when only an encoding not offered is accepted", "site", "/data", "br", "", big},
		{"identity below the minimum length", "site", "/small", "gzip", "", small},
		{"identity on a route that opts out", "site", "/raw", "gzip", "", big},
		{"a route's own setting replaces the gateway's", "site", "/tiny", "gzip", "gzip", small},
		{"already encoded responses are passed on once", "site", "/encoded", "gzip", "gzip", big},
		{"the first algorithm wins a tie", "api", "/data", "gzip, br", "br", nil},
		{"the virtual host's second algorithm", "api", "/data", "gzip", "gzip", big},
		{"the client's q-values beat the order listed", "api", "/data", "gzip;q=1, br;q=0.5", "gzip", big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := call(tc.host, tc.path, tc.acceptEncoding)
			if err != nil {
				t.Fatal(err)
			}
			if got.encoding != tc.wantEncoding {
				t.Fatalf("content-encoding %q, want %q", got.encoding, tc.wantEncoding)
			}
			body := got.body
			switch tc.wantEncoding {
			case "gzip":
				if tc.path != "/encoded" && !strings.Contains(strings.ToLower(got.vary), "accept-encoding") {
					t.Errorf("vary %q lacks accept-encoding", got.vary)
				}
				body = gunzip(t, body)
			case "br":
				if len(body) >= len(big) {
					t.Fatalf("brotli body of %d bytes is not smaller than the %d sent", len(body), len(big))
				}
				return
			}
			if !bytes.Equal(body, tc.wantBody) {
				t.Fatalf("body of %d bytes differs from the backend's %d", len(body), len(tc.wantBody))
			}
		})
	}
}

// expectServed polls until url with Host host answers 200, so that the routes are in place.
func expectServed(t *testing.T, c *http.Client, url, host string) {
	t.Helper()
	eventually(t, 15*time.Second, "GET "+url+" is served", func() error {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Host = host
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}
