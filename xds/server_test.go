package xds

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	lds = resource.ListenerType
	rds = resource.RouteType
	cds = resource.ClusterType
)

func TestServeRestrictsSocketAccess(t *testing.T) {
	s := New(testLogger(t), testNode)
	mustPush(t, s, gateway(t, 10000, "hello"), 1)
	socketPath := startServer(t, s)

	// A full round trip proves the server is past its chmod and accepting.
	f := connectFakeEnvoy(t, socketPath, testNode)
	f.subscribe(lds)
	f.collect(map[string]string{lds: "1"})

	dir, err := os.Stat(filepath.Dir(socketPath))
	if err != nil {
		t.Fatal(err)
	}
	if got := dir.Mode().Perm(); got != 0o700 {
		t.Errorf("socket directory mode = %o, want 700", got)
	}
	sock, err := os.Lstat(socketPath)
	if err != nil {
		t.Fatal(err)
	}
	if sock.Mode()&fs.ModeSocket == 0 {
		t.Errorf("%s is not a socket (mode %s)", socketPath, sock.Mode())
	}
	if got := sock.Mode().Perm(); got != 0o600 {
		t.Errorf("socket mode = %o, want 600", got)
	}
}

func TestServeSocketPathChecks(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, socketPath string)
		wantErr string // empty: Serve must start and accept a stream
	}{
		{
			name: "stale socket is replaced",
			prepare: func(t *testing.T, socketPath string) {
				l, err := net.Listen("unix", socketPath)
				if err != nil {
					t.Fatal(err)
				}
				// Leave the file behind, as a killed process would.
				l.(*net.UnixListener).SetUnlinkOnClose(false)
				l.Close()
			},
		},
		{
			name: "regular file is left alone",
			prepare: func(t *testing.T, socketPath string) {
				if err := os.WriteFile(socketPath, []byte("keep me"), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "exists and is not a socket",
		},
		{
			name: "live socket is not stolen",
			prepare: func(t *testing.T, socketPath string) {
				l, err := net.Listen("unix", socketPath)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
			},
			wantErr: "in use by another process",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			socketPath := filepath.Join(socketDir(t), "xds.sock")
			tt.prepare(t, socketPath)
			s := New(testLogger(t), testNode)
			if tt.wantErr != "" {
				err := s.Serve(t.Context(), socketPath)
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Serve error = %v, want it to contain %q", err, tt.wantErr)
				}
				if _, statErr := os.Lstat(socketPath); statErr != nil {
					t.Errorf("Serve removed %s: %v", socketPath, statErr)
				}
				return
			}
			ctx, cancel := context.WithCancel(t.Context())
			served := make(chan error, 1)
			go func() { served <- s.Serve(ctx, socketPath) }()
			mustPush(t, s, gateway(t, 10000, "hello"), 1)
			f := connectFakeEnvoy(t, socketPath, testNode)
			f.subscribe(lds)
			f.collect(map[string]string{lds: "1"})
			cancel()
			if err := <-served; err != nil {
				t.Fatalf("Serve: %v", err)
			}
		})
	}
	t.Run("second concurrent Serve", func(t *testing.T) {
		s := New(testLogger(t), testNode)
		startServer(t, s)
		err := s.Serve(t.Context(), filepath.Join(socketDir(t), "other.sock"))
		if err == nil || !strings.Contains(err.Error(), "already serving") {
			t.Fatalf("second Serve error = %v, want already serving", err)
		}
	})
	t.Run("over-long path", func(t *testing.T) {
		socketPath := filepath.Join(socketDir(t), strings.Repeat("x", 120))
		err := New(testLogger(t), testNode).Serve(t.Context(), socketPath)
		if err == nil || !strings.Contains(err.Error(), "the limit is") {
			t.Fatalf("Serve error = %v, want a path length error", err)
		}
	})
}

