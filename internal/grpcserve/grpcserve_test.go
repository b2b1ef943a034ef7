package grpcserve

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func TestServe(t *testing.T) {
	t.Run("a held stream is closed after the timeout", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer()
		healthpb.RegisterHealthServer(srv, health.NewServer())
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Serve(ctx, srv, l, 50*time.Millisecond) }()

		conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// Watch is a stream the server keeps open: GracefulStop alone would wait for ever.
		stream, err := healthpb.NewHealthClient(conn).Watch(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve = %v after a stop, want nil", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after its context ended")
		}
		if _, err := stream.Recv(); err == nil {
			t.Error("the held stream is still open")
		}
	})
	t.Run("a listener that fails ends Serve with its error", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l.Close()
		if err := Serve(context.Background(), grpc.NewServer(), l, time.Second); err == nil {
			t.Error("Serve on a closed listener returned nil")
		}
	})
}

// TestServeStoppedBeforeStarting: a context that ends at once (portico interrupted while it
// starts) may stop the server before srv.Serve runs, which then reports that the server was
// stopped. That is a stop, not a failure.
func TestServeStoppedBeforeStarting(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := Serve(ctx, grpc.NewServer(), l, time.Second); err != nil {
			t.Fatalf("Serve = %v with its context already done, want nil", err)
		}
	}
}
