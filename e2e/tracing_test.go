package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/portico-gw/portico/internal/envoytest"
)

// span is what the test collector keeps of one received span.
type span struct {
	service string
	traceID string
	attrs   map[string]string
}

// spanCollector is an OTLP/gRPC trace collector: the TraceService's Export, keeping spans.
type spanCollector struct {
	mu    sync.Mutex
	spans []span
}

// traceServiceDesc serves OTLP's TraceService/Export. The request is decoded as TracesData,
// which OTLP defines with the same fields as ExportTraceServiceRequest, and the empty answer
// is a valid ExportTraceServiceResponse; so the collector package (and the HTTP gateway it
// drags in) is not needed.
var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler: func(srv any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var req tracepb.TracesData
			if err := dec(&req); err != nil {
				return nil, err
			}
			srv.(*spanCollector).add(&req)
			return &emptypb.Empty{}, nil
		},
	}},
}

func (c *spanCollector) add(req *tracepb.TracesData) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		var service string
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				attrs := map[string]string{}
				for _, a := range s.GetAttributes() {
					attrs[a.GetKey()] = a.GetValue().GetStringValue()
				}
				c.spans = append(c.spans, span{service: service, traceID: hex.EncodeToString(s.GetTraceId()), attrs: attrs})
			}
		}
	}
}

func (c *spanCollector) received() []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]span(nil), c.spans...)
}

func startCollector(t *testing.T) (*spanCollector, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &spanCollector{}
	srv := grpc.NewServer()
	srv.RegisterService(&traceServiceDesc, c)
	go srv.Serve(l)
	t.Cleanup(srv.Stop)
	return c, l.Addr().String()
}

// TestTracingToOTLPCollector: with tracing on, Envoy sends the request's span, carrying the
// route's name, the service name and the Gateway's tags, to an OTLP collector over gRPC, and
// the upstream receives the same trace in its traceparent header.
func TestTracingToOTLPCollector(t *testing.T) {
	collector, collectorAddr := startCollector(t)
	var mu sync.Mutex
	var traceparents []string
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		traceparents = append(traceparents, r.Header.Get("traceparent"))
		mu.Unlock()
		fmt.Fprint(w, "traced")
	})}
	go srv.Serve(backend)
	t.Cleanup(func() { srv.Close() })

	port := envoytest.FreePort(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: web}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  tracing:
    collector: %s
    serviceName: e2e-gateway
    tags: {env: e2e}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  domains: ["*"]
  routes:
  - name: orders
    match: {prefix: /orders}
    upstream: api
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: api}
spec:
  static:
    hosts: [{address: 127.0.0.1, port: %d}]
`, port, collectorAddr, backend.Addr().(*net.TCPAddr).Port))
	startReady(t, cfg)

	// Envoy exports spans in batches of five, or every five seconds.
	const requests = 5
	for i := range requests {
		code, body, err := get("", fmt.Sprintf("http://127.0.0.1:%d/orders/%d", port, i))
		if err != nil || code != 200 || body != "traced" {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
	}
	var spans []span
	eventually(t, 15*time.Second, "the collector receives the requests' spans", func() error {
		if spans = collector.received(); len(spans) < requests {
			return fmt.Errorf("%d spans so far", len(spans))
		}
		return nil
	})
	mu.Lock()
	seen := strings.Join(traceparents, " ")
	mu.Unlock()
	for _, s := range spans {
		if s.service != "e2e-gateway" || s.attrs["portico.route"] != "orders" || s.attrs["env"] != "e2e" {
			t.Errorf("span service %q attributes %v, want service e2e-gateway, portico.route orders, env e2e", s.service, s.attrs)
		}
		// traceparent is version-traceid-spanid-flags: the upstream saw this span's trace.
		if s.traceID == "" || !strings.Contains(seen, "-"+s.traceID+"-") {
			t.Errorf("trace %q of a span reached no upstream request (traceparents: %s)", s.traceID, seen)
		}
	}
}