func TestPushRejectsInvalidResources(t *testing.T) {
	badTimeout := staticCluster("backend")
	badTimeout.ConnectTimeout = durationpb.New(-time.Second)
	tests := []struct {
		name    string
		res     Resources
		wantErr string
	}{
		{
			name:    "listener references a missing route configuration",
			res:     Resources{lds: {httpListener(t, "ingress", 10000, "missing")}},
			wantErr: "inconsistent snapshot",
		},
		{
			name: "route configuration nothing references",
			res: Resources{
				lds: {httpListener(t, "ingress", 10000, "routes")},
				rds: {directRoutes("routes", "x"), directRoutes("orphan", "y")},
			},
			wantErr: "inconsistent snapshot",
		},
		{
			name:    "unknown type URL",
			res:     Resources{"type.googleapis.com/example.Nothing": {staticCluster("a")}},
			wantErr: `unknown resource type "type.googleapis.com/example.Nothing"`,
		},
		{
			name:    "resource under the wrong type",
			res:     Resources{lds: {staticCluster("a")}},
			wantErr: "listed under the wrong type",
		},
		{
			name:    "duplicate names",
			res:     Resources{cds: {staticCluster("a"), staticCluster("a")}},
			wantErr: `duplicate resource name "a"`,
		},
		{
			name:    "unnamed resource",
			res:     Resources{cds: {staticCluster("")}},
			wantErr: "resource has no name",
		},
		{
			name:    "fails the proto's own validation",
			res:     Resources{cds: {badTimeout}},
			wantErr: "ConnectTimeout",
		},
		{
			name:    "nil resource",
			res:     Resources{cds: {nil}},
			wantErr: "nil resource",
		},
	}
	s := New(testLogger(t), testNode)
	mustPush(t, s, gateway(t, 10000, "good"), 1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen, changed, err := push(t.Context(), s, tt.res)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Push error = %v, want it to contain %q", err, tt.wantErr)
			}
			if gen != 0 || changed {
				t.Errorf("failed Push returned (%d, %t), want (0, false)", gen, changed)
			}
			if got := s.Status().PushedGeneration; got != 1 {
				t.Errorf("after a failed push the served generation is %d, want 1", got)
			}
		})
	}
	// Failed pushes use up no generation numbers.
	mustPush(t, s, gateway(t, 10000, "better"), 2)
}

func TestPushSkipsUnchangedResources(t *testing.T) {
	s := New(testLogger(t), testNode)
	first := Resources{
		lds: {httpListener(t, "a", 10001, "routes-a"), httpListener(t, "b", 10002, "routes-b")},
		rds: {directRoutes("routes-a", "A"), directRoutes("routes-b", "B")},
		cds: {staticCluster("backend")},
	}
	mustPush(t, s, first, 1)

	// Equal protos built afresh, in another order, with an explicitly empty type.
	reordered := Resources{
		lds:                   {httpListener(t, "b", 10002, "routes-b"), httpListener(t, "a", 10001, "routes-a")},
		rds:                   {directRoutes("routes-b", "B"), directRoutes("routes-a", "A")},
		cds:                   {staticCluster("backend")},
		resource.EndpointType: {},
	}
	gen, changed, err := push(t.Context(), s, reordered)
	if err != nil || changed || gen != 1 {
		t.Fatalf("Push of equal resources = (%d, %t, %v), want (1, false, nil)", gen, changed, err)
	}

	// A new proto in place of a pushed one is a change to push.
	first[rds][0] = directRoutes("routes-a", "A2")
	mustPush(t, s, first, 2)
	if got := s.Status().PushedGeneration; got != 2 {
		t.Errorf("PushedGeneration = %d, want 2", got)
	}
}

