package controller

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/proto"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/xds"
)

// fakeXDS stands in for the xDS server and an Envoy that accepts everything, unless reject
// picks a resource set to refuse. Like the real server, it skips unchanged pushes, refuses to
// resend rejected content, and restores the last accepted content after a rejection.
type fakeXDS struct {
	mu      sync.Mutex
	reject  func(xds.Resources) *xds.NACKError
	pushes  []xds.Resources
	gen     uint64
	served  xds.Resources
	good    xds.Resources
	acked   uint64
	bad     xds.Resources
	nacks   map[uint64]*xds.NACKError
	initial uint64
}

var _ Pusher = (*fakeXDS)(nil)

func newFakeXDS() *fakeXDS { return &fakeXDS{nacks: map[uint64]*xds.NACKError{}} }

func (f *fakeXDS) SetInitialGeneration(gen uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen, f.initial = gen, gen
	return nil
}

func (f *fakeXDS) Push(_ context.Context, checked *xds.Checked) (uint64, bool, error) {
	res := checked.Resources()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.served != nil && sameResources(f.served, res) {
		return f.gen, false, nil
	}
	if f.bad != nil && sameResources(f.bad, res) {
		return f.gen, false, fmt.Errorf("push: unchanged since envoy rejected it: %w", f.nacks[f.gen-1])
	}
	f.gen++
	f.pushes = append(f.pushes, res)
	if f.reject != nil {
		if n := f.reject(res); n != nil {
			n.Generation = f.gen
			f.nacks[f.gen] = n
			f.bad = res
			// The server rolls back to the last good content as a new generation.
			f.gen++
			f.served = f.good
			f.acked = f.gen
			return f.gen - 1, true, nil
		}
	}
	f.served, f.good, f.acked, f.bad = res, res, f.gen, nil
	return f.gen, true, nil
}

func (f *fakeXDS) WaitACK(_ context.Context, gen uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.nacks[gen]; n != nil {
		return n
	}
	return nil
}

func (f *fakeXDS) Status() xds.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return xds.Status{PushedGeneration: f.gen, ACKedGeneration: f.acked, Connected: true}
}

func (f *fakeXDS) pushCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.pushes)
}

func sameResources(a, b xds.Resources) bool {
	for _, typeURL := range []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType} {
		x, y := byName(a[typeURL]), byName(b[typeURL])
		if len(x) != len(y) {
			return false
		}
		for name, r := range x {
			if o, ok := y[name]; !ok || !proto.Equal(r, o) {
				return false
			}
		}
	}
	return true
}

const gatewayYAML = `apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: web}
spec: {bindAddress: 127.0.0.1, bindPort: 18080}
`

func upstreamYAML(name string, port int) string {
	return fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: %s}
spec: {static: {hosts: [{address: 127.0.0.1, port: %d}]}}
`, name, port)
}

func vsYAML(name, domain, upstream string) string {
	return fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: %s}
spec:
  domains: [%s]
  routes:
  - match: {prefix: /}
    upstream: %s
`, name, domain, upstream)
}

// harness is a controller reading one file whose content the test sets.
type harness struct {
	t    *testing.T
	ctrl *Controller
	xds  *fakeXDS
	logs *bytes.Buffer
	mu   sync.Mutex
	data string
	dir  string
}

func newHarness(t *testing.T, data string, strict bool) *harness {
	h := &harness{t: t, xds: newFakeXDS(), logs: &bytes.Buffer{}, data: data, dir: t.TempDir()}
	h.ctrl = New(Options{
		Read: func() ([]config.SourceFile, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			return []config.SourceFile{{Name: "portico.yaml", Data: h.data}}, nil
		},
		XDS:      h.xds,
		Logger:   slog.New(slog.NewTextHandler(syncWriter{&h.mu, h.logs}, nil)),
		StateDir: h.dir,
		Strict:   strict,
	})
	// t.Context is done before cleanups run, so this cleanup, which runs before the removal
	// of the state directory, waits for the last known good to be written.
	t.Cleanup(h.ctrl.Wait)
	return h
}

type syncWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (s syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (h *harness) set(data string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.data = data
}

func (h *harness) logText() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logs.String()
}

func (h *harness) resource(kind, name string) ResourceStatus {
	h.t.Helper()
	for _, r := range h.ctrl.Status().Resources {
		if r.Kind == kind && r.Name == name {
			return r
		}
	}
	h.t.Fatalf("no status for %s %s in %+v", kind, name, h.ctrl.Status().Resources)
	return ResourceStatus{}
}

// eventually polls cond until it holds or a deadline passes: the controller follows Envoy's
// verdicts on its own goroutine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func validConfig() string {
	return gatewayYAML + upstreamYAML("a", 9001) + upstreamYAML("b", 9002) +
		vsYAML("shop", "shop.example.com", "a") + vsYAML("blog", "blog.example.com", "a")
}

func TestInvalidChangeChangesNothing(t *testing.T) {
	h := newHarness(t, validConfig(), false)
	gen, err := h.ctrl.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	pushes := h.xds.pushCount()
	broken := strings.Replace(validConfig(), "port: 9001", "port: 90001", 1) // an Upstream error: whole change
	h.set(broken)
	for range 3 {
		if got := h.ctrl.Reload(t.Context()); got != ResultInvalid {
			t.Fatalf("Reload = %s, want %s", got, ResultInvalid)
		}
	}
	if h.xds.pushCount() != pushes {
		t.Fatalf("an invalid change pushed %d times", h.xds.pushCount()-pushes)
	}
	st := h.ctrl.Status()
	if st.Generation.Current != gen || st.Reloads[ResultInvalid] != 3 {
		t.Errorf("status = %+v, want generation %d still current and 3 invalid reloads counted", st, gen)
	}
	if n := strings.Count(h.logText(), "port 90001 is out of range"); n != 1 {
		t.Errorf("the same failure was logged %d times, want once:\n%s", n, h.logText())
	}
	up := h.resource(config.KindUpstream, "a")
	if up.State != StateRejected || !strings.Contains(strings.Join(up.Reasons, "\n"), "portico.yaml:") {
		t.Errorf("Upstream a status = %+v, want Rejected naming the file", up)
	}
	if st.LastReload == nil || st.LastReload.Result != ResultInvalid || len(st.LastReload.Problems) == 0 {
		t.Errorf("last reload = %+v, want the invalid result with its problems", st.LastReload)
	}

	// Fixing it applies, and the same mistake made again later is logged again.
	h.set(validConfig())
	if got := h.ctrl.Reload(t.Context()); got != ResultUnchanged {
		t.Fatalf("Reload after the fix = %s, want %s (same content as served)", got, ResultUnchanged)
	}
	if got := h.resource(config.KindUpstream, "a"); got.State != StateAccepted {
		t.Errorf("Upstream a after the fix = %+v, want Accepted", got)
	}
	h.set(broken)
	h.ctrl.Reload(t.Context())
	if n := strings.Count(h.logText(), "port 90001 is out of range"); n != 2 {
		t.Errorf("a failure after a fix was logged %d times in all, want 2", n)
	}
}

func TestBrokenVirtualServiceIsIsolated(t *testing.T) {
	h := newHarness(t, validConfig(), false)
	if _, err := h.ctrl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	next := gatewayYAML + upstreamYAML("a", 9001) + upstreamYAML("b", 9002) +
		vsYAML("shop", "shop.example.com", "nowhere") + vsYAML("blog", "blog.example.com", "b")
	h.set(next)
	if got := h.ctrl.Reload(t.Context()); got != ResultPartial {
		t.Fatalf("Reload = %s, want %s", got, ResultPartial)
	}
	cfg := h.ctrl.Current()
	routes := map[string]string{}
	for _, vs := range cfg.VirtualServices {
		routes[vs.Metadata.Name] = vs.Spec.Routes[0].Upstream
	}
	if routes["shop"] != "a" || routes["blog"] != "b" {
		t.Errorf("served routes %v, want shop's last good version (a) and blog's change (b)", routes)
	}
	shop := h.resource(config.KindVirtualService, "shop")
	if shop.State != StateRejected || !strings.Contains(strings.Join(shop.Reasons, "\n"), `"nowhere" is not defined`) ||
		!slices.Contains(shop.Reasons, "its previous version keeps serving") {
		t.Errorf("shop = %+v, want Rejected with the reason and that its previous version serves", shop)
	}
	if blog := h.resource(config.KindVirtualService, "blog"); blog.State != StateAccepted {
		t.Errorf("blog = %+v, want Accepted", blog)
	}
}

