package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// newEchoServer starts a TCP server on loopback that writes back every byte it reads.
func newEchoServer(t *testing.T) *net.TCPAddr {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr)
}

// echoThrough dials addr, writes msg and reads the same number of bytes back.
func echoThrough(addr string, msg []byte) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return nil, fmt.Errorf("read back: %w", err)
	}
	return got, nil
}

func TestTCPGateway(t *testing.T) {
	echo := newEchoServer(t)
	httpPort, tcpPort := envoytest.FreePort(t), envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	// The VirtualService lists no gateways, so it attaches to the HTTP Gateway only.
	writeFile(t, cfg, gatewayYAML(httpPort)+fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: echo}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  protocol: TCP
  tcp: {upstream: echo, idleTimeout: 30s}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: echo}
spec:
  static:
    hosts: [{address: 127.0.0.1, port: %d}]
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: site}
spec:
  routes:
  - match: {prefix: /}
    directResponse: {status: 200, body: "http side\n"}
`, tcpPort, echo.Port))
	startReady(t, cfg)
	addr := fmt.Sprintf("127.0.0.1:%d", tcpPort)

	t.Run("bytes come back through Envoy", func(t *testing.T) {
		msg := []byte("hello over raw tcp\x00\x01\x02\n")
		eventually(t, 20*time.Second, "echo through the TCP Gateway", func() error {
			got, err := echoThrough(addr, msg)
			if err != nil {
				return err
			}
			if !bytes.Equal(got, msg) {
				return fmt.Errorf("got %q, want %q", got, msg)
			}
			return nil
		})
	})
	t.Run("a second connection is proxied too", func(t *testing.T) {
		msg := bytes.Repeat([]byte("second connection "), 1000)
		got, err := echoThrough(addr, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("got %d bytes back that differ from the %d sent", len(got), len(msg))
		}
	})
	t.Run("the HTTP Gateway beside it still serves", func(t *testing.T) {
		expectBody(t, "", fmt.Sprintf("http://127.0.0.1:%d/", httpPort), 200, "http side\n")
	})
}
