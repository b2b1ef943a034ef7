package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	bootstrap "github.com/portico-gw/portico/envoy-bootstrap"
)

// overloadFlags choose the limits of the overload manager in Envoy's bootstrap.
type overloadFlags struct {
	maxHeapMiB     int
	maxConnections int
}

func addOverloadFlags(cmd *cobra.Command, o *overloadFlags) {
	f := cmd.Flags()
	f.IntVar(&o.maxHeapMiB, "envoy-max-heap-mib", 0, "heap limit (MiB) at which Envoy sheds load: it frees memory at 95% and answers new requests 503 at 98%; 0 derives it as 3/4 of the memory of the machine or container")
	f.IntVar(&o.maxConnections, "max-connections", bootstrap.DefaultMaxConnections, "client connections Envoy accepts over all Gateways together; raise ulimit -n with it")
}

// bootstrapLimits returns the heap limit and connection cap for the bootstrap, and how the
// heap limit was chosen, for the log.
func (o overloadFlags) bootstrapLimits(root fs.FS) (heap, conns uint64, origin string, err error) {
	if o.maxHeapMiB < 0 {
		return 0, 0, "", fmt.Errorf("--envoy-max-heap-mib %d is negative; use a size in MiB, or 0 to derive it from the machine's memory", o.maxHeapMiB)
	}
	if o.maxConnections < 1 {
		return 0, 0, "", fmt.Errorf("--max-connections %d: use 1 or more", o.maxConnections)
	}
	if o.maxHeapMiB > 0 {
		return uint64(o.maxHeapMiB) << 20, uint64(o.maxConnections), "--envoy-max-heap-mib", nil
	}
	mem := machineMemory(root)
	if mem == 0 {
		return bootstrap.HeapLimit(0), uint64(o.maxConnections), "default (machine memory unknown)", nil
	}
	return bootstrap.HeapLimit(mem), uint64(o.maxConnections), fmt.Sprintf("3/4 of %d MiB of memory", mem>>20), nil
}

// unlimitedMemory is the smallest value a cgroup memory limit file holds when there is no
// limit (cgroup v1 writes a page-rounded 2^63-1).
const unlimitedMemory = 1 << 60

// machineMemory is the memory Envoy may use, in bytes: the machine's total, or the memory
// limit of the cgroup portico runs in when that is lower, so that a container's heap limit
// fits the container. 0 means unknown (not Linux, or /proc unreadable). root is the file
// system root, replaced in tests.
func machineMemory(root fs.FS) uint64 {
	var limit uint64
	lower := func(v uint64) {
		if v > 0 && v < unlimitedMemory && (limit == 0 || v < limit) {
			limit = v
		}
	}
	if data, err := fs.ReadFile(root, "proc/meminfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) == 3 && fields[0] == "MemTotal:" && fields[2] == "kB" {
				if kb, err := strconv.ParseUint(fields[1], 10, 64); err == nil {
					lower(kb << 10)
				}
			}
		}
	}
	cgroups, err := fs.ReadFile(root, "proc/self/cgroup")
	if err != nil {
		return limit
	}
	for _, line := range strings.Split(string(cgroups), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			// cgroup v2: every ancestor's memory.max bounds this group too.
			for dir := parts[2]; ; dir = path.Dir(dir) {
				lower(readLimit(root, path.Join("sys/fs/cgroup", dir, "memory.max")))
				if dir == "/" || dir == "." {
					break
				}
			}
		case strings.Contains(","+parts[1]+",", ",memory,"):
			// cgroup v1: inside a container the group is mounted at the root of the
			// hierarchy; on a host it is at the path.
			lower(readLimit(root, "sys/fs/cgroup/memory/memory.limit_in_bytes"))
			lower(readLimit(root, path.Join("sys/fs/cgroup/memory", parts[2], "memory.limit_in_bytes")))
		}
	}
	return limit
}

// readLimit reads a cgroup memory limit file; 0 when it is absent, unreadable or "max".
func readLimit(root fs.FS, name string) uint64 {
	data, err := fs.ReadFile(root, name)
	if err != nil {
		return 0
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0
	}
	return v
}