func TestSetInitialGeneration(t *testing.T) {
	s := New(testLogger(t), testNode)
	if err := s.SetInitialGeneration(41); err != nil {
		t.Fatal(err)
	}
	mustPush(t, s, gateway(t, 10000, "hello"), 42)
	if err := s.SetInitialGeneration(7); err == nil {
		t.Error("SetInitialGeneration after a push succeeded, want an error")
	}

	socketPath := startServer(t, s)
	f := connectFakeEnvoy(t, socketPath, testNode)
	f.subscribe(lds)
	f.collect(map[string]string{lds: "42"})
}

func TestWaitACKNeedsEveryType(t *testing.T) {
	s := New(testLogger(t), testNode)
	if err := s.WaitACK(t.Context(), 1); err == nil || !strings.Contains(err.Error(), "not been pushed") {
		t.Fatalf("WaitACK before any push = %v, want a not-pushed error", err)
	}
	res := gateway(t, 10000, "hello")
	res[cds] = []types.Resource{staticCluster("backend")}
	mustPush(t, s, res, 1)
	socketPath := startServer(t, s)

	f := connectFakeEnvoy(t, socketPath, testNode)
	f.subscribe(cds)
	f.subscribe(lds)
	got := f.collect(map[string]string{cds: "1", lds: "1"})
	if err := s.WaitACK(cancelledCtx(), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitACK with nothing ACKed = %v, want context.Canceled", err)
	}
	f.ack(got[cds])
	f.ack(got[lds])
	// Like Envoy, ask for the routes only after accepting the listener that names them. The
	// answer also proves the server has handled both ACKs before it.
	f.subscribe(rds, "routes")
	routes := f.collect(map[string]string{rds: "1"})[rds]
	if err := s.WaitACK(cancelledCtx(), 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitACK with routes not ACKed = %v, want context.Canceled", err)
	}
	if st := s.Status(); st.ACKedGeneration != 0 || !st.Connected {
		t.Fatalf("Status = %+v, want connected with nothing ACKed", st)
	}

	f.ack(routes)
	if err := s.WaitACK(waitCtx(t), 1); err != nil {
		t.Fatalf("WaitACK after every type was ACKed: %v", err)
	}
	if st := s.Status(); st.ACKedGeneration != 1 || st.PushedGeneration != 1 || st.LastNACK != nil {
		t.Fatalf("Status = %+v, want generation 1 pushed and ACKed, no NACK", st)
	}
}

// handshake opens a fake Envoy on socketPath and has it accept generation gen of a gateway
// (clusters, listeners, routes) the way Envoy would.
func handshake(t *testing.T, s *Server, socketPath string, gen string) *fakeEnvoy {
	t.Helper()
	f := connectFakeEnvoy(t, socketPath, testNode)
	f.subscribe(cds)
	f.subscribe(lds)
	f.ackAll(map[string]string{cds: gen, lds: gen})
	f.subscribe(rds, "routes")
	f.ackAll(map[string]string{rds: gen})
	return f
}

