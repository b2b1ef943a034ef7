package xds

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	testNode = "portico-test"
	// waitFor bounds every wait on the server or on Envoy in these tests.
	waitFor = 20 * time.Second
)

// testLogger sends the server's log, debug included, to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// socketDir returns a fresh directory with a path short enough for a Unix socket; t.TempDir
// paths can exceed the limit.
func socketDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pxds")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startServer runs s.Serve on a new socket until the test ends and returns the socket path once
// it exists.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	socketPath := filepath.Join(socketDir(t), "run", "xds.sock")
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, socketPath) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(waitFor):
			t.Errorf("Serve did not return %s after its context ended", waitFor)
		}
	})
	eventually(t, "the xds socket exists", func() bool {
		fi, err := os.Lstat(socketPath)
		return err == nil && fi.Mode()&fs.ModeSocket != 0
	})
	return socketPath
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting until %s", waitFor, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// cancelledCtx lets WaitACK report, without blocking, whether its condition already holds.
func cancelledCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

func mustPush(t *testing.T, s *Server, res Resources, wantGen uint64) {
	t.Helper()
	gen, changed, err := push(t.Context(), s, res)
	if err != nil || !changed || gen != wantGen {
		t.Fatalf("Push = (%d, %t, %v), want (%d, true, nil)", gen, changed, err, wantGen)
	}
}

// push checks res and pushes it, as the controller does.
func push(ctx context.Context, s *Server, res Resources) (uint64, bool, error) {
	c, err := Check(res)
	if err != nil {
		return 0, false, err
	}
	return s.Push(ctx, c)
}

// httpListener is a listener on 127.0.0.1:port whose HTTP connection manager takes route
// configuration routeName over ADS.
func httpListener(t *testing.T, name string, port uint32, routeName string) *listener.Listener {
	t.Helper()
	routerConfig, err := anypb.New(&router.Router{})
	if err != nil {
		t.Fatal(err)
	}
	manager, err := anypb.New(&hcm.HttpConnectionManager{
		StatPrefix: name,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			RouteConfigName: routeName,
			ConfigSource: &core.ConfigSource{
				ResourceApiVersion:    core.ApiVersion_V3,
				ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
			},
		}},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       "envoy.filters.http.router",
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: routerConfig},
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &listener.Listener{
		Name: name,
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address:       "127.0.0.1",
			PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
		}}},
		FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listener.Filter_TypedConfig{TypedConfig: manager},
		}}}},
	}
}

// directRoutes answers every request with body; each entry of hostDomains becomes one virtual
// host (a single "*" host when none is given).
func directRoutes(name, body string, hostDomains ...[]string) *route.RouteConfiguration {
	if len(hostDomains) == 0 {
		hostDomains = [][]string{{"*"}}
	}
	rc := &route.RouteConfiguration{Name: name}
	for i, domains := range hostDomains {
		rc.VirtualHosts = append(rc.VirtualHosts, &route.VirtualHost{
			Name:    name + "-host-" + string(rune('a'+i)),
			Domains: domains,
			Routes: []*route.Route{{
				Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
				Action: &route.Route_DirectResponse{DirectResponse: &route.DirectResponseAction{
					Status: 200,
					Body:   &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: body}},
				}},
			}},
		})
	}
	return rc
}

func staticCluster(name string) *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(time.Second),
	}
}

// gateway is a listener on port serving route configuration "routes" that answers body.
func gateway(t *testing.T, port uint32, body string) Resources {
	return Resources{
		resource.ListenerType: {httpListener(t, "ingress", port, "routes")},
		resource.RouteType:    {directRoutes("routes", body)},
	}
}

// fakeEnvoy speaks ADS state-of-the-world to the server the way Envoy does: node on the first
// request, the last accepted version and the answered nonce on every later one, error_detail on
// a rejection.
type fakeEnvoy struct {
	t         *testing.T
	conn      *grpc.ClientConn
	stream    grpc.BidiStreamingClient[discovery.DiscoveryRequest, discovery.DiscoveryResponse]
	nodeID    string
	sentFirst bool
	// accepted and names are, per type URL, the last ACKed version and the subscribed names.
	accepted map[string]string
	names    map[string][]string

	responses chan *discovery.DiscoveryResponse
	ended     chan struct{}
	endErr    error
}

func connectFakeEnvoy(t *testing.T, socketPath, nodeID string) *fakeEnvoy {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+socketPath, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() {
		cancel()
		conn.Close()
	})
	// Connect under a deadline first: the stream itself lives on ctx, which has none.
	connectCtx, connectCancel := context.WithTimeout(ctx, waitFor)
	defer connectCancel()
	conn.Connect()
	for state := conn.GetState(); state != connectivity.Ready; state = conn.GetState() {
		if !conn.WaitForStateChange(connectCtx, state) {
			t.Fatalf("connect to %s: %v (state %s)", socketPath, connectCtx.Err(), state)
		}
	}
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatalf("open ADS stream: %v", err)
	}
	f := &fakeEnvoy{
		t: t, conn: conn, stream: stream, nodeID: nodeID,
		accepted:  make(map[string]string),
		names:     make(map[string][]string),
		responses: make(chan *discovery.DiscoveryResponse, 64),
		ended:     make(chan struct{}),
	}
	go func() {
		defer close(f.ended)
		for {
			resp, err := stream.Recv()
			if err != nil {
				f.endErr = err
				return
			}
			select {
			case f.responses <- resp:
			case <-ctx.Done():
				f.endErr = ctx.Err()
				return
			}
		}
	}()
	return f
}

