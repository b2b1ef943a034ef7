package metrics

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

func TestXDSCountsAnswersByType(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewXDS(reg)
	m.Pushed(1)
	m.Pushed(2)
	m.Answered(resource.ClusterType, true)
	m.Answered(resource.RouteType, true)
	m.Answered(resource.RouteType, false)
	m.Applied(1, 30*time.Millisecond)
	got := gatherText(t, reg)
	for _, want := range []string{
		`portico_xds_acks_total{type="cluster"} 1`,
		`portico_xds_acks_total{type="clusterloadassignment"} 0`,
		`portico_xds_acks_total{type="listener"} 0`,
		`portico_xds_acks_total{type="routeconfiguration"} 1`,
		`portico_xds_nacks_total{type="cluster"} 0`,
		`portico_xds_nacks_total{type="routeconfiguration"} 1`,
		`portico_xds_pushes_total 2`,
		`portico_xds_push_to_ack_seconds_count 1`,
		`portico_xds_push_to_ack_seconds_bucket{le="0.025"} 0`,
		`portico_xds_push_to_ack_seconds_bucket{le="0.05"} 1`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, got)
		}
	}
}

func gatherText(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	enc := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	return out.String()
}
func TestEnvoyStatsGather(t *testing.T) {
	stats := envoyStats(t)
	ready := true
	envoy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stats/prometheus":
			w.Write(stats)
		case "/ready":
			if !ready {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer envoy.Close()
	addr := strings.TrimPrefix(envoy.URL, "http://")

	tests := []struct {
		name          string
		address       string
		ready         bool
		wantUp        float64
		wantReady     float64
		wantEnvoyStat bool
	}{
		{"ready", addr, true, 1, 1, true},
		{"answering but not ready", addr, false, 1, 0, true},
		{"no envoy running", "", true, 0, 0, false},
		{"envoy gone", "127.0.0.1:1", true, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ready = tc.ready
			families, err := NewEnvoyStats(func() string { return tc.address }).Gather()
			if err != nil {
				t.Fatal(err)
			}
			values := map[string]float64{}
			hasEnvoy := false
			for _, f := range families {
				if strings.HasPrefix(f.GetName(), "envoy_") {
					hasEnvoy = true
				}
				if f.GetType() == dto.MetricType_GAUGE && len(f.GetMetric()) == 1 {
					values[f.GetName()] = f.GetMetric()[0].GetGauge().GetValue()
				}
			}
			if values["portico_envoy_up"] != tc.wantUp || values["portico_envoy_ready"] != tc.wantReady || hasEnvoy != tc.wantEnvoyStat {
				t.Errorf("up %v, ready %v, envoy statistics %v; want %v, %v, %v",
					values["portico_envoy_up"], values["portico_envoy_ready"], hasEnvoy, tc.wantUp, tc.wantReady, tc.wantEnvoyStat)
			}
		})
	}
}
