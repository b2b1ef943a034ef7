package metrics

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// scrapeTimeout bounds each request to Envoy's admin API, so that a stuck Envoy cannot stall
// Prometheus' scrape beyond its own timeout (10s by default).
const scrapeTimeout = 3 * time.Second

// EnvoyStats gathers Envoy's statistics from its admin API at every scrape, so that one
// endpoint serves both Portico's metrics and Envoy's, and no copy of Envoy's numbers goes stale.
// It also reports whether Envoy answered (portico_envoy_up) and was ready (portico_envoy_ready).
type EnvoyStats struct {
	adminAddress func() string
	client       *http.Client
}

// NewEnvoyStats returns a gatherer of the statistics of the Envoy whose admin API is at
// adminAddress() ("host:port"; "" while no Envoy runs).
func NewEnvoyStats(adminAddress func() string) *EnvoyStats {
	return &EnvoyStats{adminAddress: adminAddress, client: &http.Client{Timeout: scrapeTimeout}}
}

// Gather implements prometheus.Gatherer. An Envoy that does not answer is not an error of the
// scrape: portico_envoy_up says so, and Portico's own metrics are served as usual.
func (e *EnvoyStats) Gather() ([]*dto.MetricFamily, error) {
	addr := e.adminAddress()
	var up, ready float64
	var families []*dto.MetricFamily
	if addr != "" {
		ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
		defer cancel()
		if text, err := e.get(ctx, addr, "/stats/prometheus"); err == nil {
			if parsed, err := parseEnvoyStats(bytes.NewReader(text)); err == nil {
				families, up = parsed, 1
			}
		}
		if _, err := e.get(ctx, addr, "/ready"); err == nil {
			ready = 1
		}
	}
	families = append(families,
		gauge("portico_envoy_up", "1 when Envoy's admin API answered this scrape with statistics portico could read.", up),
		gauge("portico_envoy_ready", "1 when Envoy's admin /ready answered 200 at this scrape.", ready))
	return families, nil
}

func (e *EnvoyStats) get(ctx context.Context, addr, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("envoy admin %s: %s", path, resp.Status)
	}
	return body, nil
}

// parseEnvoyStats reads Envoy's Prometheus text exposition and renames it to the conventions
// (see conform).
func parseEnvoyStats(text io.Reader) ([]*dto.MetricFamily, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	byName, err := parser.TextToMetricFamilies(text)
	if err != nil {
		return nil, fmt.Errorf("parse envoy statistics: %w", err)
	}
	return conform(byName), nil
}

func gauge(name, help string, v float64) *dto.MetricFamily {
	return &dto.MetricFamily{
		Name: proto.String(name), Help: proto.String(help), Type: dto.MetricType_GAUGE.Enum(),
		Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(v)}}},
	}
}
