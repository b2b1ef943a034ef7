package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
)

// machine records what the figures were measured on and with.
type machine struct {
	Cores    int
	MemoryMB int
	CPU      string
	Versions [][2]string // tool, version
	// LoadAvg is /proc/loadavg when the run started: other work on the machine skews figures.
	LoadAvg string
}

func describeMachine(ctx context.Context, e *env) machine {
	m := machine{Cores: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
				m.MemoryMB = kb / 1024
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
				break
			}
		}
	}
	version := func(name string, re string, bin string, args ...string) {
		out, _ := exec.CommandContext(ctx, bin, args...).CombinedOutput() // wrk -v exits 1
		v := "not installed"
		if mm := regexp.MustCompile(re).FindStringSubmatch(string(out)); mm != nil {
			v = mm[1]
		}
		m.Versions = append(m.Versions, [2]string{name, v})
	}
	sha, _ := exec.CommandContext(ctx, "git", "-C", e.repo, "rev-parse", "--short=12", "HEAD").Output()
	dirty := ""
	if st, _ := exec.CommandContext(ctx, "git", "-C", e.repo, "status", "--porcelain", "--untracked-files=no").Output(); len(st) > 0 {
		dirty = " (working tree modified)"
	}
	m.Versions = append(m.Versions, [2]string{"portico", "git " + strings.TrimSpace(string(sha)) + dirty})
	version("envoy", `version: [0-9a-f]+/(\S+)`, e.envoy, "--version")
	version("nginx", `nginx/(\S+)`, "nginx", "-v")
	version("haproxy", `HAProxy version (\S+)`, "haproxy", "-v")
	version("caddy", `^v?(\S+)`, "caddy", "version")
	version("wrk", `wrk (\S+)`, "wrk", "-v")
	version("h2load", `h2load nghttp2/(\S+)`, "h2load", "--version")
	m.Versions = append(m.Versions, [2]string{"go", runtime.Version()})
	return m
}

// goBench is one line of `go test -bench` output.
type goBench struct {
	Name                   string
	NsPerOp, BPerOp, Alloc float64
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([0-9.]+) ns/op(?:.*?\s([0-9.]+) B/op\s+([0-9.]+) allocs/op)?`)

// goBenchmarks runs the config, translator and controller benchmarks as compiled test binaries, then
// profiles decode + validate + translate of 10k routes and returns pprof's top functions.
func goBenchmarks(ctx context.Context, e *env) ([]goBench, string, error) {
	var all []goBench
	var profile string
	for _, pkg := range []string{"config", "translator", "controller"} {
		bin := filepath.Join(e.scratch, pkg+".test")
		build := exec.CommandContext(ctx, "go", "test", "-c", "-o", bin, "./"+pkg)
		build.Dir = e.repo
		if out, err := build.CombinedOutput(); err != nil {
			return nil, "", fmt.Errorf("build %s benchmarks: %w: %s", pkg, err, out)
		}
		cmd := exec.CommandContext(ctx, bin, "-test.run", "^$", "-test.bench", ".", "-test.benchmem")
		cmd.Dir = filepath.Join(e.repo, pkg)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return nil, "", fmt.Errorf("run %s benchmarks: %w: %s", pkg, err, out)
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			m := benchLine.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			b := goBench{Name: pkg + "." + strings.TrimPrefix(m[1], "Benchmark")}
			b.NsPerOp, _ = strconv.ParseFloat(m[2], 64)
			b.BPerOp, _ = strconv.ParseFloat(m[3], 64)
			b.Alloc, _ = strconv.ParseFloat(m[4], 64)
			fmt.Fprintf(e.log, "  %-40s %10.2f ms/op %8.1f MB/op\n", b.Name, b.NsPerOp/1e6, b.BPerOp/1e6)
			all = append(all, b)
		}
		if pkg == "translator" {
			// A separate run, so the profile is of one reload's work and not of the mix of
			// benchmarks above.
			prof := filepath.Join(e.scratch, "pipeline.prof")
			cmd := exec.CommandContext(ctx, bin, "-test.run", "^$", "-test.bench", "Pipeline/routes=10000$", "-test.benchtime", "3s", "-test.cpuprofile", prof)
			cmd.Dir = filepath.Join(e.repo, pkg)
			if out, err := cmd.CombinedOutput(); err != nil {
				return nil, "", fmt.Errorf("profile the pipeline: %w: %s", err, out)
			}
			top, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=20", bin, prof).Output()
			if err != nil {
				return nil, "", fmt.Errorf("summarise profile: %w", err)
			}
			profile = string(top)
		}
	}
	return all, profile, nil
}