func TestUnchangedConfigIsNotPushed(t *testing.T) {
	h := newHarness(t, validConfig(), false)
	gen, err := h.ctrl.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A comment changes the file, not the configuration.
	h.set("# a comment\n" + validConfig())
	if got := h.ctrl.Reload(t.Context()); got != ResultUnchanged {
		t.Fatalf("Reload = %s, want %s", got, ResultUnchanged)
	}
	if st := h.ctrl.Status(); st.Generation.Current != gen || st.Generation.Served != gen || st.Reloads[ResultUnchanged] != 1 || h.xds.pushCount() != 1 {
		t.Errorf("status %+v after %d pushes; want generation %d unchanged and one push", st, h.xds.pushCount(), gen)
	}
}

func TestEnvoyRejectionIsMappedAndNotResent(t *testing.T) {
	h := newHarness(t, validConfig(), false)
	if _, err := h.ctrl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first generation ready", func() bool { return h.ctrl.Status().Ready })
	const message = "Error adding/updating listener(s) web: cannot bind '127.0.0.1:18080': Address already in use"
	h.xds.reject = func(res xds.Resources) *xds.NACKError {
		if len(res[resource.ClusterType]) == 3 {
			return &xds.NACKError{TypeURL: resource.ListenerType, Names: []string{"web"}, Message: message}
		}
		return nil
	}
	h.set(validConfig() + upstreamYAML("c", 9003))
	h.ctrl.Reload(t.Context())
	eventually(t, "the rejection is recorded", func() bool { return h.resource(config.KindGateway, "web").State == StateRejected })
	web := h.resource(config.KindGateway, "web")
	if !strings.Contains(strings.Join(web.Reasons, "\n"), "envoy rejected it: "+message) {
		t.Errorf("Gateway web = %+v, want Envoy's reason", web)
	}
	st := h.ctrl.Status()
	if st.Ready || !strings.Contains(st.NotReadyReason, "envoy rejected generation") {
		t.Errorf("ready=%v (%q), want not ready because of the rejection", st.Ready, st.NotReadyReason)
	}
	pushes := h.xds.pushCount()
	if got := h.ctrl.Reload(t.Context()); got != ResultRejected || h.xds.pushCount() != pushes {
		t.Errorf("reload of the rejected files = %s with %d new pushes, want %s and none", got, h.xds.pushCount()-pushes, ResultRejected)
	}
	// Back to the served configuration: ready again.
	h.set(validConfig())
	h.ctrl.Reload(t.Context())
	eventually(t, "ready after reverting", func() bool { return h.ctrl.Status().Ready })
	if web := h.resource(config.KindGateway, "web"); web.State != StateAccepted {
		t.Errorf("Gateway web after reverting = %+v", web)
	}
}

