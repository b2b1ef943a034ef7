// Package metrics owns the metrics behind Portico's /metrics: Portico's own (the xDS exchange
// with Envoy) and Envoy's statistics, fetched from Envoy's admin API at scrape time and
// renamed to Prometheus' conventions, with the user's names as label values.
//
// It only observes: it must not change configuration or Envoy, and it serves nothing itself
// (package admin does).
package metrics
