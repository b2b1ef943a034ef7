package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// results is everything one run measured.
type results struct {
	Options     options
	Machine     machine
	Total       time.Duration
	GoBench     []goBench
	Profile     string
	Startup     *startupResult
	Dataplane   *dataplaneResult
	Propagation []*propagationResult
}

// The targets the issue set; the report states each as met or missed.
const (
	startupTarget    = 1.3
	dataplaneTarget  = 0.97
	translateTarget  = 100 * time.Millisecond
	propagationRoute = 3000
	propagationP99   = 100 * time.Millisecond
	propagationBig   = 10000
	propagationBigMx = 250 * time.Millisecond
)

// percentile is the nearest-rank percentile: with 20 samples p99 is the largest.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func medianFloat(fs []float64) float64 {
	if len(fs) == 0 {
		return 0
	}
	s := slices.Clone(fs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func medianOf(runs []loadResult, f func(loadResult) float64) float64 {
	var v []float64
	for _, r := range runs {
		v = append(v, f(r))
	}
	return medianFloat(v)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func (r *results) bench(name string) (goBench, bool) {
	for _, b := range r.GoBench {
		if b.Name == name {
			return b, true
		}
	}
	return goBench{}, false
}

func (r *results) benchOK(name string) *goBench {
	if b, ok := r.bench(name); ok {
		return &b
	}
	return nil
}

func (r *results) prop(n int) *propagationResult {
	for _, p := range r.Propagation {
		if p.Routes == n && p.Unavailable == "" {
			return p
		}
	}
	return nil
}

// target is one row of the summary.
type target struct{ name, want, got, verdict string }

func (r *results) targets() []target {
	var ts []target
	if s := r.Startup; s != nil {
		ratio := float64(percentile(s.Portico, 50)) / float64(percentile(s.Envoy, 50))
		ts = append(ts, target{"startup to first 200", fmt.Sprintf("<= %.1fx bare Envoy", startupTarget),
			fmt.Sprintf("%.2fx (%s vs %s)", ratio, ms(percentile(s.Portico, 50)), ms(percentile(s.Envoy, 50))), verdict(ratio <= startupTarget)})
	}
	for _, c := range []struct {
		n   int
		max time.Duration
	}{{propagationRoute, propagationP99}, {propagationBig, propagationBigMx}} {
		p := r.prop(c.n)
		if p == nil {
			ts = append(ts, target{fmt.Sprintf("route addition p99 at %d routes", c.n), "< " + ms(c.max), "not measured", "**missed**"})
			continue
		}
		p99 := percentile(p.Additions, 99)
		ts = append(ts, target{fmt.Sprintf("route addition p99 at %d routes", c.n), "< " + ms(c.max), ms(p99), verdict(p99 < c.max)})
	}
	var bad, total int64
	for _, p := range r.Propagation {
		for _, l := range []loadCount{p.AddLoad, p.EditLoad} {
			bad += l.Non2xx + l.Errors
			total += l.Total
		}
	}
	ts = append(ts, target{"non-2xx during additions and edits", "0", fmt.Sprintf("%d of %d", bad, total), verdict(bad == 0)})
	if b, ok := r.bench("translator.Translate/routes=10000"); ok {
		d := time.Duration(b.NsPerOp)
		ts = append(ts, target{"translate 10k routes", "< " + ms(translateTarget), ms(d), verdict(d < translateTarget)})
	}
	if b, ok := r.bench("translator.Pipeline/routes=10000"); ok {
		d := time.Duration(b.NsPerOp)
		ts = append(ts, target{"decode + validate + translate 10k routes", "< " + ms(translateTarget), ms(d), verdict(d < translateTarget)})
	}
	if dp := r.Dataplane; dp != nil {
		for _, proto := range []struct {
			name string
			runs map[string][]loadResult
		}{{"HTTP/1.1", dp.H1}, {"h2c", dp.H2}} {
			env, pt := proto.runs["envoy"], proto.runs["portico"]
			if len(env) == 0 || len(pt) == 0 {
				continue
			}
			ratio := medianOf(pt, rps) / medianOf(env, rps)
			ts = append(ts, target{"data plane " + proto.name + " req/s", fmt.Sprintf(">= %.2fx bare Envoy", dataplaneTarget), fmt.Sprintf("%.3fx", ratio), verdict(ratio >= dataplaneTarget)})
		}
	}
	return ts
}

func rps(l loadResult) float64 { return l.RPS }

func (r *results) summaryTable() string {
	var b strings.Builder
	b.WriteString("| Target | Goal | Measured | |\n|---|---|---|---|\n")
	for _, t := range r.targets() {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.name, t.want, t.got, t.verdict)
	}
	return b.String()
}

func (r *results) markdown(svgName string) string {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "# Portico benchmarks\n\nWritten by `make bench` (bench/cmd/portico-bench) on %s. Total wall time of `make bench`, "+
		"including installing peers and building: **%s** (budget 15 min).\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), r.Total.Round(time.Second))
	b.WriteString("Everything runs on loopback on this one machine; load generator, proxy and backend share its cores, " +
		"so absolute figures are low and only the ratios between contenders measured in the same run mean much. " +
		"Contenders alternate within the run; figures are medians. Timing never fails the run.\n\n")

	fmt.Fprintf(&b, "## Machine and versions\n\n- %d cores (%s), %d MB memory; load average at start %s\n", r.Machine.Cores, r.Machine.CPU, r.Machine.MemoryMB, r.Machine.LoadAvg)
	for _, v := range r.Machine.Versions {
		fmt.Fprintf(&b, "- %s: %s\n", v[0], v[1])
	}
	if o.note != "" {
		fmt.Fprintf(&b, "\n**Note on this run:** %s\n", o.note)
	}
	b.WriteString("\n## Targets\n\n")
	b.WriteString(r.summaryTable())

	if s := r.Startup; s != nil {
		fmt.Fprintf(&b, "\n## 1. Startup\n\nFrom process start to the first 200 through the gateway, %d routes, Envoy `--concurrency 1`, "+
			"%d runs each, alternating. Portico is `portico run --envoy-path` (Envoy already on disk); bare Envoy is `envoy -c` with a "+
			"hand-written static configuration of the same routes.\n\n", s.Routes, len(s.Portico))
		b.WriteString("| | median | min | max | runs |\n|---|---|---|---|---|\n")
		for _, c := range []struct {
			name string
			ds   []time.Duration
		}{{"portico", s.Portico}, {"bare Envoy", s.Envoy}} {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", c.name, ms(percentile(c.ds, 50)), ms(slices.Min(c.ds)), ms(slices.Max(c.ds)), joinMS(c.ds))
		}
		fmt.Fprintf(&b, "\nRatio of medians: **%.2fx** (target <= %.1fx).\n", float64(percentile(s.Portico, 50))/float64(percentile(s.Envoy, 50)), startupTarget)
		if len(s.Timeline) > 0 {
			b.WriteString("\nWhere portico's startup goes (one further run at `--log-level debug`, times from process start; log times have " +
				"millisecond resolution):\n\n| step | at |\n|---|---|\n")
			for _, ev := range s.Timeline {
				fmt.Fprintf(&b, "| %s | %s |\n", ev.Step, ms(ev.At))
			}
		}
	}

	fmt.Fprintf(&b, "\n## 2. Route propagation\n\nMethod (after gateway-api-bench): portico runs on a directory; N routes are exact paths in "+
		"VirtualServices of 1000 routes each (distinct domains), pointing at 4 Upstreams over 2 Go backends. Each addition writes a new "+
		"file (one VirtualService, one route) beside the directory and renames it in, then polls the new route every 1 ms until it answers "+
		"200; %d additions per N. Meanwhile 4 paced clients (~1000 req/s together) request an unrelated route. Then one route's upstream is "+
		"switched between two Upstreams %d times under the same load on that route; an edit counts as applied when the body names the "+
		"new backend. p99 of %d samples is the largest. Before measuring, a probe route is written, and rewritten until it is "+
		"served, because portico starts watching its files only after it prints its ready line (cmd/portico/run.go starts "+
		"controller.Watch after awaitReady): a file changed between the initial load and that point is not applied until the "+
		"next change. The first runs of this benchmark hit exactly that.\n\n", o.changes, o.changes, o.changes)
	b.WriteString("| routes | portico start to last route 200 | add p50 | add p99 | edit p50 | edit p99 | non-2xx/errors on unrelated route while adding | non-2xx/errors on edited route |\n|---|---|---|---|---|---|---|---|\n")
	for _, p := range r.Propagation {
		if p.Unavailable != "" {
			fmt.Fprintf(&b, "| %d | not measured: %s | | | | | | |\n", p.Routes, oneLine(p.Unavailable))
			continue
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %d / %d of %d | %d / %d of %d |\n", p.Routes, ms(p.Startup),
			ms(percentile(p.Additions, 50)), ms(percentile(p.Additions, 99)), ms(percentile(p.Edits, 50)), ms(percentile(p.Edits, 99)),
			p.AddLoad.Non2xx, p.AddLoad.Errors, p.AddLoad.Total, p.EditLoad.Non2xx, p.EditLoad.Errors, p.EditLoad.Total)
	}
	b.WriteString("\nWhere an addition's time goes, medians of the additions whose push and ACK portico's debug log shows " +
		"(log times have millisecond resolution). Portico: from the file's rename to the push (the watcher's 10 ms settle time, " +
		"reading the files, decoding the changed one, validating and translating the whole set, checking the resources). " +
		"Envoy: from the push to Envoy's ACK of every type (receiving the Gateway's route configuration and rebuilding it " +
		"with all N routes). Rest: from the ACK to the first 200 (the 1 ms poll; the worker thread taking the new routes).\n\n" +
		"| routes | portico | Envoy | rest | samples |\n|---|---|---|---|---|\n")
	for _, p := range r.Propagation {
		if p.Unavailable != "" || len(p.AddSteps) == 0 {
			continue
		}
		var pt, en, rest []time.Duration
		for _, st := range p.AddSteps {
			pt, en, rest = append(pt, st.Portico), append(en, st.Envoy), append(rest, st.Rest)
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %d |\n", p.Routes, ms(percentile(pt, 50)), ms(percentile(en, 50)), ms(percentile(rest, 50)), len(p.AddSteps))
	}
	fmt.Fprintf(&b, "\n![propagation time vs route count](%s)\n", svgName)

	b.WriteString("\n## 3. Translation and control-plane cost\n\n`go test -bench . -benchmem` in config, translator and controller; the YAML is " +
		"generated in the benchmark (bench/workload, 1000 routes per VirtualService). Parse = decode + validate; Pipeline = decode + " +
		"validate + translate of the whole configuration from its bytes, what portico pays at start. A reload decodes only the files " +
		"whose content changed (config.DecodeCache) and still validates and translates the whole set: controller.Reload is one route " +
		"addition at N routes as the propagation benchmark causes it (the files read again with one new file, built against the " +
		"served configuration, checked, and pushed to a real xDS server), all of portico's share of an addition but the settle " +
		"time.\n\n| benchmark | time/op | memory/op | allocs/op |\n|---|---|---|---|\n")
	for _, g := range r.GoBench {
		fmt.Fprintf(&b, "| %s | %s | %.1f MB | %.0f |\n", g.Name, ms(time.Duration(g.NsPerOp)), g.BPerOp/1e6, g.Alloc)
	}
	b.WriteString("\nResident memory (VmRSS) after the additions:\n\n| routes | portico | Envoy |\n|---|---|---|\n")
	for _, p := range r.Propagation {
		if p.Unavailable == "" && (p.Routes == 1000 || p.Routes == 10000) {
			fmt.Fprintf(&b, "| %d | %.1f MB | %.1f MB |\n", p.Routes, float64(p.PorticoRSS)/1024, float64(p.EnvoyRSS)/1024)
		}
	}
	if p, pl := r.prop(10000), r.benchOK("translator.Pipeline/routes=10000"); p != nil && pl != nil && p.PorticoRSS > 2*p.EnvoyRSS {
		fmt.Fprintf(&b, "\nAt 10k routes portico holds %.1fx Envoy's memory. It keeps the served configuration, the decoded "+
			"documents of every file (the decode cache), the translated and checked resources and the xDS cache's snapshot, and "+
			"each of the %d reloads before this reading allocated afresh for validation, translation and the push (the whole "+
			"configuration's first load allocates %.0f MB, Pipeline above); RSS includes heap the Go runtime has not yet "+
			"returned to the system. A heap profile of a long-running portico would show what is retained.\n",
			float64(p.PorticoRSS)/float64(p.EnvoyRSS), len(p.Additions)+1, pl.BPerOp/1e6)
	}

	if dp := r.Dataplane; dp != nil {
		fmt.Fprintf(&b, "\n## 4. Data plane\n\nOne Go backend; every proxy has one worker (Envoy `--concurrency 1`, nginx `worker_processes 1`, "+
			"HAProxy `nbthread 1`, Caddy `GOMAXPROCS=1`), keep-alive to the backend and no access log. HTTP/1.1: `wrk -t1 -c32 --latency`; "+
			"h2c with prior knowledge: `h2load -t1 -c4 -m8` (32 streams in flight). %d rounds of %s per contender, order reversed each round, "+
			"after a 1 s warm-up each; medians of the rounds. Ratios are to bare Envoy.\n\n"+
			"Bare Envoy runs the listener Portico generates for the same Gateway, so the ratio measures what Portico adds, not "+
			"what its safe defaults cost: the same connection manager settings (use_remote_address, normalize_path, "+
			"merge_slashes, path_with_escaped_slashes_action, headers_with_underscores_action, request headers, stream idle and "+
			"idle timeouts, the HTTP/2 stream limit and windows, the 32 KiB per-connection buffer limit, taken from config's "+
			"defaults), the router as the only HTTP filter, and the overload manager of Portico's bootstrap (heap and "+
			"connection monitors, load shedding near the heap limit). The differences left: Portico's cluster is EDS (its endpoints "+
			"come over xDS) where bare Envoy's is STATIC, its route carries a name, and its listener lists the WebSocket upgrade "+
			"(disabled). nginx, HAProxy and Caddy run their own defaults.\n\n", o.rounds, o.duration)
		b.WriteString("| HTTP/1.1 | req/s | vs bare Envoy | p50 | p99 | non-2xx/errors |\n|---|---|---|---|---|---|\n")
		base := medianOf(dp.H1["envoy"], rps)
		for _, n := range dp.Order {
			runs := dp.H1[n]
			if len(runs) == 0 {
				continue
			}
			var bad int64
			for _, l := range runs {
				bad += l.Non2xx + l.Error
			}
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %d |\n", n, medianOf(runs, rps), ratio(medianOf(runs, rps), base),
				ms(time.Duration(medianOf(runs, func(l loadResult) float64 { return float64(l.P50) }))),
				ms(time.Duration(medianOf(runs, func(l loadResult) float64 { return float64(l.P99) }))), bad)
		}
		b.WriteString("\n| h2c | req/s | vs bare Envoy | mean latency | failed/errored |\n|---|---|---|---|---|\n")
		base = medianOf(dp.H2["envoy"], rps)
		for _, n := range dp.Order {
			runs := dp.H2[n]
			if len(runs) == 0 {
				continue
			}
			var bad int64
			for _, l := range runs {
				bad += l.Error
			}
			fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %d |\n", n, medianOf(runs, rps), ratio(medianOf(runs, rps), base),
				ms(time.Duration(medianOf(runs, func(l loadResult) float64 { return float64(l.Mean) }))), bad)
		}
		b.WriteString("\nEach round's req/s, in the order the rounds ran, for the two contenders the target compares:\n\n")
		for _, proto := range []struct {
			name string
			runs map[string][]loadResult
		}{{"HTTP/1.1", dp.H1}, {"h2c", dp.H2}} {
			for _, n := range []string{"envoy", "portico"} {
				var rounds []string
				for _, l := range proto.runs[n] {
					rounds = append(rounds, fmt.Sprintf("%.0f", l.RPS))
				}
				fmt.Fprintf(&b, "- %s %s: %s\n", proto.name, n, strings.Join(rounds, ", "))
			}
		}
		if len(dp.Notes) > 0 {
			b.WriteString("\nNot measured:\n\n")
			keys := make([]string, 0, len(dp.Notes))
			for k := range dp.Notes {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				fmt.Fprintf(&b, "- %s: %s\n", k, oneLine(dp.Notes[k]))
			}
		}
	}
	b.WriteString(r.analysis())
	if r.Profile != "" {
		b.WriteString("\n## CPU profile: decode + validate + translate of 10k routes\n\nTop functions (flat) of translator's " +
			"Pipeline/routes=10000 benchmark (`go tool pprof -top`): the work portico does on the whole configuration before the first push. " +
			"It is in-process rather than a profile of the running binary because portico exposes no pprof endpoint; " +
			"a start runs the same code.\n\n```\n")
		b.WriteString(trimProfile(r.Profile))
		b.WriteString("```\n")
	}
	return b.String()
}

