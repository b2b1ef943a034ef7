// Package grpcserve runs one of Portico's in-process gRPC servers (xDS, rate limits, authentication)
// for as long as a context lives. It owns the stop rule they share: graceful first, so calls in
// flight finish, then forced after a bound, so a client that holds a stream open cannot keep
// portico from exiting. It does not create listeners or register services.
package grpcserve

import (
	"context"
	"errors"
	"net"
	"time"

	"google.golang.org/grpc"
)

// Serve runs srv on l until ctx is done, then stops it gracefully, closing whatever is still
// open after timeout. It returns the error srv.Serve ended with, nil after a stop, even one
// that came before srv.Serve started.
func Serve(ctx context.Context, srv *grpc.Server, l net.Listener, timeout time.Duration) error {
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	stopped := make(chan struct{})
	go func() {
		srv.GracefulStop()
		close(stopped)
	}()
	stop := time.NewTimer(timeout)
	defer stop.Stop()
	select {
	case <-stopped:
	case <-stop.C:
		srv.Stop()
		<-stopped
	}
	// A context that ended at once may stop srv before Serve runs; Serve then reports that.
	if err := <-served; !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}
