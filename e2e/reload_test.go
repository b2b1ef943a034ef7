package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portico-gw/portico/controller"
	"github.com/portico-gw/portico/internal/envoytest"
)

// configMap lays out dir the way the kubelet mounts a ConfigMap: portico.yaml is a symlink
// through "..data", which points at a timestamped directory holding the real file.
type configMap struct {
	t   *testing.T
	dir string
	n   int
}

func newConfigMap(t *testing.T, content string) *configMap {
	c := &configMap{t: t, dir: t.TempDir()}
	c.publish(content)
	if err := os.Symlink(filepath.Join("..data", "portico.yaml"), filepath.Join(c.dir, "portico.yaml")); err != nil {
		t.Fatal(err)
	}
	return c
}

// publish writes a new timestamped directory and swaps "..data" to it atomically: a new
// symlink renamed over the old one. The previous directory is removed, as the kubelet does.
func (c *configMap) publish(content string) {
	c.t.Helper()
	c.n++
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", c.n, c.n)
	if err := os.Mkdir(filepath.Join(c.dir, ts), 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, ts, "portico.yaml"), []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
	old, _ := os.Readlink(filepath.Join(c.dir, "..data"))
	if err := os.Symlink(ts, filepath.Join(c.dir, "..data_tmp")); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(c.dir, "..data_tmp"), filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(c.dir, old)); err != nil {
			c.t.Fatal(err)
		}
	}
}

func TestReloadOnConfigMapSwap(t *testing.T) {
	port := envoytest.FreePort(t)
	cm := newConfigMap(t, gatewayYAML(port)+directVirtualService("shop", `"*"`, "v1"))
	p := start(t, cm.dir, nil, "-c", cm.dir, "--envoy-path", envoytest.Binary(t))
	p.waitReady()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "", base+"/", 200, "v1")
	cm.publish(gatewayYAML(port) + directVirtualService("shop", `"*"`, "v2"))
	expectBody(t, "", base+"/", 200, "v2")
	cm.publish(gatewayYAML(port) + directVirtualService("shop", `"*"`, "v3"))
	expectBody(t, "", base+"/", 200, "v3")
}

func TestReloadOnRenameSaveInDirectory(t *testing.T) {
	port := envoytest.FreePort(t)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "gateway.yaml"), gatewayYAML(port))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "teams", "shop"), 0o755))
	routes := filepath.Join(dir, "teams", "shop", "routes.yaml")
	writeFile(t, routes, directVirtualService("shop", `"*"`, "v1"))
	p := start(t, dir, nil, "-c", dir, "--envoy-path", envoytest.Binary(t))
	p.waitReady()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "", base+"/", 200, "v1")
	// writeFile saves as editors do: a temporary file renamed over the old one.
	writeFile(t, routes, directVirtualService("shop", `"*"`, "v2"))
	expectBody(t, "", base+"/", 200, "v2")
	writeFile(t, routes, directVirtualService("shop", `"*"`, "v3"))
	expectBody(t, "", base+"/", 200, "v3")
	// A directory created later is watched too.
	must(os.MkdirAll(filepath.Join(dir, "teams", "blog"), 0o755))
	writeFile(t, filepath.Join(dir, "teams", "blog", "routes.yaml"), directVirtualService("blog", "blog.example.com", "blog"))
	expectBody(t, "blog.example.com", base+"/", 200, "blog")
}

// TestReloadOnSIGHUP reloads on the signal alone: nothing changed on disk, so the reload is
// counted as unchanged and no generation is pushed.
func TestReloadOnSIGHUP(t *testing.T) {
	port := envoytest.FreePort(t)
	addr, flag := adminAddr(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+directVirtualService("shop", `"*"`, "v1"))
	p := startReady(t, cfg, flag...)
	expectReadyz(t, addr, 200, "ready")
	before, err := porticoStatus(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the SIGHUP reload is counted", func() error {
		st, err := porticoStatus(t, addr)
		if err != nil {
			return err
		}
		if st.Reloads[controller.ResultUnchanged] != 1 {
			return fmt.Errorf("reloads %v", st.Reloads)
		}
		if st.Generation != before.Generation {
			return fmt.Errorf("generation moved from %+v to %+v without a change", before.Generation, st.Generation)
		}
		return nil
	})
	if !strings.Contains(p.stderr.String(), "SIGHUP: reloading the configuration") {
		t.Errorf("no SIGHUP log line")
	}
	select {
	case <-p.done:
		t.Fatalf("portico exited on SIGHUP: %v", p.exitErr)
	default:
	}
}