func ratio(v, base float64) string {
	if base == 0 {
		return "-"
	}
	return fmt.Sprintf("%.3fx", v/base)
}

func joinMS(ds []time.Duration) string {
	var s []string
	for _, d := range ds {
		s = append(s, fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)))
	}
	return strings.Join(s, ", ")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return strings.ReplaceAll(s, "|", "/")
}

// trimProfile drops pprof's header lines about the binary, which name a scratch path.
func trimProfile(p string) string {
	var keep []string
	for _, line := range strings.Split(p, "\n") {
		if strings.HasPrefix(line, "File:") || strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Time:") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.TrimLeft(strings.Join(keep, "\n"), "\n")
}

// analysis explains each missed target: the cause the figures point to and what would fix it.
func (r *results) analysis() string {
	var b strings.Builder
	for _, t := range r.targets() {
		if t.verdict == "met" {
			continue
		}
		if b.Len() == 0 {
			b.WriteString("\n## Missed targets: causes and fixes\n\n")
		}
		fmt.Fprintf(&b, "- **%s** (%s, goal %s). %s\n", t.name, t.got, t.want, explain(t.name))
	}
	return b.String()
}

func explain(name string) string {
	switch {
	case strings.HasPrefix(name, "route addition"):
		return "Section 2's second table splits an addition. Portico's share is the watcher's 10 ms settle time and one " +
			"reload: it decodes only the changed file but validates and translates the whole configuration and checks the " +
			"Gateway's whole route configuration (controller.Reload in section 3). Envoy's share is receiving the Gateway's " +
			"one route configuration and rebuilding it with all N routes, which grows with N. Fixes, in order of effect: " +
			"split the route configuration so Envoy rebuilds only the changed VirtualService's part (scoped RDS keyed by the " +
			"Host header, or VHDS, which needs delta xDS); validate and translate incrementally, only the changed " +
			"VirtualService and what refers to it."
	case strings.HasPrefix(name, "decode"):
		return "This is the whole configuration decoded, validated and translated from its bytes: what a start pays. A " +
			"reload decodes only the changed files (controller.Reload in section 3). Translation is well inside the " +
			"budget; the profile below shows YAML parsing (yaml.v3 building position-carrying nodes) as about half of the " +
			"time, then the strict decoder's and validation's field-path bookkeeping and the garbage collector. A large " +
			"file's documents are already decoded in parallel groups, one per processor, so on a busy two-core machine the " +
			"figure depends on what else runs. Fixes: decode separate files in parallel too; validate VirtualServices in " +
			"parallel; key the decoder's field positions by node instead of by path string."
	case strings.HasPrefix(name, "translate"):
		return "See the profile below for the hot functions in translation."
	case strings.HasPrefix(name, "startup"):
		return "The startup timeline in section 1 shows the steps in series: portico's own start (Go package " +
			"initialisation alone takes 15-20 ms: protobuf registries, Prometheus, YAML; `GODEBUG=inittrace=1`) and config " +
			"load, then Envoy's start, then the xDS round trips (CDS, EDS, LDS, RDS in order). The --envoy-path binary's " +
			"`--version` check is answered from a record of earlier checks keyed by the file's identity " +
			"(supervisor/verified.go), so it costs about a millisecond after the first start. Envoy's own part matches bare " +
			"Envoy. Fixes: shorten portico's own start (fewer init-time registrations, lazy metrics); the Proxy document's " +
			"process settings must be known before Envoy starts, so the configuration is read first."
	case strings.HasPrefix(name, "non-2xx"):
		return "Some requests failed while routes changed: see the propagation table for where. A route or cluster change " +
			"that replaces a resource Envoy is using (instead of updating it in place) drains its connections."
	case strings.HasPrefix(name, "data plane"):
		return "Portico and bare Envoy run the same binary with the same concurrency, connection manager settings, HTTP " +
			"filters and overload manager (section 4); Portico's listener carries the fault, CORS, rate " +
			"limit and security filters only when something it serves uses them. What remains differs in configuration " +
			"that does no per-request work (EDS instead of STATIC endpoints, a route name, a disabled WebSocket upgrade), " +
			"so a gap of a few percent is within the spread of rounds on a shared two-core machine where the load " +
			"generator, the proxy and the backend compete for the cores: compare the rounds listed under section 4's " +
			"tables, and rerun on a quiet machine before looking for a cause in the configuration."
	}
	return ""
}
