package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
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

	"github.com/portico-gw/portico/internal/envoytest"
	"github.com/portico-gw/portico/internal/syncbuf"
)

// requireTool finds a program the test needs: missing it fails under CI=true, where .ci/run
// installs it, and skips elsewhere.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not on PATH: install the %s package", name, pkg)
		}
		t.Skipf("%s is not on PATH (install the %s package)", name, pkg)
	}
	return path
}

// observedConfig is a Gateway on port with a VirtualService and Upstream whose names carry
// dots, which Envoy's statistics would otherwise cut short, and extra Gateway fields.
func observedConfig(port int, api *backend, gatewayExtra string) string {
	return fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: web.edge}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
%s---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: shop.v2}
spec:
  domains: ["*"]
  routes:
  - name: orders
    match: {prefix: /orders}
    upstream: %s
`, port, gatewayExtra, api.name) + api.upstreamYAML()
}

// adminGet fetches path from portico's admin API.
func adminGet(addr, path string) (int, string, error) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// TestMetricsScrapedByPrometheus: a real Prometheus scrapes portico's one /metrics endpoint
// (on --metrics-address), and a PromQL query returns the number of requests the test sent
// through the route, labelled with the user's names; promtool accepts the exposition.
func TestMetricsScrapedByPrometheus(t *testing.T) {
	prometheusBin := requireTool(t, "prometheus", "prometheus")
	promtool := requireTool(t, "promtool", "prometheus")
	api := newBackend(t, "api.v1")
	port := envoytest.FreePort(t)
	addr, adminFlag := adminAddr(t)
	// Prometheus scrapes the metrics-only address, which serves nothing else of the admin API.
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", envoytest.FreePort(t))
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, observedConfig(port, api, ""))
	startReady(t, cfg, append(adminFlag, "--metrics-address", metricsAddr)...)
	if code, _, err := adminGet(metricsAddr, "/status"); err != nil || code != 404 {
		t.Errorf("GET /status on --metrics-address = %d, %v; want 404", code, err)
	}

	const requests = 7
	for i := range requests {
		code, body, err := get("", fmt.Sprintf("http://127.0.0.1:%d/orders/%d", port, i))
		if err != nil || code != 200 || body != fmt.Sprintf("api.v1 /orders/%d", i) {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
	}

	_, exposition, err := adminGet(addr, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"portico_envoy_up 1\n",
		"portico_envoy_ready 1\n",
		`portico_xds_acks_total{type="listener"} `,
		"portico_xds_push_to_ack_seconds_count ",
		`envoy_cluster_upstream_rq_total{envoy_cluster_name="api.v1"} 7` + "\n",
	} {
		if !strings.Contains(exposition, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = strings.NewReader(exposition)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	promAPI := startPrometheus(t, prometheusBin, metricsAddr)
	route := `{envoy_virtual_host="shop.v2",envoy_route="orders"}`
	for query, want := range map[string]string{
		"sum(envoy_vhost_route_upstream_rq_total" + route + ")":                                                                        "7",
		`sum(envoy_vhost_route_upstream_rq_xx_total{envoy_virtual_host="shop.v2",envoy_route="orders",envoy_response_code_class="2"})`: "7",
		// Envoy publishes histograms at its stats flush, every 5 seconds.
		"sum(envoy_vhost_route_upstream_rq_time_seconds_count" + route + ")": "7",
		`sum(portico_ready{job="portico"})`:                                  "1",
	} {
		eventually(t, 20*time.Second, "Prometheus answers "+query+" with "+want, func() error {
			got, err := promQuery(promAPI, query)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("got %q", got)
			}
			return nil
		})
	}
}

// startPrometheus runs Prometheus on a free loopback port, scraping target every second, and
// returns the base URL of its HTTP API once it is ready.
func startPrometheus(t *testing.T, bin, target string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	writeFile(t, cfg, fmt.Sprintf(`global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
scrape_configs:
- job_name: portico
  static_configs: [{targets: [%q]}]
`, target))
	listen := fmt.Sprintf("127.0.0.1:%d", envoytest.FreePort(t))
	out := &syncbuf.Buffer{}
	cmd := exec.Command(bin, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus output:\n%s", out)
		}
	})
	base := "http://" + listen
	eventually(t, 30*time.Second, "prometheus is ready", func() error {
		code, _, err := get("", base+"/-/ready")
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("status %d", code)
		}
		return nil
	})
	return base
}

// promQuery runs an instant PromQL query and returns the single sample's value.
func promQuery(base, query string) (string, error) {
	code, body, err := get("", base+"/api/v1/query?query="+url.QueryEscape(query))
	if err != nil {
		return "", err
	}
	if code != 200 {
		return "", fmt.Errorf("query status %d: %s", code, body)
	}
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		return "", fmt.Errorf("decode %q: %w", body, err)
	}
	if r.Status != "success" || len(r.Data.Result) != 1 {
		return "", fmt.Errorf("no single result yet: %s", body)
	}
	v, _ := r.Data.Result[0].Value[1].(string)
	return v, nil
}

// TestAccessLogFile: requests through a Gateway with an access log produce JSON lines with
// the chosen fields in the file, and the status class filter leaves out what it should.
func TestAccessLogFile(t *testing.T) {
	api := newBackend(t, "api.v1")
	port := envoytest.FreePort(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "access.log")
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, observedConfig(port, api, fmt.Sprintf(`  accessLog:
    path: %s
    fields: [time, method, path, authority, status, duration, bytes, upstream, route, requestID, clientAddress, userAgent, responseFlags]
    filter: {statusClass: [2xx]}