// trafficResult counts a client loop's answers.
type trafficResult struct {
	ok, failed atomic.Int64
	bodies     sync.Map // body -> count
	mu         sync.Mutex
	failures   []string
	// wait blocks until the loop has ended.
	wait func()
}

// drive sends GETs to url from two clients at about 200 requests per second in all, for d.
func drive(url string, d time.Duration) *trafficResult {
	r := &trafficResult{}
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for time.Now().Before(deadline) {
				<-tick.C
				code, body, err := get("", url)
				if err != nil || code/100 != 2 {
					r.failed.Add(1)
					r.mu.Lock()
					if len(r.failures) < 10 {
						r.failures = append(r.failures, fmt.Sprintf("%d %q %v", code, body, err))
					}
					r.mu.Unlock()
					continue
				}
				r.ok.Add(1)
				prefix, _, _ := strings.Cut(body, " ")
				n, _ := r.bodies.LoadOrStore(prefix, new(atomic.Int64))
				n.(*atomic.Int64).Add(1)
			}
		}()
	}
	r.wait = wg.Wait
	return r
}

// TestRouteMovesUnderTraffic moves a route between upstreams while clients send requests, and
// expects not one failed request: Envoy gets the new cluster and its endpoints before the
// route that uses it, and loses the old cluster only after no route uses it.
func TestRouteMovesUnderTraffic(t *testing.T) {
	// Short names: the test's temporary directory holds portico's sockets.
	tests := []struct {
		name     string
		from, to func(port int, a, b *backend) string
	}{
		{
			// Between existing upstreams.
			name: "existing",
			from: func(port int, a, b *backend) string {
				return gatewayYAML(port) + upstreamVirtualService("shop", `"*"`, "a") + a.upstreamYAML() + b.upstreamYAML()
			},
			to: func(port int, a, b *backend) string {
				return gatewayYAML(port) + upstreamVirtualService("shop", `"*"`, "b") + a.upstreamYAML() + b.upstreamYAML()
			},
		},
		{
			// To an upstream added in the same edit, removing the old one.
			name: "added",
			from: func(port int, a, b *backend) string {
				return gatewayYAML(port) + upstreamVirtualService("shop", `"*"`, "a") + a.upstreamYAML()
			},
			to: func(port int, a, b *backend) string {
				return gatewayYAML(port) + upstreamVirtualService("shop", `"*"`, "b") + b.upstreamYAML()
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newBackend(t, "a"), newBackend(t, "b")
			port := envoytest.FreePort(t)
			cfg := filepath.Join(t.TempDir(), "portico.yaml")
			writeFile(t, cfg, tc.from(port, a, b))
			startReady(t, cfg)
			url := fmt.Sprintf("http://127.0.0.1:%d/x", port)
			expectBody(t, "", url, 200, "a /x")

			traffic := drive(url, 3*time.Second)
			time.Sleep(time.Second) // let traffic flow on the old route first
			writeFile(t, cfg, tc.to(port, a, b))
			traffic.wait()

			if n := traffic.failed.Load(); n > 0 {
				t.Errorf("%d of %d requests failed during the move, e.g. %v", n, n+traffic.ok.Load(), traffic.failures)
			}
			count := func(name string) int64 {
				if v, ok := traffic.bodies.Load(name); ok {
					return v.(*atomic.Int64).Load()
				}
				return 0
			}
			if count("a") == 0 || count("b") == 0 {
				t.Errorf("answers: a=%d b=%d; want both (the move happened during the traffic)", count("a"), count("b"))
			}
			if traffic.ok.Load() < 300 {
				t.Errorf("only %d requests in 3s: the client loop did not run as intended", traffic.ok.Load())
			}
			expectBody(t, "", url, 200, "b /x")
		})
	}
}