func TestNACKRollsBackWithoutResending(t *testing.T) {
	s := New(testLogger(t), testNode)
	mustPush(t, s, gateway(t, 10000, "one"), 1)
	f := handshake(t, s, startServer(t, s), "1")
	if err := s.WaitACK(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}

	mustPush(t, s, gateway(t, 10000, "two"), 2)
	got := f.collect(map[string]string{cds: "2", lds: "2", rds: "2"})
	f.ack(got[cds])
	f.ack(got[lds])
	const message = "Only a single wildcard domain is permitted in route routes"
	f.nack(got[rds], message)

	err := s.WaitACK(waitCtx(t), 2)
	var nack *NACKError
	if !errors.As(err, &nack) {
		t.Fatalf("WaitACK of the rejected generation = %v, want a *NACKError", err)
	}
	if nack.Generation != 2 || nack.TypeURL != rds || nack.Message != message || !slices.Equal(nack.Names, []string{"routes"}) {
		t.Fatalf("NACKError = %+v, want generation 2, %s, [routes], %q", nack, rds, message)
	}
	wantText := "envoy rejected generation 2 (" + rds + "): " + message
	if err.Error() != wantText {
		t.Errorf("Error() = %q, want %q", err.Error(), wantText)
	}

	// Exactly one response per type follows the NACK: the rollback, generation 3, carrying
	// generation 1's routes. A resend of generation 2 would arrive here first and fail collect.
	rollback := f.ackAll(map[string]string{cds: "3", lds: "3", rds: "3"})
	if body := routeBody(t, rollback[rds]); body != "one" {
		t.Fatalf("rollback routes answer %q, want generation 1's %q", body, "one")
	}
	if err := s.WaitACK(waitCtx(t), 3); err != nil {
		t.Fatalf("WaitACK of the rollback: %v", err)
	}
	// The rollback's ACK is not an ACK of the content it replaced.
	if err := s.WaitACK(waitCtx(t), 2); !errors.As(err, &nack) {
		t.Fatalf("WaitACK of the rejected generation after the rollback = %v, want a *NACKError", err)
	}
	st := s.Status()
	if st.PushedGeneration != 3 || st.ACKedGeneration != 3 || st.RollbackOf != 2 || st.RestoredGeneration != 1 {
		t.Fatalf("Status = %+v, want generation 3 served and ACKed, a rollback of 2 restoring 1", st)
	}
	if st.LastNACK == nil || st.LastNACK.Generation != 2 || st.LastNACK.Message != message {
		t.Fatalf("Status.LastNACK = %+v, want the rejection of generation 2", st.LastNACK)
	}

	// Pushing the rejected content again sends nothing: Envoy would only reject it again.
	gen, changed, err := push(context.Background(), s, gateway(t, 10000, "two"))
	if !errors.As(err, &nack) || nack.Generation != 2 || changed || gen != 3 {
		t.Fatalf("Push of the rejected content = %d, %v, %v; want generation 3 unchanged and the NACK of 2", gen, changed, err)
	}

	// The next push is the next thing Envoy hears: nothing else was queued behind the rollback.
	mustPush(t, s, gateway(t, 10000, "four"), 4)
	next := f.ackAll(map[string]string{cds: "4", lds: "4", rds: "4"})
	if body := routeBody(t, next[rds]); body != "four" {
		t.Fatalf("generation 4 routes answer %q, want %q", body, "four")
	}
	if err := s.WaitACK(waitCtx(t), 4); err != nil {
		t.Fatal(err)
	}
	if st := s.Status(); st.RollbackOf != 0 || st.ACKedGeneration != 4 {
		t.Fatalf("Status after a new push = %+v, want generation 4 ACKed and no rollback", st)
	}
}

func TestNACKWithNothingACKedIsNotResent(t *testing.T) {
	s := New(testLogger(t), testNode)
	mustPush(t, s, gateway(t, 10000, "one"), 1)
	f := connectFakeEnvoy(t, startServer(t, s), testNode)
	f.subscribe(cds)
	f.subscribe(lds)
	got := f.collect(map[string]string{cds: "1", lds: "1"})
	f.ack(got[cds])
	f.nack(got[lds], "bad listener")

	var nack *NACKError
	if err := s.WaitACK(waitCtx(t), 1); !errors.As(err, &nack) || nack.TypeURL != lds || nack.Message != "bad listener" {
		t.Fatalf("WaitACK = %v, want the listener NACK", err)
	}
	// Nothing to roll back to: generation 1 stays served, but is not sent again.
	if st := s.Status(); st.PushedGeneration != 1 || st.RollbackOf != 0 || st.ACKedGeneration != 0 {
		t.Fatalf("Status = %+v, want generation 1 served, no rollback, nothing ACKed", st)
	}
	mustPush(t, s, gateway(t, 10001, "two"), 2)
	f.ackAll(map[string]string{cds: "2", lds: "2"})
	f.subscribe(rds, "routes")
	f.ackAll(map[string]string{rds: "2"})
	if err := s.WaitACK(waitCtx(t), 2); err != nil {
		t.Fatalf("WaitACK of the next generation: %v", err)
	}
}

