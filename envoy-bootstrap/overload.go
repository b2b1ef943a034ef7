package bootstrap

import (
	"time"

	overloadv3 "github.com/envoyproxy/go-control-plane/envoy/config/overload/v3"
	downstreamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	fixedheapv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// DefaultMaxHeapBytes is the heap limit when the machine's memory is unknown: the 2 GiB of
// Envoy's edge proxy example halved, because an unknown machine may be a small one.
const DefaultMaxHeapBytes = 1 << 30

// DefaultMaxConnections caps client connections over all listeners. Each connection holds a
// file descriptor and up to two 32 KiB buffers, so the cap keeps a connection flood from
// exhausting descriptors or memory before the heap limit notices; raise it (and ulimit -n)
// for a gateway that truly serves more clients at once.
const DefaultMaxConnections = 50000

// The overload manager's thresholds, as fractions of the heap limit: past the first Envoy
// returns freed memory to the system, past the second it answers new requests with 503
// instead of taking more memory, and keeps serving the requests it already has.
const (
	shrinkHeapThreshold     = 0.95
	stopAcceptingThreshold  = 0.98
	overloadRefreshInterval = 250 * time.Millisecond
)

// The names Envoy knows its resource monitors and overload actions by.
const (
	fixedHeapMonitor         = "envoy.resource_monitors.fixed_heap"
	connectionsMonitor       = "envoy.resource_monitors.global_downstream_max_connections"
	shrinkHeapAction         = "envoy.overload_actions.shrink_heap"
	stopAcceptingRequestsAct = "envoy.overload_actions.stop_accepting_requests"
)

// HeapLimit is the heap limit for a machine (or container) with memoryBytes of memory: three
// quarters of it, leaving the rest to Portico, the kernel and the backends that often share the
// host. memoryBytes 0 means unknown and gives DefaultMaxHeapBytes.
func HeapLimit(memoryBytes uint64) uint64 {
	if memoryBytes == 0 {
		return DefaultMaxHeapBytes
	}
	return memoryBytes / 4 * 3
}

// overloadManager watches Envoy's heap against maxHeap and caps its downstream connections at
// maxConns; zero values take the defaults.
func overloadManager(maxHeap, maxConns uint64) (*overloadv3.OverloadManager, error) {
	if maxHeap == 0 {
		maxHeap = DefaultMaxHeapBytes
	}
	if maxConns == 0 {
		maxConns = DefaultMaxConnections
	}
	heap, err := anypb.New(&fixedheapv3.FixedHeapConfig{MaxHeapSizeBytes: maxHeap})
	if err != nil {
		return nil, err
	}
	conns, err := anypb.New(&downstreamv3.DownstreamConnectionsConfig{MaxActiveDownstreamConnections: int64(maxConns)})
	if err != nil {
		return nil, err
	}
	heapAbove := func(v float64) []*overloadv3.Trigger {
		return []*overloadv3.Trigger{{
			Name:         fixedHeapMonitor,
			TriggerOneof: &overloadv3.Trigger_Threshold{Threshold: &overloadv3.ThresholdTrigger{Value: v}},
		}}
	}
	return &overloadv3.OverloadManager{
		RefreshInterval: durationpb.New(overloadRefreshInterval),
		ResourceMonitors: []*overloadv3.ResourceMonitor{
			{Name: fixedHeapMonitor, ConfigType: &overloadv3.ResourceMonitor_TypedConfig{TypedConfig: heap}},
			{Name: connectionsMonitor, ConfigType: &overloadv3.ResourceMonitor_TypedConfig{TypedConfig: conns}},
		},
		Actions: []*overloadv3.OverloadAction{
			{Name: shrinkHeapAction, Triggers: heapAbove(shrinkHeapThreshold)},
			{Name: stopAcceptingRequestsAct, Triggers: heapAbove(stopAcceptingThreshold)},
		},
	}, nil
}
