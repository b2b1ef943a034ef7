package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestDirectResponseHeaders proves directResponse.headers reach the client through real Envoy
// with the status and body, that a user content-type replaces Envoy's default text/plain
// instead of adding a second value, and that without one the client gets text/plain.
func TestDirectResponseHeaders(t *testing.T) {
	port := envoytest.FreePort(t)
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, path, gatewayYAML(port)+`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - match: {exact: /json}
    directResponse:
      status: 201
      body: '{"ok":true}'
      headers:
      - {name: content-type, value: application/json}
      - {name: x-portico, value: hi}
  - match: {exact: /plain}
    directResponse: {status: 200, body: "plain\n"}
`)
	startReady(t, path)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	tests := []struct {
		path    string
		status  int
		body    string
		headers map[string][]string
	}{
		{"/json", 201, `{"ok":true}`, map[string][]string{
			"Content-Type": {"application/json"},
			"X-Portico":    {"hi"},
		}},
		{"/plain", 200, "plain\n", map[string][]string{
			"Content-Type": {"text/plain"},
			"X-Portico":    nil,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			eventually(t, 15*time.Second, "GET "+tt.path, func() error {
				req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+tt.path, nil)
				if err != nil {
					return err
				}
				resp, err := client.Do(req)
				if err != nil {
					return err
				}
				defer resp.Body.Close()
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					return err
				}
				if resp.StatusCode != tt.status || string(body) != tt.body {
					return fmt.Errorf("got %d %q", resp.StatusCode, body)
				}
				for name, want := range tt.headers {
					if got := resp.Header.Values(name); !slices.Equal(got, want) {
						return fmt.Errorf("header %s: got %q, want %q", name, got, want)
					}
				}
				return nil
			})
		})
	}
}
