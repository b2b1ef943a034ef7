package xds

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/portico-gw/portico/internal/envoytest"
	"github.com/portico-gw/portico/internal/syncbuf"
)

// TestRealEnvoyAppliesAndRejects drives the real Envoy through two accepted generations and one
// it rejects, checking what it serves after each and that the rejected one was sent only once.
func TestRealEnvoyAppliesAndRejects(t *testing.T) {
	bin := envoytest.Binary(t)
	s := New(testLogger(t), testNode)
	socketPath := startServer(t, s)
	port := uint32(envoytest.FreePort(t))
	mustPush(t, s, gateway(t, port, "gen1"), 1)
	envoy := startEnvoy(t, bin, socketPath)
	target := fmt.Sprintf("http://127.0.0.1:%d/", port)

	waitACK(t, s, envoy, 1)
	envoy.waitBody(t, target, "gen1")

	mustPush(t, s, gateway(t, port, "gen2"), 2)
	waitACK(t, s, envoy, 2)
	envoy.waitBody(t, target, "gen2")

	// Two virtual hosts claiming the same domain: the snapshot is consistent, Envoy rejects it.
	bad := gateway(t, port, "gen3")
	bad[resource.RouteType][0] = directRoutes("routes", "gen3", []string{"*"}, []string{"*"})
	mustPush(t, s, bad, 3)
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	err := s.WaitACK(ctx, 3)
	var nack *NACKError
	if !errors.As(err, &nack) {
		t.Fatalf("WaitACK of the invalid routes = %v, want a *NACKError\n%s", err, envoy.stderr())
	}
	if nack.Generation != 3 || nack.TypeURL != resource.RouteType || !strings.Contains(nack.Message, "domain") {
		t.Fatalf("NACKError = %+v, want generation 3 routes rejected over a duplicate domain", nack)
	}
	t.Logf("Envoy's rejection: %v", nack)

	// Envoy accepts the rollback (generation 4, generation 2's content) and keeps serving gen2.
	waitACK(t, s, envoy, 4)
	if st := s.Status(); st.RollbackOf != 3 || st.RestoredGeneration != 2 || st.ACKedGeneration != 4 {
		t.Fatalf("Status = %+v, want generation 4 ACKed as a rollback of 3 restoring 2", st)
	}
	envoy.waitBody(t, target, "gen2")
	// Envoy counts each rejected route update: one means generation 3 was sent exactly once.
	if got := envoy.stat(t, "http.ingress.rds.routes.update_rejected"); got != 1 {
		t.Fatalf("Envoy rejected the route update %d times, want exactly once", got)
	}
}

// runningEnvoy is an Envoy process started for one test.
type runningEnvoy struct {
	admin  string
	exited chan struct{}
	out    *syncbuf.Buffer
}

// startEnvoy boots Envoy from a minimal bootstrap pointing ADS at socketPath and kills it when
// the test ends.
func startEnvoy(t *testing.T, bin, socketPath string) *runningEnvoy {
	t.Helper()
	dir := t.TempDir()
	bootstrap := filepath.Join(dir, "bootstrap.yaml")
	adminPath := filepath.Join(dir, "admin-address")
	if err := os.WriteFile(bootstrap, []byte(fmt.Sprintf(bootstrapTemplate, testNode, socketPath)), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &runningEnvoy{exited: make(chan struct{}), out: &syncbuf.Buffer{}}
	// Hot restart is off so that concurrent Envoys on this machine do not share memory.
	cmd := exec.Command(bin, "-c", bootstrap, "--concurrency", "1", "-l", "warn",
		"--admin-address-path", adminPath, "--disable-hot-restart")
	cmd.Stdout = e.out
	cmd.Stderr = e.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start envoy: %v", err)
	}
	go func() {
		cmd.Wait()
		close(e.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-e.exited
		if t.Failed() {
			t.Logf("envoy output:\n%s", e.out.String())
		}
	})
	e.poll(t, "Envoy writes its admin address", func() bool {
		b, err := os.ReadFile(adminPath)
		e.admin = strings.TrimSpace(string(b))
		return err == nil && e.admin != ""
	})
	return e
}

const bootstrapTemplate = `
node:
  id: %q
  cluster: portico
admin:
  address:
    socket_address: {address: 127.0.0.1, port_value: 0}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    grpc_services:
    - envoy_grpc: {cluster_name: portico_xds}
  lds_config: {ads: {}, resource_api_version: V3}
  cds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
  - name: portico_xds
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: portico_xds
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              pipe: {path: %q}
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
`

func (e *runningEnvoy) stderr() string { return e.out.String() }

// poll waits for cond like eventually, but gives up at once if Envoy has exited.
func (e *runningEnvoy) poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventually(t, what, func() bool {
		select {
		case <-e.exited:
			t.Fatalf("envoy exited while waiting until %s:\n%s", what, e.out.String())
		default:
		}
		return cond()
	})
}

// waitACK waits for Envoy to apply generation gen.
func waitACK(t *testing.T, s *Server, e *runningEnvoy, gen uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.WaitACK(ctx, gen) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitACK(%d): %v", gen, err)
		}
	case <-e.exited:
		t.Fatalf("envoy exited while waiting for generation %d:\n%s", gen, e.out.String())
	}
}

var httpClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// waitBody polls url until it answers 200 with body want.
func (e *runningEnvoy) waitBody(t *testing.T, url, want string) {
	t.Helper()
	var last string
	e.poll(t, fmt.Sprintf("GET %s answers %q", url, want), func() bool {
		resp, err := httpClient.Get(url)
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		last = fmt.Sprintf("%d %q %v", resp.StatusCode, body, err)
		return err == nil && resp.StatusCode == http.StatusOK && string(body) == want
	})
	t.Logf("GET %s: %s", url, last)
}

// stat reads one counter from Envoy's admin interface.
func (e *runningEnvoy) stat(t *testing.T, name string) int {
	t.Helper()
	resp, err := httpClient.Get("http://" + e.admin + "/stats?filter=" + url.QueryEscape("^"+regexp.QuoteMeta(name)+"$"))
	if err != nil {
		t.Fatalf("read envoy stats: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ": ")
		if ok && key == name {
			n, err := strconv.Atoi(value)
			if err != nil {
				t.Fatalf("stat %s = %q: %v", name, value, err)
			}
			return n
		}
	}
	t.Fatalf("envoy has no stat %s (read error: %v)", name, sc.Err())
	return 0
}
