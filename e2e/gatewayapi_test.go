package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/internal/envoytest"
)

// gatewayAPIYAML is a configuration written only in Kubernetes Gateway API documents: an HTTP
// and an HTTPS listener, an HTTPRoute splitting /api 90/10 between two Services with a request
// header set, and one serving the HTTPS listener.
func gatewayAPIYAML(httpPort, httpsPort int, v1, v2 *backend, certPEM, keyPEM []byte, apiPath string) string {
	return fmt.Sprintf(`apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: eg}
spec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: eg}
spec:
  gatewayClassName: eg
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
  - {name: http, protocol: HTTP, port: %d}
  - name: https
    protocol: HTTPS
    port: %d
    hostname: secure.test
    tls:
      certificateRefs: [{name: secure-cert}]
---
apiVersion: v1
kind: Secret
metadata: {name: secure-cert}
type: kubernetes.io/tls
data:
  tls.crt: %s
  tls.key: %s
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop}
spec:
  parentRefs: [{name: eg, sectionName: http}]
  rules:
  - matches:
    - path: {type: PathPrefix, value: %s}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-route, value: gateway-api}]
    backendRefs:
    - {name: v1, port: 80, weight: 90}
    - {name: v2, port: 80, weight: 10}
  - matches:
    - path: {type: PathPrefix, value: /rw/}
    filters:
    - type: URLRewrite
      urlRewrite:
        path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}
    backendRefs:
    - {name: v1, port: 80}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: secure}
spec:
  parentRefs: [{name: eg, sectionName: https}]
  rules:
  - backendRefs: [{name: v1, port: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: v1
  annotations: {portico.dev/hosts: "127.0.0.1:%d"}
spec:
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata:
  name: v2
  annotations: {portico.dev/hosts: "127.0.0.1:%d"}
spec:
  ports: [{port: 80}]
`, httpPort, httpsPort, base64.StdEncoding.EncodeToString(certPEM), base64.StdEncoding.EncodeToString(keyPEM),
		apiPath, v1.addr.Port, v2.addr.Port)
}

// TestGatewayAPI serves a Gateway API configuration through the real Envoy: the path match,
// the header filter and the 90/10 split of an HTTPRoute, a prefix rewrite, an HTTPS listener whose certificate is
// a kubernetes.io/tls Secret, status per Gateway API document, and a live reload of an edited
// HTTPRoute.
func TestGatewayAPI(t *testing.T) {
	answer := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s %s", name, r.URL.Path, r.Header.Get("x-route"))
		}
	}
	v1, v2 := namedBackend(t, "v1", answer("v1")), namedBackend(t, "v2", answer("v2"))
	dir := t.TempDir()
	writeSelfSigned(t, dir, "secure.test")
	certPEM, err := os.ReadFile(filepath.Join(dir, "secure.test.crt"))
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, "secure.test.key"))
	if err != nil {
		t.Fatal(err)
	}
	httpPort, httpsPort := envoytest.FreePort(t), envoytest.FreePort(t)
	cfg := filepath.Join(dir, "gateway-api.yaml")
	writeFile(t, cfg, gatewayAPIYAML(httpPort, httpsPort, v1, v2, certPEM, keyPEM, "/api"))
	addr, flag := adminAddr(t)
	startReady(t, cfg, flag...)
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)

	// The route matches whole path segments, sets its header, and splits 90/10.
	eventually(t, 15*time.Second, "the HTTPRoute serves /api/x", func() error {
		code, body, err := get("", base+"/api/x")
		if err != nil || code != http.StatusOK || !strings.HasSuffix(body, " /api/x gateway-api") {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
	// ReplacePrefixMatch replaces whole segments, as the Gateway API defines it.
	for path, upstream := range map[string]string{"/rw/a/b": "/v2/a/b", "/rw": "/v2", "/rw/": "/v2/"} {
		expectBody(t, "", base+path, http.StatusOK, "v1 "+upstream+" ")
	}
	for _, path := range []string{"/apix", "/other"} {
		if code, body, err := get("", base+path); err != nil || code != http.StatusNotFound {
			t.Errorf("GET %s: %d %q %v, want 404: PathPrefix /api matches whole segments only", path, code, body, err)
		}
	}
	const requests = 200
	counts := map[string]int{}
	for range requests {
		code, body, err := get("", base+"/api/x")
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /api/x: %d %q %v", code, body, err)
		}
		counts[strings.Fields(body)[0]]++
	}
	// 90% of 200 is 180 with a standard deviation of about 4.2: 160..196 is beyond 4.5 of them.
	if counts["v1"] < 160 || counts["v1"] > 196 || counts["v1"]+counts["v2"] != requests {
		t.Errorf("split of %d requests: %v, want about 180 v1 and 20 v2", requests, counts)
	}

	// The HTTPS listener serves the kubernetes.io/tls Secret's certificate.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "secure.test"},
	}}
	eventually(t, 15*time.Second, "the HTTPS listener serves secure.test", func() error {
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/hello", httpsPort), nil)
		if err != nil {
			return err
		}
		req.Host = "secure.test"
		resp, err := tlsClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || string(body) != "v1 /hello " {
			return fmt.Errorf("%d %q", resp.StatusCode, body)
		}
		return nil
	})

	for _, name := range []string{"shop", "secure"} {
		expectState(t, addr, config.KindGatewayAPIHTTPRoute, name, "Accepted", "")
	}
	expectState(t, addr, config.KindGatewayAPIClass, "eg", "Accepted", "")
	expectState(t, addr, config.KindGatewayAPIGateway, "eg", "Accepted", "")
	expectState(t, addr, config.KindCoreService, "v2", "Accepted", "")
	expectState(t, addr, config.KindCoreSecret, "secure-cert", "Accepted", "")

	// Editing the HTTPRoute applies live.
	writeFile(t, cfg, gatewayAPIYAML(httpPort, httpsPort, v1, v2, certPEM, keyPEM, "/shop"))
	eventually(t, 15*time.Second, "the edited HTTPRoute serves /shop", func() error {
		code, body, err := get("", base+"/shop/cart")
		if err != nil || code != http.StatusOK || !strings.HasSuffix(body, " /shop/cart gateway-api") {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
	expectBody(t, "", base+"/api/x", http.StatusNotFound, "")

	// A broken edit is rejected in status, naming the HTTPRoute, and the last good one serves.
	broken := strings.Replace(gatewayAPIYAML(httpPort, httpsPort, v1, v2, certPEM, keyPEM, "/shop"), "{name: v2, port: 80, weight: 10}", "{name: v3, port: 80, weight: 10}", 1)
	writeFile(t, cfg, broken)
	expectState(t, addr, config.KindGatewayAPIHTTPRoute, "shop", "Rejected", `Service "v3" is not defined`)
	if code, body, err := get("", base+"/shop/cart"); err != nil || code != http.StatusOK {
		t.Errorf("after a broken edit: %d %q %v, want the last good configuration serving", code, body, err)
	}
}
