package bootstrap

import (
	"testing"

	downstreamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/downstream_connections/v3"
	fixedheapv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/resource_monitors/fixed_heap/v3"
)

func TestHeapLimit(t *testing.T) {
	for mem, want := range map[uint64]uint64{0: DefaultMaxHeapBytes, 4 << 30: 3 << 30, 1 << 30: 768 << 20} {
		if got := HeapLimit(mem); got != want {
			t.Errorf("HeapLimit(%d) = %d, want %d", mem, got, want)
		}
	}
}

// TestOverloadLimits proves the limits given reach the monitors, and defaults fill zeros.
func TestOverloadLimits(t *testing.T) {
	for _, tc := range []struct {
		heap, conns         uint64
		wantHeap, wantConns uint64
	}{
		{0, 0, DefaultMaxHeapBytes, DefaultMaxConnections},
		{512 << 20, 7, 512 << 20, 7},
	} {
		opts := goldenOptions
		opts.MaxHeapBytes, opts.MaxConnections = tc.heap, tc.conns
		b, err := Build(opts)
		if err != nil {
			t.Fatal(err)
		}
		var heap fixedheapv3.FixedHeapConfig
		var conns downstreamv3.DownstreamConnectionsConfig
		monitors := b.GetOverloadManager().GetResourceMonitors()
		if len(monitors) != 2 {
			t.Fatalf("%d resource monitors, want heap and connections", len(monitors))
		}
		if err := monitors[0].GetTypedConfig().UnmarshalTo(&heap); err != nil {
			t.Fatal(err)
		}
		if err := monitors[1].GetTypedConfig().UnmarshalTo(&conns); err != nil {
			t.Fatal(err)
		}
		if heap.MaxHeapSizeBytes != tc.wantHeap || uint64(conns.MaxActiveDownstreamConnections) != tc.wantConns {
			t.Errorf("options heap %d conns %d: bootstrap has heap %d conns %d, want %d and %d",
				tc.heap, tc.conns, heap.MaxHeapSizeBytes, conns.MaxActiveDownstreamConnections, tc.wantHeap, tc.wantConns)
		}
	}
}