func (f *fakeEnvoy) send(typeURL, version, nonce, nackMessage string) {
	f.t.Helper()
	req := &discovery.DiscoveryRequest{
		TypeUrl:       typeURL,
		VersionInfo:   version,
		ResponseNonce: nonce,
		ResourceNames: f.names[typeURL],
	}
	if !f.sentFirst {
		req.Node = &core.Node{Id: f.nodeID, Cluster: "portico"}
		f.sentFirst = true
	}
	if nackMessage != "" {
		req.ErrorDetail = &status.Status{Code: 3, Message: nackMessage}
	}
	if err := f.stream.Send(req); err != nil {
		f.t.Fatalf("send %s request: %v", typeURL, err)
	}
}

// subscribe asks for typeURL, by names or by wildcard when none are given.
func (f *fakeEnvoy) subscribe(typeURL string, names ...string) {
	f.t.Helper()
	f.names[typeURL] = names
	f.send(typeURL, f.accepted[typeURL], "", "")
}

func (f *fakeEnvoy) ack(resp *discovery.DiscoveryResponse) {
	f.t.Helper()
	f.accepted[resp.GetTypeUrl()] = resp.GetVersionInfo()
	f.send(resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), "")
}

// nack rejects resp, re-sending the last accepted version as Envoy does.
func (f *fakeEnvoy) nack(resp *discovery.DiscoveryResponse, message string) {
	f.t.Helper()
	f.send(resp.GetTypeUrl(), f.accepted[resp.GetTypeUrl()], resp.GetNonce(), message)
}

// next returns the next response, failing the test if none comes in time.
func (f *fakeEnvoy) next() *discovery.DiscoveryResponse {
	f.t.Helper()
	select {
	case resp := <-f.responses:
		return resp
	case <-f.ended:
		f.t.Fatalf("ADS stream ended while waiting for a response: %v", f.endErr)
	case <-time.After(waitFor):
		f.t.Fatalf("no ADS response within %s", waitFor)
	}
	return nil
}

// collect receives exactly one response for each type in want, checks its version, and returns
// the responses by type. Anything extra that arrives before the set is complete (a resend) fails
// the test.
func (f *fakeEnvoy) collect(want map[string]string) map[string]*discovery.DiscoveryResponse {
	f.t.Helper()
	got := make(map[string]*discovery.DiscoveryResponse, len(want))
	for len(got) < len(want) {
		resp := f.next()
		typeURL := resp.GetTypeUrl()
		wantVersion, ok := want[typeURL]
		if prev, dup := got[typeURL]; dup || !ok {
			f.t.Fatalf("unexpected %s response version %q (already have %v)", typeURL, resp.GetVersionInfo(), prev.GetVersionInfo())
		}
		if resp.GetVersionInfo() != wantVersion {
			f.t.Fatalf("%s response has version %q, want %q", typeURL, resp.GetVersionInfo(), wantVersion)
		}
		got[typeURL] = resp
	}
	return got
}

// ackAll collects one response per type in want and ACKs each.
func (f *fakeEnvoy) ackAll(want map[string]string) map[string]*discovery.DiscoveryResponse {
	f.t.Helper()
	got := f.collect(want)
	for _, resp := range got {
		f.ack(resp)
	}
	return got
}

// hangUp closes the client side and waits until the server has ended the stream, which it does
// only after handling every request sent before.
func (f *fakeEnvoy) hangUp() {
	f.t.Helper()
	if err := f.stream.CloseSend(); err != nil {
		f.t.Fatal(err)
	}
	for {
		select {
		case resp := <-f.responses:
			f.t.Fatalf("unexpected %s response version %q while hanging up", resp.GetTypeUrl(), resp.GetVersionInfo())
		case <-f.ended:
			if !errors.Is(f.endErr, io.EOF) {
				f.t.Fatalf("stream ended with %v, want EOF", f.endErr)
			}
			return
		case <-time.After(waitFor):
			f.t.Fatalf("server did not end the stream within %s", waitFor)
		}
	}
}

// endError waits for the server to end the stream and returns how it ended.
func (f *fakeEnvoy) endError() error {
	f.t.Helper()
	select {
	case <-f.ended:
		return f.endErr
	case <-time.After(waitFor):
		f.t.Fatalf("server did not end the stream within %s", waitFor)
	}
	return nil
}

// routeBody decodes the single route configuration in resp and returns its direct-response body.
func routeBody(t *testing.T, resp *discovery.DiscoveryResponse) string {
	t.Helper()
	if len(resp.GetResources()) != 1 {
		t.Fatalf("route response has %d resources, want 1", len(resp.GetResources()))
	}
	var rc route.RouteConfiguration
	if err := resp.GetResources()[0].UnmarshalTo(&rc); err != nil {
		t.Fatal(err)
	}
	return rc.GetVirtualHosts()[0].GetRoutes()[0].GetDirectResponse().GetBody().GetInlineString()
}