`, logPath)))
	startReady(t, cfg)

	send := func(path, requestID string) int {
		req, err := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", "portico-e2e/1")
		req.Header.Set("X-Request-Id", requestID)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// No route matches /nowhere: a 404 the 2xx filter keeps out of the log.
	if code := send("/nowhere", "req-404"); code != 404 {
		t.Fatalf("GET /nowhere = %d, want 404", code)
	}
	if code := send("/orders/42?x=1", "req-200"); code != 200 {
		t.Fatalf("GET /orders/42 = %d, want 200", code)
	}

	var lines []map[string]any
	eventually(t, 15*time.Second, "the access log holds the request's line", func() error {
		var err error
		lines, err = readJSONLines(logPath)
		if err != nil {
			return err
		}
		if len(lines) == 0 {
			return fmt.Errorf("no lines yet")
		}
		return nil
	})
	if len(lines) != 1 {
		t.Fatalf("access log has %d lines, want the 200's only: %v", len(lines), lines)
	}
	line := lines[0]
	for field, want := range map[string]any{
		"method": "GET", "path": "/orders/42?x=1", "authority": fmt.Sprintf("127.0.0.1:%d", port),
		"status": float64(200), "bytes": float64(len("api.v1 /orders/42")), "upstream": "api.v1",
		"route": "orders", "clientAddress": "127.0.0.1",
		"userAgent": "portico-e2e/1", "responseFlags": "-",
	} {
		if line[field] != want {
			t.Errorf("field %s = %#v, want %#v (line %v)", field, line[field], want, line)
		}
	}
	// An edge Gateway replaces the id a client sends (docs/security.md) and logs its own.
	if id, _ := line["requestID"].(string); len(id) != 36 || id == "req-200" {
		t.Errorf("requestID = %#v, want the UUID Envoy generated in place of the client's", line["requestID"])
	}
	if d, ok := line["duration"].(float64); !ok || d < 0 {
		t.Errorf("duration = %#v, want a number of milliseconds", line["duration"])
	}
	if ts, _ := line["time"].(string); !strings.HasSuffix(ts, "Z") {
		t.Errorf("time = %#v, want an RFC 3339 UTC time", line["time"])
	} else if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
		t.Errorf("time %q: %v", ts, err)
	}
	if len(line) != 13 {
		t.Errorf("line has %d fields, want the 13 chosen: %v", len(line), line)
	}
}

func readJSONLines(path string) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("line %q is not JSON: %w", sc.Text(), err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// TestDemoLogsAccess: the built-in demo has its access log on, to Envoy's standard output,
// which portico forwards to its log.
func TestDemoLogsAccess(t *testing.T) {
	p := start(t, t.TempDir(), nil, "--envoy-path", envoytest.Binary(t))
	p.waitReady()
	expectStatus := func() error {
		code, _, err := get("", "http://127.0.0.1:8080/access-probe")
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("status %d", code)
		}
		return nil
	}
	eventually(t, 10*time.Second, "the demo answers", expectStatus)
	// The text log quotes the JSON line, escaping its quotes.
	want := `\"path\":\"/access-probe\"`
	eventually(t, 10*time.Second, "portico's log carries the request's JSON access log line", func() error {
		if !strings.Contains(p.stderr.String(), want) {
			return fmt.Errorf("no %s in the log yet", want)
		}
		return nil
	})
}

