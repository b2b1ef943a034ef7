package metrics

import (
	"cmp"
	"maps"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// nameLabels are the Envoy tags whose values are names from the user's configuration, written
// into Envoy's statistic names by the translator in escaped form (see translator.StatName).
var nameLabels = map[string]bool{
	"envoy_cluster_name":             true, // Upstream
	"envoy_http_conn_manager_prefix": true, // Gateway
	"envoy_virtual_host":             true, // VirtualService
	"envoy_route":                    true, // route
}

// unitChanges turn the units Envoy puts into names into the base unit Prometheus expects.
var unitChanges = map[string]float64{"ms": 1e-3, "us": 1e-6, "days": 86400}

// conform renames Envoy's statistics to Prometheus' conventions, the ones `promtool check
// metrics` enforces: counters end in _total and nothing else does; gauges do not end in _count;
// times are in seconds; every metric has help. Label values that are the user's names are
// unescaped. A family whose new name is taken by another is dropped rather than merged into a
// metric that means something else.
func conform(byName map[string]*dto.MetricFamily) []*dto.MetricFamily {
	type renamed struct {
		family *dto.MetricFamily
		name   string
		scale  float64
	}
	var keep, moved []renamed
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		f := byName[name]
		newName, scale := conventionalName(name, f.GetType())
		r := renamed{family: f, name: newName, scale: scale}
		if newName == name {
			keep = append(keep, r)
		} else {
			moved = append(moved, r)
		}
	}
	taken := map[string]bool{}
	var out []*dto.MetricFamily
	// Names Envoy already gives in conventional form are kept; renamed ones yield to them.
	for _, r := range append(keep, moved...) {
		name := r.name
		if taken[name] {
			name = byLabelName(r.name, r.family)
		}
		if name == "" || taken[name] {
			continue
		}
		taken[name] = true
		out = append(out, conformFamily(r.family, name, r.scale))
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return out
}

// conventionalName returns name in Prometheus' conventions for a metric of type t, and the
// factor that converts its values to the new name's unit.
func conventionalName(name string, t dto.MetricType) (string, float64) {
	scale := 1.0
	parts := strings.Split(name, "_")
	hasUnit := false
	for i, p := range parts {
		if f, ok := unitChanges[p]; ok {
			parts[i], scale, hasUnit = "seconds", f, true
		}
	}
	name = strings.Join(parts, "_")
	switch t {
	case dto.MetricType_COUNTER:
		if !strings.HasSuffix(name, "_total") {
			name += "_total"
		}
	case dto.MetricType_HISTOGRAM:
		// Envoy's request and connection times (upstream_rq_time, downstream_rq_time) are
		// milliseconds without saying so.
		if !hasUnit && strings.HasSuffix(name, "_time") {
			name, scale = name+"_seconds", 1e-3
		}
	default:
		name = strings.TrimSuffix(strings.TrimSuffix(name, "_total"), "_count")
	}
	return name, scale
}

// byLabelName names a family that collides with another after renaming by the label that sets
// it apart: Envoy's upstream_rq{envoy_response_code} next to upstream_rq_total becomes
// upstream_rq_by_response_code_total. It returns "" when there is no such label.
func byLabelName(name string, f *dto.MetricFamily) string {
	if len(f.GetMetric()) == 0 {
		return ""
	}
	for _, l := range f.GetMetric()[0].GetLabel() {
		if ln := l.GetName(); !nameLabels[ln] {
			base, suffix := name, ""
			if f.GetType() == dto.MetricType_COUNTER {
				base, suffix = strings.TrimSuffix(name, "_total"), "_total"
			}
			return base + "_by_" + strings.TrimPrefix(ln, "envoy_") + suffix
		}
	}
	return ""
}

func conformFamily(f *dto.MetricFamily, name string, scale float64) *dto.MetricFamily {
	out := proto.Clone(f).(*dto.MetricFamily)
	out.Name = proto.String(name)
	help := "Envoy statistic " + f.GetName() + "."
	if scale != 1 {
		help = "Envoy statistic " + f.GetName() + ", in seconds."
	}
	out.Help = proto.String(help)
	for _, m := range out.GetMetric() {
		for _, l := range m.GetLabel() {
			if nameLabels[l.GetName()] {
				l.Value = proto.String(UnescapeStatName(l.GetValue()))
			}
		}
		slices.SortFunc(m.Label, func(a, b *dto.LabelPair) int { return cmp.Compare(a.GetName(), b.GetName()) })
		if scale == 1 {
			continue
		}
		switch {
		case m.Counter != nil:
			m.Counter.Value = proto.Float64(m.Counter.GetValue() * scale)
		case m.Gauge != nil:
			m.Gauge.Value = proto.Float64(m.Gauge.GetValue() * scale)
		case m.Untyped != nil:
			m.Untyped.Value = proto.Float64(m.Untyped.GetValue() * scale)
		case m.Histogram != nil:
			m.Histogram.SampleSum = proto.Float64(m.Histogram.GetSampleSum() * scale)
			for _, b := range m.Histogram.GetBucket() {
				b.UpperBound = proto.Float64(b.GetUpperBound() * scale)
			}
		case m.Summary != nil:
			m.Summary.SampleSum = proto.Float64(m.Summary.GetSampleSum() * scale)
			for _, q := range m.Summary.GetQuantile() {
				q.Value = proto.Float64(q.GetValue() * scale)
			}
		}
	}
	return out
}

// UnescapeStatName reverses translator.StatName: "%XX" becomes the byte with hex code XX.
// Names that were never escaped (Envoy's own, such as "admin") come back unchanged.
func UnescapeStatName(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, ok := unhex(s[i+1]); ok {
				if w, ok := unhex(s[i+2]); ok {
					b.WriteByte(v<<4 | w)
					i += 2
					continue
				}
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
