package admin

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/config"
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
	problemsDesc = prometheus.NewDesc("portico_config_problems",
		"Problems validation found in the configuration files at the last reload, by severity (error or warning).",
		[]string{"severity"}, nil)
	connectedDesc = prometheus.NewDesc("portico_envoy_connected",
		"1 while Envoy's xDS stream to portico is open.", nil, nil)
	restartsDesc = prometheus.NewDesc("portico_envoy_restarts_total",
		"Times Envoy was started again after exiting on its own.", nil, nil)
	hotRestartsDesc = prometheus.NewDesc("portico_envoy_hot_restarts_total",
		"Hot restarts of Envoy that completed.", nil, nil)
	buildDesc = prometheus.NewDesc("portico_build_info",
		"Always 1; the labels say which portico, Go and Envoy versions run.",
		[]string{"version", "goversion", "envoy_version"}, nil)
)

// statusCollector turns the status into metrics at scrape time, so the numbers always agree
// with /status and nothing is kept twice.
type statusCollector struct {
	status   StatusFunc
	restarts func() (int, int)
	version  string
}

var _ prometheus.Collector = statusCollector{}

func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{reloadsDesc, generationDesc, readyDesc, rejectedDesc, problemsDesc, connectedDesc, buildDesc} {
		ch <- d
	}
	if c.restarts != nil {
		ch <- restartsDesc
		ch <- hotRestartsDesc
	}
}

func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	for _, r := range controller.Results {
		ch <- prometheus.MustNewConstMetric(reloadsDesc, prometheus.CounterValue, float64(st.Reloads[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(generationDesc, prometheus.GaugeValue, float64(st.Generation.Current), "current")
	ch <- prometheus.MustNewConstMetric(generationDesc, prometheus.GaugeValue, float64(st.Generation.Served), "served")
	ch <- prometheus.MustNewConstMetric(generationDesc, prometheus.GaugeValue, float64(st.Generation.ACKed), "acked")
	ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, boolValue(st.Ready))
	ch <- prometheus.MustNewConstMetric(connectedDesc, prometheus.GaugeValue, boolValue(st.Envoy.Connected))
	rejected := map[string]int{}
	for _, r := range st.Resources {
		if r.State == controller.StateRejected {
			rejected[r.Kind]++
		}
	}
	for kind, n := range rejected {
		ch <- prometheus.MustNewConstMetric(rejectedDesc, prometheus.GaugeValue, float64(n), kind)
	}
	problems := map[string]int{config.SeverityError.String(): 0, config.SeverityWarning.String(): 0}
	if st.LastReload != nil {
		for _, p := range st.LastReload.Problems {
			problems[p.Severity]++
		}
	}
	for sev, n := range problems {
		ch <- prometheus.MustNewConstMetric(problemsDesc, prometheus.GaugeValue, float64(n), sev)
	}
	if c.restarts != nil {
		restarts, hot := c.restarts()
		ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(restarts))
		ch <- prometheus.MustNewConstMetric(hotRestartsDesc, prometheus.CounterValue, float64(hot))
	}
	version := c.version
	if version == "" {
		version = "unknown"
	}
	ch <- prometheus.MustNewConstMetric(buildDesc, prometheus.GaugeValue, 1, version, runtime.Version(), st.Envoy.Version)
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
