package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestFirstFaultAndCORSUnderLoad starts a Gateway that uses no fault or CORS policy, so its
// listener carries neither filter, then adds both while a client keeps requesting an unrelated
// route: the listener changes, Envoy drains the old one, and not one request fails. The new
// policies work once applied, and removing them again changes nothing for the client either.
func TestFirstFaultAndCORSUnderLoad(t *testing.T) {
	be := newBackend(t, "api")
	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	plain := gatewayYAML(port) + `---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - match: {prefix: /chaos}
    upstream: api
  - match: {prefix: /}
    upstream: api
` + be.upstreamYAML()
	withPolicies := gatewayYAML(port) + `---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  options:
    cors: {allowOrigins: [{exact: "https://shop.example.com"}]}
  routes:
  - match: {prefix: /chaos}
    upstream: api
    options:
      faults: {abort: {status: 418}}
  - match: {prefix: /}
    upstream: api
` + be.upstreamYAML()
	writeFile(t, cfg, plain)
	startReady(t, cfg)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "", base+"/steady", http.StatusOK, "api /steady")

	// One keep-alive client, requesting as fast as answers come, until told to stop.
	var ok, failed atomic.Int64
	var lastFailure atomic.Value
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		cl := &http.Client{Timeout: 5 * time.Second}
		defer cl.CloseIdleConnections()
		for ctx.Err() == nil {
			code, body, err := getOn(cl, base+"/steady")
			if err == nil && code == http.StatusOK && body == "api /steady" {
				ok.Add(1)
				continue
			}
			failed.Add(1)
			lastFailure.Store(fmt.Sprintf("%d %q %v", code, body, err))
		}
	})
	t.Cleanup(func() { stop(); wg.Wait() })
	served := func(n int64) {
		t.Helper()
		want := ok.Load() + n
		eventually(t, 10*time.Second, fmt.Sprintf("%d more requests answered", n), func() error {
			if got := ok.Load(); got < want {
				return fmt.Errorf("%d of %d", got, want)
			}
			return nil
		})
	}
	served(50)

	writeFile(t, cfg, withPolicies)
	expectBody(t, "", base+"/chaos", 418, "fault filter abort")
	eventually(t, 10*time.Second, "CORS preflight answered by Envoy", func() error {
		req, err := http.NewRequest(http.MethodOptions, base+"/steady", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Origin", "https://shop.example.com")
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://shop.example.com" {
			return fmt.Errorf("status %d, Access-Control-Allow-Origin %q", resp.StatusCode, got)
		}
		return nil
	})
	served(50)

	writeFile(t, cfg, plain)
	expectBody(t, "", base+"/chaos", http.StatusOK, "api /chaos")
	served(50)

	stop()
	wg.Wait()
	t.Logf("%d requests answered while the listener changed twice", ok.Load())
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests to the unrelated route failed while the listener changed; last: %v", n, n+ok.Load(), lastFailure.Load())
	}
}

// getOn sends GET url with cl and returns status and body.
func getOn(cl *http.Client, url string) (int, string, error) {
	resp, err := cl.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
