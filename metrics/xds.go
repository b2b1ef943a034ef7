package metrics

import (
	"strings"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/xds"
)

// XDS counts the xDS exchange with Envoy. It is an xds.Observer.
type XDS struct {
	pushes     prometheus.Counter
	acks       *prometheus.CounterVec
	nacks      *prometheus.CounterVec
	pushToACK  prometheus.Histogram
	typeLabels map[string]string
}

var _ xds.Observer = (*XDS)(nil)

// NewXDS returns XDS metrics registered with reg.
func NewXDS(reg prometheus.Registerer) *XDS {
	m := &XDS{
		pushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "portico_xds_pushes_total",
			Help: "Configuration generations published to Envoy over xDS, rollbacks included.",
		}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_xds_acks_total",
			Help: "xDS responses Envoy acknowledged, by resource type.",
		}, []string{"type"}),
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "portico_xds_nacks_total",
			Help: "xDS responses Envoy rejected, by resource type.",
		}, []string{"type"}),
		pushToACK: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "portico_xds_push_to_ack_seconds",
			Help: "Time from publishing a generation to Envoy acknowledging every resource type in it.",
			// From a loopback round trip to an Envoy busy warming many clusters.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		typeLabels: map[string]string{},
	}
	// Every type starts at zero, so that rate() and absent() work before the first answer.
	for _, typeURL := range []string{resource.ClusterType, resource.EndpointType, resource.ListenerType, resource.RouteType} {
		label := typeLabel(typeURL)
		m.typeLabels[typeURL] = label
		m.acks.WithLabelValues(label)
		m.nacks.WithLabelValues(label)
	}
	reg.MustRegister(m.pushes, m.acks, m.nacks, m.pushToACK)
	return m
}

// typeLabel shortens a type URL to the resource's name in lower case:
// ".../envoy.config.cluster.v3.Cluster" becomes "cluster", the form people type in queries.
func typeLabel(typeURL string) string {
	return strings.ToLower(typeURL[strings.LastIndexByte(typeURL, '.')+1:])
}

func (m *XDS) label(typeURL string) string {
	if l, ok := m.typeLabels[typeURL]; ok {
		return l
	}
	return typeLabel(typeURL)
}

// Pushed implements xds.Observer.
func (m *XDS) Pushed(uint64) { m.pushes.Inc() }

// Answered implements xds.Observer.
func (m *XDS) Answered(typeURL string, acked bool) {
	if acked {
		m.acks.WithLabelValues(m.label(typeURL)).Inc()
		return
	}
	m.nacks.WithLabelValues(m.label(typeURL)).Inc()
}

// Applied implements xds.Observer.
func (m *XDS) Applied(_ uint64, latency time.Duration) { m.pushToACK.Observe(latency.Seconds()) }
