package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/controller"
	"github.com/portico-gw/portico/metrics"
)

// TestMetricsServesPorticoAndEnvoyInOneExposition: one scrape carries the status metrics,
// Portico's registry and Envoy's statistics, and Prometheus' linter accepts the whole.
func TestMetricsServesPorticoAndEnvoyInOneExposition(t *testing.T) {
	stats, err := os.ReadFile("../metrics/testdata/envoy-1.40-stats.txt")
	if err != nil {
		t.Fatal(err)
	}
	envoy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/stats/prometheus" {
			w.Write(stats)
		}
	}))
	defer envoy.Close()
	reg := prometheus.NewRegistry()
	metrics.NewXDS(reg).Pushed(1)
	st := controller.Status{
		Envoy:      controller.EnvoyStatus{Connected: true, Version: "1.40.0"},
		LastReload: &controller.ReloadStatus{Result: controller.ResultInvalid, Problems: []controller.Problem{{Severity: "error"}, {Severity: "error"}, {Severity: "warning"}}},
	}
	srv := httptest.NewServer(New(Options{
		Status:        func() controller.Status { return st },
		Metrics:       reg,
		Envoy:         metrics.NewEnvoyStats(func() string { return strings.TrimPrefix(envoy.URL, "http://") }),
		EnvoyRestarts: func() (int, int) { return 3, 1 },
		Version:       "v9.9.9",
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	body := string(raw)
	for _, want := range []string{
		`portico_config_problems{severity="error"} 2`,
		`portico_config_problems{severity="warning"} 1`,
		`portico_envoy_connected 1`,
		`portico_envoy_restarts_total 3`,
		`portico_envoy_hot_restarts_total 1`,
		`portico_build_info{envoy_version="1.40.0",goversion="` + runtime.Version() + `",version="v9.9.9"} 1`,
		`portico_xds_pushes_total 1`,
		`portico_envoy_up 1`,
		`envoy_vhost_route_upstream_rq_total{envoy_route="api/v1.x y",envoy_virtual_host="shop.vs"} 2`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not on PATH (install the prometheus package)")
		}
		t.Skip("promtool not on PATH")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