// TestRoutesAndConfigDump: `portico routes` prints the served route table, `portico
// config-dump` the running Envoy's configuration, and `portico status` the listeners, routes
// and Upstream hosts with their health as Envoy sees it, all through the admin API.
func TestRoutesAndConfigDump(t *testing.T) {
	api := newBackend(t, "api.v1")
	port := envoytest.FreePort(t)
	addr, adminFlag := adminAddr(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, observedConfig(port, api, ""))
	startReady(t, cfg, adminFlag...)

	out, err := exec.Command(porticoBin, "routes", "--admin-address", addr).CombinedOutput()
	if err != nil {
		t.Fatalf("portico routes: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "GATEWAY DOMAINS ROUTE MATCH ACTION UPSTREAM STATUS" {
		t.Fatalf("portico routes printed:\n%s\nwant a header and one route", out)
	}
	if got, want := strings.Join(strings.Fields(lines[1]), " "), "web.edge * shop.v2/orders prefix /orders forward api.v1 Accepted"; got != want {
		t.Errorf("route row = %q, want %q", got, want)
	}

	out, err = exec.Command(porticoBin, "status", "--admin-address", addr).CombinedOutput()
	if err != nil {
		t.Fatalf("portico status: %v\n%s", err, out)
	}
	normalized := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		normalized[strings.Join(strings.Fields(l), " ")] = true
	}
	for _, want := range []string{
		fmt.Sprintf("web.edge 127.0.0.1:%d", port),
		"web.edge * shop.v2/orders prefix /orders forward api.v1 Accepted",
		fmt.Sprintf("api.v1 127.0.0.1:%d healthy", api.addr.Port),
	} {
		if !normalized[want] {
			t.Errorf("portico status lacks the line %q:\n%s", want, out)
		}
	}

	// A broken edit is logged as an error, which status shows among the recent ones.
	writeFile(t, cfg, "kind: [")
	eventually(t, 10*time.Second, "portico status shows the rejected change among recent errors", func() error {
		out, err := exec.Command(porticoBin, "status", "--admin-address", addr).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		_, recent, ok := strings.Cut(string(out), "RECENT WARNINGS AND ERRORS\n")
		if !ok || !strings.Contains(recent, "ERROR configuration change rejected, the previous configuration keeps serving") {
			return fmt.Errorf("no such error in:\n%s", out)
		}
		return nil
	})

	out, err = exec.Command(porticoBin, "config-dump", "--admin-address", addr).Output()
	if err != nil {
		t.Fatalf("portico config-dump: %v", err)
	}
	var dump struct {
		Configs []map[string]any `json:"configs"`
	}
	if err := json.Unmarshal(out, &dump); err != nil {
		t.Fatalf("config-dump output is not JSON: %v\n%.500s", err, out)
	}
	types := map[string]bool{}
	for _, c := range dump.Configs {
		typ, _ := c["@type"].(string)
		types[typ[strings.LastIndexByte(typ, '.')+1:]] = true
	}
	for _, want := range []string{"BootstrapConfigDump", "ClustersConfigDump", "ListenersConfigDump", "RoutesConfigDump", "EndpointsConfigDump"} {
		if !types[want] {
			t.Errorf("config dump lacks %s (has %v)", want, types)
		}
	}
	for _, want := range []string{`"name": "web.edge"`, `"cluster_name": "api.v1"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("config dump lacks %s", want)
		}
	}
}

// TestWebPage loads the admin address's page in headless Chromium while traffic flows: the
// rendered page shows readiness, the route with a live request rate above zero, and the
// Upstream host's health, and the screenshot shows the Accepted status in its green.
func TestWebPage(t *testing.T) {
	chromium := requireTool(t, "chromium", "chromium")
	api := newBackend(t, "api.v1")
	port := envoytest.FreePort(t)
	addr, adminFlag := adminAddr(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	writeFile(t, cfg, observedConfig(port, api, ""))
	startReady(t, cfg, adminFlag...)

	// Traffic for the page's request rate, until the browser is done (at most 20000 requests).
	stop := make(chan struct{})
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		for range 20000 {
			select {
			case <-stop:
				return
			default:
			}
			_, _, _ = get("", fmt.Sprintf("http://127.0.0.1:%d/orders/live", port))
		}
	}()
	defer func() {
		close(stop)
		<-trafficDone
	}()

	profile := t.TempDir()
	browse := func(args ...string) []byte {
		t.Helper()
		// Virtual time runs the page's one-second refreshes without waiting for them, and
		// waits for its fetches.
		full := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + profile,
			"--virtual-time-budget=4000", "--window-size=1200,800"}, args...)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, chromium, append(full, "http://"+addr+"/")...)
		stderr := &syncbuf.Buffer{}
		cmd.Stderr = stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chromium %v: %v\n%s", args, err, stderr)
		}
		return out
	}

	dom := string(browse("--dump-dom"))
	for _, want := range []string{
		`<span class="ok">yes</span>`,
		`<td>shop.v2/orders</td><td>prefix /orders</td><td>forward</td><td>api.v1</td><td class="Accepted">Accepted</td>`,
		fmt.Sprintf(`<td>api.v1</td><td>127.0.0.1:%d</td><td class="Accepted">healthy</td>`, api.addr.Port),
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %s", want)
		}
	}
	rate := regexp.MustCompile(`<td>shop\.v2/orders</td>.*?<td class="num rate">([0-9.]+)</td>`).FindStringSubmatch(dom)
	if rate == nil {
		t.Errorf("the rendered page has no request rate for shop.v2/orders:\n%s", dom)
	} else if v, err := strconv.ParseFloat(rate[1], 64); err != nil || v <= 0 {
		t.Errorf("request rate of shop.v2/orders = %q, want above zero while traffic flows", rate[1])
	}

	shot := filepath.Join(t.TempDir(), "page.png")
	browse("--screenshot=" + shot)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 800 {
		t.Errorf("screenshot is %dx%d, want 1200x800", b.Dx(), b.Dy())
	}
	// #1a7f37 is the page's colour for Accepted and healthy: present only once data rendered.
	green := 0
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if near(r>>8, 0x1a) && near(g>>8, 0x7f) && near(b>>8, 0x37) {
				green++
			}
		}
	}
	if green < 20 {
		t.Errorf("the screenshot has %d pixels of the Accepted green, want the rendered statuses", green)
	}
}

func near(v, want uint32) bool { return v+24 >= want && v <= want+24 }
