package e2e

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/portico-gw/portico/internal/envoytest"
)

// grpcBackend is a gRPC server on loopback h2c serving the standard health service. It names
// itself in an x-backend response header, and fails the next unary call with UNAVAILABLE
// while failNext is set.
type grpcBackend struct {
	health   *health.Server
	port     int
	failNext atomic.Bool
	calls    atomic.Int32
}

func newGRPCBackend(t *testing.T, name string) *grpcBackend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &grpcBackend{health: health.NewServer(), port: l.Addr().(*net.TCPAddr).Port}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			b.calls.Add(1)
			if b.failNext.CompareAndSwap(true, false) {
				return nil, status.Error(codes.Unavailable, "failing this attempt on purpose")
			}
			if err := grpc.SetHeader(ctx, metadata.Pairs("x-backend", name)); err != nil {
				return nil, err
			}
			return h(ctx, req)
		}),
	)
	healthpb.RegisterHealthServer(srv, b.health)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return b
}

// TestGRPC sends real gRPC calls through the gateway to gRPC servers over h2c: unary and
// server-streaming calls, the grpc matcher, a retry on UNAVAILABLE and gRPC health checks.
func TestGRPC(t *testing.T) {
	greeter := newGRPCBackend(t, "greeter")
	checkedA, checkedB := newGRPCBackend(t, "checked-a"), newGRPCBackend(t, "checked-b")
	port := envoytest.FreePort(t)
	startConfig(t, gatewayYAML(port)+`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - match: {prefix: /, grpc: true, headers: [{name: x-pool, exact: checked}]}
    upstream: checked
  - match: {prefix: /, grpc: true}
    upstream: greeter
    options:
      retries: {numRetries: 2, retryOn: [unavailable]}
  - match: {prefix: /}
    directResponse: {status: 200, body: plain http}
`+hostsUpstreamYAML("greeter", `    http2: true
`, greeter.port)+hostsUpstreamYAML("checked", `    http2: true
    healthCheck:
      grpc: {}
      interval: 100ms
      unhealthyThreshold: 1
      healthyThreshold: 1
`, checkedA.port, checkedB.port))

	conn, err := grpc.NewClient(fmt.Sprintf("127.0.0.1:%d", port), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := healthpb.NewHealthClient(conn)
	// check calls Health/Check through the gateway and returns the answering backend.
	check := func(ctx context.Context, service string) (healthpb.HealthCheckResponse_ServingStatus, string, error) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		var md metadata.MD
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.Header(&md))
		if err != nil {
			return 0, "", err
		}
		return resp.GetStatus(), fmt.Sprint(md.Get("x-backend")), nil
	}

	t.Run("a unary call reaches the gRPC backend", func(t *testing.T) {
		greeter.health.SetServingStatus("greeter.v1.Greeter", healthpb.HealthCheckResponse_SERVING)
		st, from, err := check(t.Context(), "greeter.v1.Greeter")
		if err != nil {
			t.Fatal(err)
		}
		if st != healthpb.HealthCheckResponse_SERVING || from != "[greeter]" {
			t.Fatalf("Check = %v from %s, want SERVING from [greeter]", st, from)
		}
		_, _, err = check(t.Context(), "no.such.Service")
		if status.Code(err) != codes.NotFound {
			t.Fatalf("Check of an unknown service: %v, want the backend's NotFound status passed through", err)
		}
	})

	t.Run("a server-streaming call delivers every update", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		greeter.health.SetServingStatus("watched", healthpb.HealthCheckResponse_SERVING)
		stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{Service: "watched"})
		if err != nil {
			t.Fatal(err)
		}
		want := []healthpb.HealthCheckResponse_ServingStatus{healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_SERVING}
		for i, w := range want {
			if i > 0 {
				greeter.health.SetServingStatus("watched", w)
			}
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("update %d: %v", i, err)
			}
			if resp.GetStatus() != w {
				t.Fatalf("update %d = %v, want %v", i, resp.GetStatus(), w)
			}
		}
	})

	t.Run("a request that is not gRPC does not match the grpc route", func(t *testing.T) {
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		expectBody(t, "", base+"/grpc.health.v1.Health/Check", 200, "plain http")
	})

	t.Run("a call failing with UNAVAILABLE is retried", func(t *testing.T) {
		before := greeter.calls.Load()
		greeter.failNext.Store(true)
		st, from, err := check(t.Context(), "greeter.v1.Greeter")
		if err != nil {
			t.Fatalf("Check with one UNAVAILABLE attempt: %v, want success on the retry", err)
		}
		if st != healthpb.HealthCheckResponse_SERVING || from != "[greeter]" {
			t.Fatalf("Check = %v from %s, want SERVING from [greeter]", st, from)
		}
		if n := greeter.calls.Load() - before; n != 2 {
			t.Fatalf("backend saw %d attempts, want 2 (the failure and the retry)", n)
		}
	})

	t.Run("a host whose gRPC health check fails leaves rotation", func(t *testing.T) {
		ctx := metadata.AppendToOutgoingContext(t.Context(), "x-pool", "checked")
		eventually(t, 15*time.Second, "both SERVING hosts answer", func() error {
			seen := map[string]bool{}
			for range 20 {
				_, from, err := check(ctx, "")
				if err != nil {
					return err
				}
				seen[from] = true
			}
			if !seen["[checked-a]"] || !seen["[checked-b]"] {
				return fmt.Errorf("answered by %v", seen)
			}
			return nil
		})
		checkedA.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
		eventually(t, 15*time.Second, "only the SERVING host answers", func() error {
			for range 20 {
				_, from, err := check(ctx, "")
				if err != nil {
					return err
				}
				if from != "[checked-b]" {
					return fmt.Errorf("answered by %s", from)
				}
			}
			return nil
		})
	})
}