func TestLastKnownGood(t *testing.T) {
	h := newHarness(t, validConfig(), false)
	gen, err := h.ctrl.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var lg *LastGood
	eventually(t, "last known good saved", func() bool {
		lg, _ = ReadLastGood(h.dir)
		return lg != nil
	})
	if lg.Generation != gen || len(lg.Files) != 1 || lg.Files[0].Name != "portico.yaml" || lg.Files[0].Data != validConfig() {
		t.Fatalf("last known good = %+v, want generation %d with portico.yaml as written", lg, gen)
	}

	broken := "apiVersion: portico.dev/v1\nkind: [\n"
	t.Run("start with broken files serves it", func(t *testing.T) {
		h2 := newHarness(t, broken, false)
		h2.dir = h.dir
		h2.ctrl.o.StateDir = h.dir
		gen2, err := h2.ctrl.Start(t.Context())
		if err != nil {
			t.Fatalf("Start = %v, want the last known good served", err)
		}
		if gen2 != gen+1 || h2.xds.initial != gen {
			t.Errorf("generation %d (initial %d), want numbering to continue from %d", gen2, h2.xds.initial, gen)
		}
		st := h2.ctrl.Status()
		if st.Source != SourceLastGood || len(h2.ctrl.Current().VirtualServices) != 2 {
			t.Errorf("source %q, want %q serving both VirtualServices", st.Source, SourceLastGood)
		}
		logs := h2.logText()
		if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "serving the last known good configuration") || !strings.Contains(logs, "portico.yaml:3") {
			t.Errorf("log does not warn that the last known good is served and where the files are broken:\n%s", logs)
		}
	})
	t.Run("another source's is not served", func(t *testing.T) {
		h4 := newHarness(t, broken, false)
		h4.ctrl.o.StateDir = h.dir
		h4.ctrl.o.SourceID = "/some/other/files.yaml"
		if _, err := h4.ctrl.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "invalid YAML") {
			t.Errorf("Start = %v, want the files' error: the saved configuration is another source's", err)
		}
	})
	t.Run("strict refuses", func(t *testing.T) {
		h3 := newHarness(t, broken, true)
		h3.ctrl.o.StateDir = h.dir
		if _, err := h3.ctrl.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "invalid YAML") {
			t.Errorf("strict Start = %v, want the files' error", err)
		}
	})
	t.Run("a partial apply is not saved", func(t *testing.T) {
		before, _ := os.ReadFile(filepath.Join(h.dir, lastGoodFile))
		// blog's change applies; "new" is left out.
		h.set(strings.Replace(validConfig(), "blog.example.com]\n  routes:\n  - match: {prefix: /}\n    upstream: a", "blog.example.com]\n  routes:\n  - match: {prefix: /}\n    upstream: b", 1) +
			vsYAML("new", "new.example.com", "nowhere"))
		if got := h.ctrl.Reload(t.Context()); got != ResultPartial {
			t.Fatalf("Reload = %s", got)
		}
		time.Sleep(50 * time.Millisecond) // nothing to poll for: the file must stay as it is
		after, _ := os.ReadFile(filepath.Join(h.dir, lastGoodFile))
		if !bytes.Equal(before, after) {
			t.Errorf("a partially applied change replaced the last known good configuration")
		}
	})
}

func TestBridgeSteps(t *testing.T) {
	build := func(cfg string) xds.Resources {
		t.Helper()
		p, err := Build(nil, []config.SourceFile{{Name: "c.yaml", Data: cfg}})
		if err != nil {
			t.Fatal(err)
		}
		return p.Resources
	}
	onA := build(gatewayYAML + upstreamYAML("a", 9001) + vsYAML("shop", `"*"`, "a"))
	onB := build(gatewayYAML + upstreamYAML("b", 9002) + vsYAML("shop", `"*"`, "b"))
	bothOnA := build(gatewayYAML + upstreamYAML("a", 9001) + upstreamYAML("b", 9002) + vsYAML("shop", `"*"`, "a"))
	bothOnB := build(gatewayYAML + upstreamYAML("a", 9001) + upstreamYAML("b", 9002) + vsYAML("shop", `"*"`, "b"))

	steps := bridgeSteps(onA, onB)
	if len(steps) != 2 {
		t.Fatalf("moving a route to a new upstream and dropping the old one: %d steps, want 2", len(steps))
	}
	// First the new cluster joins under the old routes, then the routes move while the old
	// cluster stays; the final push removes it.
	if !sameResources(steps[0], bothOnA) || !sameResources(steps[1], bothOnB) {
		t.Errorf("steps = %v", describeSteps(steps))
	}
	for _, s := range steps {
		if _, err := xds.Check(s); err != nil {
			t.Errorf("a step is not servable: %v", err)
		}
	}
	if steps := bridgeSteps(bothOnA, bothOnB); len(steps) != 0 {
		t.Errorf("moving a route between existing upstreams: %d steps, want none", len(steps))
	}
	if steps := bridgeSteps(onA, bothOnB); len(steps) != 1 || !sameResources(steps[0], bothOnA) {
		t.Errorf("adding an upstream and routing to it: %v, want one step adding it first", describeSteps(steps))
	}
}