func TestNewStreamGetsCurrentSnapshotAndResetsTracking(t *testing.T) {
	s := New(testLogger(t), testNode)
	mustPush(t, s, gateway(t, 10000, "one"), 1)
	socketPath := startServer(t, s)
	old := handshake(t, s, socketPath, "1")
	if err := s.WaitACK(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}

	mustPush(t, s, gateway(t, 10000, "two"), 2)
	// A restarted Envoy knows nothing and must be sent generation 2 whole.
	restarted := handshake(t, s, socketPath, "2")
	if err := s.WaitACK(waitCtx(t), 2); err != nil {
		t.Fatal(err)
	}

	// The old stream lingers and ACKs generation 3; that must not count.
	mustPush(t, s, gateway(t, 10000, "three"), 3)
	old.ackAll(map[string]string{cds: "2", lds: "2", rds: "2"})
	old.ackAll(map[string]string{cds: "3", lds: "3", rds: "3"})
	old.hangUp()
	if err := s.WaitACK(cancelledCtx(), 3); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitACK after only the superseded stream ACKed = %v, want context.Canceled", err)
	}
	if st := s.Status(); st.ACKedGeneration != 2 || !st.Connected {
		t.Fatalf("Status = %+v, want generation 2 ACKed and still connected", st)
	}
	restarted.ackAll(map[string]string{cds: "3", lds: "3", rds: "3"})
	if err := s.WaitACK(waitCtx(t), 3); err != nil {
		t.Fatal(err)
	}
	restarted.hangUp()
	eventually(t, "the server reports no Envoy connected", func() bool { return !s.Status().Connected })
}

func TestRefusesOtherNode(t *testing.T) {
	s := New(testLogger(t), testNode)
	mustPush(t, s, gateway(t, 10000, "one"), 1)
	f := connectFakeEnvoy(t, startServer(t, s), "someone-else")
	f.subscribe(lds)
	err := f.endError()
	if status.Code(err) != codes.PermissionDenied || !strings.Contains(err.Error(), `"someone-else"`) {
		t.Fatalf("stream ended with %v, want PermissionDenied naming the node", err)
	}
	if s.Status().Connected {
		t.Error("a refused stream counts as connected")
	}
}

