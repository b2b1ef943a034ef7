package main

import (
	"strings"
	"testing"
	"testing/fstest"

	bootstrap "github.com/portico-gw/portico/envoy-bootstrap"
)

func TestMachineMemory(t *testing.T) {
	const meminfo = "MemTotal:       16384000 kB\nMemFree:         1000 kB\n"
	const total = 16384000 << 10
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		want  uint64
	}{
		{"unknown", fstest.MapFS{}, 0},
		{"machine total", fstest.MapFS{"proc/meminfo": {Data: []byte(meminfo)}}, total},
		{"cgroup v2 limit below total", fstest.MapFS{
			"proc/meminfo":                          {Data: []byte(meminfo)},
			"proc/self/cgroup":                      {Data: []byte("0::/system.slice/portico.service\n")},
			"sys/fs/cgroup/system.slice/memory.max": {Data: []byte("536870912\n")},
			"sys/fs/cgroup/system.slice/portico.service/memory.max": {Data: []byte("max\n")},
		}, 512 << 20},
		{"cgroup v2 without limits", fstest.MapFS{
			"proc/meminfo":             {Data: []byte(meminfo)},
			"proc/self/cgroup":         {Data: []byte("0::/\n")},
			"sys/fs/cgroup/memory.max": {Data: []byte("max\n")},
		}, total},
		{"cgroup v1 container", fstest.MapFS{
			"proc/meminfo":     {Data: []byte(meminfo)},
			"proc/self/cgroup": {Data: []byte("5:cpu,cpuacct:/\n4:memory:/docker/abc\n")},
			"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("1073741824\n")},
		}, 1 << 30},
		{"cgroup v1 unlimited", fstest.MapFS{
			"proc/meminfo":     {Data: []byte(meminfo)},
			"proc/self/cgroup": {Data: []byte("4:memory:/user\n")},
			"sys/fs/cgroup/memory/memory.limit_in_bytes": {Data: []byte("9223372036854771712\n")},
		}, total},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := machineMemory(tc.files); got != tc.want {
				t.Errorf("machineMemory = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestBootstrapLimits(t *testing.T) {
	machine := fstest.MapFS{"proc/meminfo": {Data: []byte("MemTotal: 4194304 kB\n")}}
	heap, conns, origin, err := overloadFlags{maxConnections: 10}.bootstrapLimits(machine)
	if err != nil || heap != 3<<30 || conns != 10 || !strings.Contains(origin, "4096 MiB") {
		t.Errorf("derived from 4 GiB: heap %d, conns %d, origin %q, err %v; want 3 GiB, 10", heap, conns, origin, err)
	}
	heap, _, origin, err = overloadFlags{maxHeapMiB: 300, maxConnections: 10}.bootstrapLimits(machine)
	if err != nil || heap != 300<<20 || origin != "--envoy-max-heap-mib" {
		t.Errorf("flag: heap %d, origin %q, err %v; want 300 MiB from the flag", heap, origin, err)
	}
	heap, _, _, err = overloadFlags{maxConnections: 10}.bootstrapLimits(fstest.MapFS{})
	if err != nil || heap != bootstrap.DefaultMaxHeapBytes {
		t.Errorf("unknown machine: heap %d, err %v; want the default %d", heap, err, bootstrap.DefaultMaxHeapBytes)
	}
	for _, bad := range []overloadFlags{{maxHeapMiB: -1, maxConnections: 1}, {maxConnections: 0}} {
		if _, _, _, err := bad.bootstrapLimits(machine); err == nil {
			t.Errorf("%+v accepted, want an error", bad)
		}
	}
}
