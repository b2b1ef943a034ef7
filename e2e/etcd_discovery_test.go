package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
	"github.com/portico-gw/portico/internal/syncbuf"
)

// etcdServer is a real etcd on loopback ports with a private data directory.
type etcdServer struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

func startEtcd(t *testing.T) *etcdServer {
	t.Helper()
	bin := requireTool(t, "etcd", "etcd-server")
	client, peer := envoytest.FreePort(t), envoytest.FreePort(t)
	e := &etcdServer{url: fmt.Sprintf("http://127.0.0.1:%d", client), done: make(chan struct{})}
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	out := &syncbuf.Buffer{}
	e.cmd = exec.Command(bin, "--name", "e2e", "--data-dir", filepath.Join(t.TempDir(), "etcd"),
		"--listen-client-urls", e.url, "--advertise-client-urls", e.url,
		"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "e2e="+peerURL)
	e.cmd.Stdout, e.cmd.Stderr = out, out
	if err := e.cmd.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	go func() {
		e.cmd.Wait()
		close(e.done)
	}()
	t.Cleanup(func() {
		e.stop()
		if t.Failed() {
			t.Logf("etcd output:\n%s", out)
		}
	})
	eventually(t, 15*time.Second, "etcd answers", func() error { return e.call("/v3/kv/range", map[string]string{"key": etcdKey("/")}) })
	return e
}

// etcdKey encodes a key or value as etcd's JSON gateway wants it.
func etcdKey(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// call posts a JSON request to etcd's v3 gateway.
func (e *etcdServer) call(path string, body any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := http.Post(e.url+path, "application/json", bytes.NewReader(raw))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: %s", path, resp.Status)
	}
	return nil
}

func (e *etcdServer) put(t *testing.T, key, value string) {
	t.Helper()
	if err := e.call("/v3/kv/put", map[string]string{"key": etcdKey(key), "value": etcdKey(value)}); err != nil {
		t.Fatal(err)
	}
}

func (e *etcdServer) del(t *testing.T, key string) {
	t.Helper()
	if err := e.call("/v3/kv/deleterange", map[string]string{"key": etcdKey(key)}); err != nil {
		t.Fatal(err)
	}
}

func (e *etcdServer) stop() {
	select {
	case <-e.done:
		return
	default:
	}
	_ = e.cmd.Process.Kill()
	<-e.done
}

// hitCounts sends n requests to url and counts the answers by body; a request that fails or
// does not answer 200 is counted under its status or error.
func hitCounts(url string, n int) map[string]int {
	counts := map[string]int{}
	for range n {
		code, body, err := get("", url)
		switch {
		case err != nil:
			counts["error: "+err.Error()]++
		case code != http.StatusOK:
			counts[fmt.Sprintf("%d %s", code, body)]++
		default:
			counts[body]++
		}
	}
	return counts
}

// expectOnly polls until n requests in a row are answered by exactly the backends named.
func expectOnly(t *testing.T, url string, n int, names ...string) time.Duration {
	t.Helper()
	start := time.Now()
	eventually(t, 10*time.Second, fmt.Sprintf("%d requests reach exactly %v", n, names), func() error {
		counts := hitCounts(url, n)
		if len(counts) != len(names) {
			return fmt.Errorf("answers %v", counts)
		}
		for _, name := range names {
			if counts[name+" /"] == 0 {
				return fmt.Errorf("answers %v", counts)
			}
		}
		return nil
	})
	return time.Since(start)
}

// dynamicState is what Envoy's config dump says about the listener and a cluster: when they
// were last updated and from which version. A change of either means Envoy rebuilt it.
func dynamicState(t *testing.T, admin, cluster string) string {
	t.Helper()
	code, body, err := adminGet(admin, "/config_dump")
	if err != nil || code != http.StatusOK {
		t.Fatalf("config dump: %d %v", code, err)
	}
	var dump struct {
		Configs []struct {
			DynamicListeners []struct {
				Name        string `json:"name"`
				ActiveState struct {
					VersionInfo string `json:"version_info"`
					LastUpdated string `json:"last_updated"`
				} `json:"active_state"`
			} `json:"dynamic_listeners"`
			DynamicActiveClusters []struct {
				VersionInfo string `json:"version_info"`
				LastUpdated string `json:"last_updated"`
				Cluster     struct {
					Name string `json:"name"`
				} `json:"cluster"`
			} `json:"dynamic_active_clusters"`
		} `json:"configs"`
	}
	if err := json.Unmarshal([]byte(body), &dump); err != nil {
		t.Fatalf("decode config dump: %v", err)
	}
	var parts []string
	for _, c := range dump.Configs {
		for _, l := range c.DynamicListeners {
			parts = append(parts, fmt.Sprintf("listener %s %s %s", l.Name, l.ActiveState.VersionInfo, l.ActiveState.LastUpdated))
		}
		for _, cl := range c.DynamicActiveClusters {
			if cl.Cluster.Name == cluster {
				parts = append(parts, fmt.Sprintf("cluster %s %s %s", cluster, cl.VersionInfo, cl.LastUpdated))
			}
		}
	}
	if len(parts) != 2 {
		t.Fatalf("config dump: want the listener and cluster %s, got %v", cluster, parts)
	}
	return strings.Join(parts, "; ")
}

// TestEtcdDiscovery: an Upstream's hosts come from a real etcd and follow it live, over EDS
// alone: two keys reach two backends; a deleted key's backend stops getting traffic within a
// bound; a bad value is skipped and shown in status; an empty prefix answers 503; a third key
// adds a backend; with etcd stopped traffic keeps flowing to the last known hosts and status
// and metrics show the degradation. Envoy's process, listener and cluster stay the same
// throughout.
func TestEtcdDiscovery(t *testing.T) {
	etcd := startEtcd(t)
	a, b, c := newBackend(t, "a"), newBackend(t, "b"), newBackend(t, "c")
	etcd.put(t, "/services/web/a", fmt.Sprintf("127.0.0.1:%d", a.addr.Port))
	etcd.put(t, "/services/web/b", fmt.Sprintf(`{"address": "127.0.0.1", "port": %d}`, b.addr.Port))
	etcd.put(t, "/services/other/x", "127.0.0.1:1") // another prefix: never a host of web

	port := envoytest.FreePort(t)
	admin, flag := adminAddr(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop}
spec:
  routes:
  - match: {prefix: /}
    upstream: web
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: web}
spec:
  etcd:
    endpoints: [%s]
    prefix: /services/web/
`, etcd.url))
	p := startReady(t, cfg, flag...)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	pid := p.envoyPID()

	// The first push carries the hosts read before it, so both serve from the start.
	expectOnly(t, url, 20, "a", "b")
	envoyState := dynamicState(t, admin, "web")

	etcd.del(t, "/services/web/a")
	if took := expectOnly(t, url, 20, "b"); took > 5*time.Second {
		t.Errorf("a deleted host kept traffic for %s", took)
	}

	etcd.put(t, "/services/web/bad", "web.internal:80")
	expectState(t, admin, "Upstream", "web", "Warning", `etcd key /services/web/bad skipped: address "web.internal" is not an IP address`)
	if !strings.Contains(p.stderr.String(), "etcd key skipped") {
		t.Error("no log line for the skipped key")
	}
	etcd.del(t, "/services/web/bad")

	etcd.del(t, "/services/web/b")
	expectBody(t, "", url, http.StatusServiceUnavailable, "no healthy upstream")
	etcd.put(t, "/services/web/b", fmt.Sprintf("127.0.0.1:%d", b.addr.Port))
	etcd.put(t, "/services/web/c", fmt.Sprintf(`{"address": "127.0.0.1", "port": %d, "weight": 2}`, c.addr.Port))
	expectOnly(t, url, 30, "b", "c")

	etcd.stop()
	expectState(t, admin, "Upstream", "web", "Warning", "the last known 2 hosts keep serving")
	if counts := hitCounts(url, 30); len(counts) != 2 || counts["b /"] == 0 || counts["c /"] == 0 {
		t.Errorf("with etcd stopped: answers %v, want b and c only", counts)
	}
	eventually(t, 10*time.Second, "the degradation metric", func() error {
		_, body, err := adminGet(admin, "/metrics")
		if err != nil {
			return err
		}
		if !strings.Contains(body, `portico_discovery_degraded{upstream="web"} 1`) {
			return fmt.Errorf("no portico_discovery_degraded 1 for web")
		}
		return nil
	})
	out, err := exec.Command(porticoBin, "status", "--admin-address", admin).Output()
	if err != nil {
		t.Fatalf("portico status: %v", err)
	}
	if !strings.Contains(string(out), "web: etcd "+etcd.url+" prefix /services/web/: 2 hosts") || !strings.Contains(string(out), "DEGRADED") {
		t.Errorf("portico status does not show the discovery and its degradation:\n%s", out)
	}

	if got := p.envoyPID(); got != pid {
		t.Errorf("envoy restarted: pid %d, then %d", pid, got)
	}
	if got := dynamicState(t, admin, "web"); got != envoyState {
		t.Errorf("envoy rebuilt the listener or cluster for host changes:\nbefore %s\nafter  %s", envoyState, got)
	}
}