func describeSteps(steps []xds.Resources) string {
	var out []string
	for _, s := range steps {
		var clusters []string
		for _, c := range s[resource.ClusterType] {
			clusters = append(clusters, cache.GetResourceName(c))
		}
		slices.Sort(clusters)
		out = append(out, fmt.Sprintf("clusters %v, routes %d", clusters, len(s[resource.RouteType])))
	}
	return strings.Join(out, "; ")
}

func TestNACKedResources(t *testing.T) {
	p, err := Build(nil, []config.SourceFile{{Name: "c.yaml", Data: validConfig()}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := p.Config
	tests := []struct {
		name string
		nack xds.NACKError
		want []string
	}{
		{"listener named in the message", xds.NACKError{TypeURL: resource.ListenerType, Names: []string{"web", "web2"}, Message: "error adding listener(s) web2: cannot bind"}, []string{"Gateway/web2"}},
		{"listener not named", xds.NACKError{TypeURL: resource.ListenerType, Names: []string{"web"}, Message: "something"}, []string{"Gateway/web"}},
		{"virtual host in a route configuration", xds.NACKError{TypeURL: resource.RouteType, Names: []string{"web"}, Message: "duplicate domain in virtual host blog."}, []string{"VirtualService/blog"}},
		{"route configuration", xds.NACKError{TypeURL: resource.RouteType, Names: []string{"web"}, Message: "route config web is bad"}, []string{"Gateway/web"}},
		{"cluster", xds.NACKError{TypeURL: resource.ClusterType, Names: []string{"a", "b"}, Message: "cluster b: bad"}, []string{"Upstream/b"}},
		{"endpoints", xds.NACKError{TypeURL: resource.EndpointType, Names: []string{"a"}, Message: "bad"}, []string{"Upstream/a"}},
		{"name inside a longer word is not a mention", xds.NACKError{TypeURL: resource.ClusterType, Names: []string{"a", "b"}, Message: "bad cluster"}, []string{"Upstream/a", "Upstream/b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := refNames(nackedResources(&tc.nack, cfg))
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	nack := &xds.NACKError{Generation: 3, Message: "bad"}
	tests := []struct {
		name    string
		xs      xds.Status
		current uint64
		nack    *xds.NACKError
		ready   bool
	}{
		{"acked", xds.Status{Connected: true, PushedGeneration: 3, ACKedGeneration: 3}, 3, nil, true},
		{"nothing pushed", xds.Status{Connected: true}, 0, nil, false},
		{"not connected", xds.Status{PushedGeneration: 3, ACKedGeneration: 3}, 3, nil, false},
		{"waiting", xds.Status{Connected: true, PushedGeneration: 4, ACKedGeneration: 3}, 4, nil, false},
		{"rejected, rolled back and acked", xds.Status{Connected: true, PushedGeneration: 4, ACKedGeneration: 4}, 3, nack, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ready, reason := readiness(tc.xs, tc.current, tc.nack)
			if ready != tc.ready || (!ready && reason == "") {
				t.Errorf("readiness = %v %q, want %v with a reason when not ready", ready, reason, tc.ready)
			}
		})
	}
}

func TestReloadPushesBridgeSteps(t *testing.T) {
	onA := gatewayYAML + upstreamYAML("a", 9001) + vsYAML("shop", "shop.example.com", "a")
	h := newHarness(t, onA, false)
	if _, err := h.ctrl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "first generation ready", func() bool { return h.ctrl.Status().Ready })
	h.set(gatewayYAML + upstreamYAML("b", 9002) + vsYAML("shop", "shop.example.com", "b"))
	if got := h.ctrl.Reload(t.Context()); got != ResultApplied {
		t.Fatalf("Reload = %s", got)
	}
	h.xds.mu.Lock()
	pushes := slices.Clone(h.xds.pushes)
	h.xds.mu.Unlock()
	var got []string
	for _, p := range pushes {
		got = append(got, describeSteps([]xds.Resources{p}))
	}
	want := []string{
		"clusters [a], routes 1",   // start
		"clusters [a b], routes 1", // b joins under the old route
		"clusters [a b], routes 1", // the route moves to b
		"clusters [b], routes 1",   // a leaves
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pushes %v, want %v", got, want)
	}
	routeTo := func(res xds.Resources) string {
		return res[resource.RouteType][0].(*routev3.RouteConfiguration).GetVirtualHosts()[0].GetRoutes()[0].GetRoute().GetCluster()
	}
	if routeTo(pushes[1]) != "a" || routeTo(pushes[2]) != "b" || routeTo(pushes[3]) != "b" {
		t.Errorf("routes point at %s, %s, %s; want a, b, b", routeTo(pushes[1]), routeTo(pushes[2]), routeTo(pushes[3]))
	}
	if st := h.ctrl.Status(); st.Generation.Current != 4 {
		t.Errorf("current generation %d, want 4 (the final push)", st.Generation.Current)
	}
}

// Build translates what isolation keeps, even when a Gateway names the left-out VirtualService.
func TestBuildWithLeftOutVirtualService(t *testing.T) {
	gw := strings.Replace(gatewayYAML, "bindPort: 18080}", "bindPort: 18080, virtualServices: [shop, blog]}", 1)
	p, err := Build(nil, []config.SourceFile{{Name: "c.yaml", Data: gw + upstreamYAML("a", 9001) +
		vsYAML("shop", "shop.example.com", "nowhere") + vsYAML("blog", "blog.example.com", "a")}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Complete() || len(p.Rejected) != 1 || p.Rejected[0].Name != "shop" {
		t.Fatalf("rejected %+v, want shop alone", p.Rejected)
	}
	rc := p.Resources[resource.RouteType][0].(*routev3.RouteConfiguration)
	if len(rc.GetVirtualHosts()) != 1 || rc.GetVirtualHosts()[0].GetName() != "blog" {
		t.Errorf("virtual hosts %v, want blog only", rc.GetVirtualHosts())
	}
}

func TestGenerationsContinueAfterPartialApply(t *testing.T) {
	h := newHarness(t, validConfig(), false)
	if _, err := h.ctrl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "last known good saved", func() bool {
		lg, _ := ReadLastGood(h.dir)
		return lg != nil
	})
	h.set(strings.Replace(validConfig(), "blog.example.com]\n  routes:\n  - match: {prefix: /}\n    upstream: a", "blog.example.com]\n  routes:\n  - match: {prefix: /}\n    upstream: b", 1) +
		vsYAML("new", "new.example.com", "nowhere"))
	if got := h.ctrl.Reload(t.Context()); got != ResultPartial {
		t.Fatalf("Reload = %s", got)
	}
	last := h.ctrl.Status().Generation.Current
	if lg, _ := ReadLastGood(h.dir); lg == nil || lg.Generation >= last {
		t.Fatalf("last known good %+v: the partial generation %d must not be saved as one", lg, last)
	}
	h2 := newHarness(t, validConfig(), false)
	h2.ctrl.o.StateDir = h.dir
	gen, err := h2.ctrl.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if gen != last+1 {
		t.Errorf("first generation after restart %d, want %d", gen, last+1)
	}
}
