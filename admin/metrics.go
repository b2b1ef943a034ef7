package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/controller"
)

var (
	reloadsDesc = prometheus.NewDesc("portico_config_reloads_total",
		"Configuration reloads by result: applied, partial (some resources held back), unchanged, invalid (the whole change rejected by validation) or rejected (by Envoy).",
		[]string{"result"}, nil)
	generationDesc = prometheus.NewDesc("portico_config_generation",
		"Configuration generation: current (wanted by portico), served (offered to Envoy) and acked (acknowledged by Envoy).",
		[]string{"state"}, nil)
	readyDesc = prometheus.NewDesc("portico_ready",
		"1 when Envoy has acknowledged the generation portico wants served.", nil, nil)
	rejectedDesc = prometheus.NewDesc("portico_resources_rejected",
		"Resources in state Rejected, by kind.", []string{"kind"}, nil)
)

// statusCollector turns the status into metrics at scrape time, so the numbers always agree
// with /status and nothing is kept twice.
type statusCollector struct{ status StatusFunc }

var _ prometheus.Collector = statusCollector{}

func (statusCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- reloadsDesc
	ch <- generationDesc
	ch <- readyDesc
	ch <- rejectedDesc
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	for _, r := range controller.Results {
		ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(st.Reloads[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(generationDesc, prometheus.GaugeValue, float64(st.Generation.Current), "current")
	ch <- prometheus.MustNewConstMetric(generationDesc, prometheus.GaugeValue, float64(st.Generation.Served), "served")
	ch <- prometheus.MustNewConstMetric(generationDesc, prometheus.GaugeValue, float64(st.Generation.ACKed), "acked")
	ready := 0.0
	if st.Ready {
		ready = 1
	}
	ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, ready)
	rejected := map[string]int{}
	for _, r := range st.Resources {
		if r.State == controller.StateRejected {
			rejected[r.Kind]++
		}
	}
	for kind, n := range rejected {
		ch <- prometheus.MustNewConstMetric(rejectedDesc, prometheus.GaugeValue, float64(n), kind)
	}
}
