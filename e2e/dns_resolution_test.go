package e2e

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestDNSResolutionLogical proves a DNS Upstream with resolution logical (a LOGICAL_DNS
// cluster) resolves its one host name and carries real requests to the backend behind it.
func TestDNSResolutionLogical(t *testing.T) {
	b := newBackend(t, "logical")
	port := envoytest.FreePort(t)
	cfg := gatewayYAML(port) + fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - match: {prefix: /}
    upstream: api
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: api}
spec:
  dns:
    hosts: [{hostname: localhost, port: %d}]
    lookupFamily: V4
    resolution: logical
`, b.addr.Port)
	path := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, path, cfg)
	startReady(t, path)
	url := fmt.Sprintf("http://127.0.0.1:%d/hello", port)
	// The first resolution happens after Envoy takes the cluster, so early requests may 503.
	eventually(t, 10*time.Second, "logical DNS Upstream answers", func() error {
		code, body, err := get("", url)
		if err != nil {
			return err
		}
		if code != 200 || body != "logical /hello" {
			return fmt.Errorf("got %d %q", code, body)
		}
		return nil
	})
	for range 5 {
		expectBody(t, "", url, 200, "logical /hello")
	}
}