func TestEmptyGenerationNeedsListenerRemovalACK(t *testing.T) {
	s := New(testLogger(t), testNode)
	mustPush(t, s, gateway(t, 10000, "one"), 1)
	f := handshake(t, s, startServer(t, s), "1")
	if err := s.WaitACK(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	mustPush(t, s, Resources{}, 2)
	if err := s.WaitACK(cancelledCtx(), 2); !errors.Is(err, context.Canceled) {
		t.Fatalf("WaitACK before Envoy ACKed the listener removal = %v, want context.Canceled", err)
	}
	// The routes subscription is still open (the fake, unlike Envoy, does not drop it), so it
	// hears of the removal too; only the wildcard types are required.
	got := f.collect(map[string]string{cds: "2", lds: "2", rds: "2"})
	if n := len(got[lds].GetResources()); n != 0 {
		t.Fatalf("listener response has %d resources, want none", n)
	}
	f.ack(got[cds])
	f.ack(got[lds])
	if err := s.WaitACK(waitCtx(t), 2); err != nil {
		t.Fatal(err)
	}
}

func TestRefusesIncrementalXDS(t *testing.T) {
	s := New(testLogger(t), testNode)
	mustPush(t, s, gateway(t, 10000, "one"), 1)
	f := connectFakeEnvoy(t, startServer(t, s), testNode)
	delta, err := discovery.NewAggregatedDiscoveryServiceClient(f.conn).DeltaAggregatedResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// The server may end the stream before the request is sent; Send then reports io.EOF and
	// the stream's status comes from Recv.
	if err := delta.Send(&discovery.DeltaDiscoveryRequest{Node: &core.Node{Id: testNode}, TypeUrl: lds}); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	_, err = delta.Recv()
	if status.Code(err) != codes.Unimplemented || !strings.Contains(err.Error(), "api_type to GRPC") {
		t.Fatalf("delta stream ended with %v, want Unimplemented pointing at api_type", err)
	}
}

// TestCheckedResources proves that Check refuses what Push could not serve, and that
// Checked.Resources returns what was checked as copies: changing them changes nothing pushed.
func TestCheckedResources(t *testing.T) {
	good := gateway(t, 10000, "one")
	// A listener whose route configuration is missing is inconsistent.
	if _, err := Check(Resources{resource.ListenerType: good[resource.ListenerType]}); err == nil {
		t.Fatal("Check(listener without its routes) = nil, want an error")
	}
	checked, err := Check(good)
	if err != nil {
		t.Fatalf("Check(valid resources) = %v", err)
	}
	want := gateway(t, 10000, "one")
	checked.Resources()[rds][0].(*route.RouteConfiguration).Name = "changed"
	got := checked.Resources()
	for typeURL, list := range want {
		if len(got[typeURL]) != len(list) || !proto.Equal(got[typeURL][0], list[0]) {
			t.Errorf("%s: checked %v, want %v", typeURL, got[typeURL], list)
		}
	}
	s := New(testLogger(t), testNode)
	if gen, changed, err := s.Push(t.Context(), checked); err != nil || !changed || gen != 1 {
		t.Fatalf("Push(checked) = (%d, %t, %v), want (1, true, nil)", gen, changed, err)
	}
}

// A rejected listener leaves Envoy without a reason to ask for its route configuration, and
// the cache, which answers route requests only when they name every route, has dropped the
// open one. After the rollback the server resets the stream, so that the reconnected Envoy
// gets the restored configuration and later pushes reach it.
func TestRejectedListenerResetsStreamForRollback(t *testing.T) {
	s := New(testLogger(t), testNode)
	mustPush(t, s, gateway(t, 10000, "one"), 1)
	socketPath := startServer(t, s)
	f := handshake(t, s, socketPath, "1")
	if err := s.WaitACK(waitCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	res := gateway(t, 10000, "one")
	res[resource.ListenerType] = append(res[resource.ListenerType], httpListener(t, "second", 10001, "other"))
	res[resource.RouteType] = append(res[resource.RouteType], directRoutes("other", "two"))
	mustPush(t, s, res, 2)
	got := f.collect(map[string]string{cds: "2", lds: "2"})
	f.ack(got[cds])
	f.nack(got[lds], "cannot bind")
	if code := status.Code(f.endError()); code != codes.Unavailable {
		t.Fatalf("stream ended with %v, want Unavailable", code)
	}

	// Envoy reconnects with the versions it accepted and gets the rollback, generation 3.
	g := connectFakeEnvoy(t, socketPath, testNode)
	g.accepted = map[string]string{cds: "2", lds: "1", rds: "1"}
	g.subscribe(cds)
	g.subscribe(lds)
	g.ackAll(map[string]string{cds: "3", lds: "3"})
	g.subscribe(rds, "routes")
	rollback := g.ackAll(map[string]string{rds: "3"})
	if body := routeBody(t, rollback[rds]); body != "one" {
		t.Errorf("routes after the rollback answer %q, want %q", body, "one")
	}
	if err := s.WaitACK(waitCtx(t), 3); err != nil {
		t.Fatal(err)
	}
	// And the next route change reaches it.
	mustPush(t, s, gateway(t, 10000, "four"), 4)
	next := g.ackAll(map[string]string{cds: "4", lds: "4", rds: "4"})
	if body := routeBody(t, next[rds]); body != "four" {
		t.Errorf("routes of generation 4 answer %q", body)
	}
}
