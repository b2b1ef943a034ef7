package metrics

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"

	"github.com/portico-gw/portico/translator"
)

// envoyStats is Envoy 1.40's /stats/prometheus after two requests through a Gateway "web.gw",
// VirtualService "shop.vs", route "api/v1.x y" and Upstream "back.end", named the way the
// translator names them.
func envoyStats(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/envoy-1.40-stats.txt")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func exposition(t *testing.T, text []byte) string {
	t.Helper()
	families, err := parseEnvoyStats(bytes.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	enc := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			t.Fatalf("encode %s: %v", f.GetName(), err)
		}
	}
	return out.String()
}

func TestConformRenamesEnvoyStats(t *testing.T) {
	got := exposition(t, envoyStats(t))
	for _, want := range []string{
		// Counters end in _total; the user's names come back unescaped.
		`envoy_cluster_upstream_rq_completed_total{envoy_cluster_name="back.end"} 2`,
		`envoy_vhost_route_upstream_rq_total{envoy_route="api/v1.x y",envoy_virtual_host="shop.vs"} 2`,
		`envoy_vhost_route_upstream_rq_xx_total{envoy_response_code_class="2",envoy_route="api/v1.x y",envoy_virtual_host="shop.vs"} 2`,
		`envoy_http_downstream_rq_xx_total{envoy_http_conn_manager_prefix="web.gw",envoy_response_code_class="2"} 2`,
		// A counter whose conventional name is taken is named by the label that sets it apart.
		`envoy_cluster_upstream_rq_by_response_code_total{envoy_cluster_name="back.end",envoy_response_code="200"} 2`,
		// Milliseconds become seconds, buckets included.
		`# TYPE envoy_vhost_route_upstream_rq_time_seconds histogram`,
		`envoy_vhost_route_upstream_rq_time_seconds_bucket{envoy_route="api/v1.x y",envoy_virtual_host="shop.vs",le="0.0005"}`,
		`envoy_vhost_route_upstream_rq_time_seconds_count{envoy_route="api/v1.x y",envoy_virtual_host="shop.vs"}`,
		`# TYPE envoy_cluster_upstream_cx_connect_seconds histogram`,
		// Gauges lose _total; Envoy's own names stay as they are.
		`envoy_cluster_membership{envoy_cluster_name="back.end"} 1`,
		`envoy_http_downstream_rq_xx_total{envoy_http_conn_manager_prefix="admin",envoy_response_code_class="2"} 3`,
		`# HELP envoy_cluster_upstream_rq_completed_total Envoy statistic envoy_cluster_upstream_rq_completed.`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("conformed statistics lack %s", want)
		}
	}
	for _, unwanted := range []string{"%2E", "_ms{", "_ms_bucket", "envoy_cluster_membership_total{"} {
		if strings.Contains(got, unwanted) {
			t.Errorf("conformed statistics still contain %q", unwanted)
		}
	}
}

// TestConformedStatsPassPromtool runs Prometheus' own linter over the conformed output, the
// check the issue asks of /metrics. The raw input fails it, which keeps the test honest.
func TestConformedStatsPassPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not on PATH (install the prometheus package)")
		}
		t.Skip("promtool not on PATH")
	}
	check := func(text string) (string, error) {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if _, err := check(string(envoyStats(t))); err == nil {
		t.Fatal("promtool accepts Envoy's raw statistics; the test input no longer shows what conform fixes")
	}
	if out, err := check(exposition(t, envoyStats(t))); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestUnescapeStatName(t *testing.T) {
	for in, want := range map[string]string{
		"admin":            "admin",
		"shop%2Evs":        "shop.vs",
		"a%25b%3Ac":        "a%b:c",
		"trailing%2":       "trailing%2",
		"bad%zzhex":        "bad%zzhex",
		"api/v1%2Ex%2Ey y": "api/v1.x.y y",
	} {
		if got := UnescapeStatName(in); got != want {
			t.Errorf("UnescapeStatName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStatNamesRoundTrip: what the translator writes into Envoy's statistics comes back as
// the user wrote it.
func TestStatNamesRoundTrip(t *testing.T) {
	for _, name := range []string{"web", "shop.v2", "api/v1.x y", "50%:off", "%2E", "route-0"} {
		escaped := translator.StatName(name)
		if strings.ContainsAny(escaped, ".:") {
			t.Errorf("StatName(%q) = %q still contains '.' or ':'", name, escaped)
		}
		if got := UnescapeStatName(escaped); got != name {
			t.Errorf("UnescapeStatName(StatName(%q)) = %q", name, got)
		}
	}
}
