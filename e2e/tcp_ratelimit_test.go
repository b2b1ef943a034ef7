package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// newCountingEchoServer is an echo server that counts the connections it accepts, so a test
// can tell whether Envoy proxied a connection at all.
func newCountingEchoServer(t *testing.T) (*net.TCPAddr, *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr), &accepted
}

// echoOn writes msg on c and reads the same number of bytes back, within a bound.
func echoOn(c net.Conn, msg []byte) ([]byte, error) {
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

func TestTCPGatewayConnectionRateLimit(t *testing.T) {
	echo, accepted := newCountingEchoServer(t)
	tcpPort := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	// Two connections a minute, so the bucket cannot refill while the test runs.
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: echo}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  protocol: TCP
  tcp:
    upstream: echo
    rateLimit: {connections: 2, interval: 1m}
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: echo}
spec:
  static:
    hosts: [{address: 127.0.0.1, port: %d}]
`, tcpPort, echo.Port))
	startReady(t, cfg)
	addr := fmt.Sprintf("127.0.0.1:%d", tcpPort)

	// Only refused dials are retried: a connection Envoy accepts takes a token, so the first
	// accepted one is the first of the two allowed.
	var first net.Conn
	eventually(t, 20*time.Second, "the TCP Gateway accepts a connection", func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		first = c
		return nil
	})
	defer first.Close()

	for i, c := range []func() (net.Conn, error){
		func() (net.Conn, error) { return first, nil },
		func() (net.Conn, error) { return net.DialTimeout("tcp", addr, 2*time.Second) },
	} {
		t.Run(fmt.Sprintf("connection %d within the limit echoes", i+1), func(t *testing.T) {
			conn, err := c()
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			msg := fmt.Appendf(nil, "connection %d\n", i+1)
			got, err := echoOn(conn, msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, msg) {
				t.Fatalf("got %q, want %q", got, msg)
			}
		})
	}

	t.Run("the third connection is closed without reaching the upstream", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		got, err := echoOn(c, []byte("over the limit\n"))
		var ne net.Error
		switch {
		case err == nil:
			t.Fatalf("got %q echoed back; want the connection closed", got)
		case errors.As(err, &ne) && ne.Timeout():
			t.Fatalf("connection stayed open without an answer; want Envoy to close it: %v", err)
		}
		if n := accepted.Load(); n != 2 {
			t.Fatalf("upstream accepted %d connections, want 2: the limited one must not be proxied", n)
		}
	})
}
