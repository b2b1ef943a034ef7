package discovery

import "github.com/prometheus/client_golang/prometheus"

// The metrics a Manager exports, per Upstream, computed from Status at every scrape.
var (
	hostsDesc = prometheus.NewDesc("portico_discovery_hosts",
		"Hosts discovered for an Upstream and served to Envoy.", []string{"upstream"}, nil)
	skippedDesc = prometheus.NewDesc("portico_discovery_skipped_keys",
		"Keys under an Upstream's prefix skipped because their values are not hosts.", []string{"upstream"}, nil)
	degradedDesc = prometheus.NewDesc("portico_discovery_degraded",
		"1 while the registry an Upstream discovers its hosts from cannot be reached (the last known hosts keep serving), else 0.", []string{"upstream"}, nil)
	errorsDesc = prometheus.NewDesc("portico_discovery_errors_total",
		"Failed reads and watches of the registry an Upstream discovers its hosts from.", []string{"upstream"}, nil)
)

// Collector returns the Manager's metrics, for a Prometheus registry.
func (m *Manager) Collector() prometheus.Collector { return collector{m} }

type collector struct{ m *Manager }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- hostsDesc
	ch <- skippedDesc
	ch <- degradedDesc
	ch <- errorsDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.m.Status() {
		degraded := 0.0
		if st.Degraded {
			degraded = 1
		}
		ch <- prometheus.MustNewConstMetric(hostsDesc, prometheus.GaugeValue, float64(len(st.Hosts)), st.Upstream)
		ch <- prometheus.MustNewConstMetric(skippedDesc, prometheus.GaugeValue, float64(len(st.Skipped)), st.Upstream)
		ch <- prometheus.MustNewConstMetric(degradedDesc, prometheus.GaugeValue, degraded, st.Upstream)
		ch <- prometheus.MustNewConstMetric(errorsDesc, prometheus.CounterValue, float64(st.Errors), st.Upstream)
	}
}
