// Command portico-bench measures Portico against bare Envoy and against nginx, HAProxy and
// Caddy on loopback: startup, route propagation, control-plane cost and data-plane throughput.
// It starts real processes (the built portico binary, the pinned Envoy, the peers) and Go
// backends, alternates contenders within one run, prints a table and writes bench/results.md
// with an SVG plot. It reports figures and never fails on timing; it fails only when something
// cannot be measured at all. `make bench` runs it; `make test` does not.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is what every measurement shares.
type env struct {
	portico, envoy string
	repo, scratch  string
	log            io.Writer
	// Two backends with different answers, so an upstream edit is visible in the body.
	backendA, backendB *backend
}

type options struct {
	routes      []int
	changes     int
	startupRuns int
	rounds      int
	duration    time.Duration
	out, svg    string
	started     time.Time
	// note is what the person running the benchmark knows about the run, such as other work
	// on the machine; it is printed with the machine's description.
	note string
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portico-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	e := &env{log: stdout}
	var o options
	var routes string
	var startedNS int64
	fs.StringVar(&e.portico, "portico", "bin/portico", "portico binary to measure")
	fs.StringVar(&e.envoy, "envoy", ".cache/envoy/1.40.0/envoy", "Envoy binary, for portico and for bare Envoy")
	fs.StringVar(&e.scratch, "scratch", "bench/out", "directory for generated configs and process state")
	fs.StringVar(&o.out, "out", "bench/results.md", "results file to write")
	fs.StringVar(&o.svg, "svg", "bench/propagation.svg", "propagation plot to write")
	fs.StringVar(&routes, "routes", "100,1000,3000,10000", "route counts for the propagation benchmark")
	fs.IntVar(&o.changes, "changes", 20, "route additions and upstream edits per route count")
	fs.IntVar(&o.startupRuns, "startup-runs", 7, "startup runs per contender")
	fs.IntVar(&o.rounds, "rounds", 4, "data-plane rounds")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each data-plane run")
	fs.StringVar(&o.note, "note", "", "a remark printed with the machine's description, such as other work running on it")
	fs.Int64Var(&startedNS, "started", 0, "when `make bench` started, in Unix nanoseconds (default: now)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.started = time.Now()
	if startedNS > 0 {
		o.started = time.Unix(0, startedNS)
	}
	for _, f := range strings.Split(routes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			fmt.Fprintf(stderr, "error: -routes: %q is not a positive number\n", f)
			return 2
		}
		o.routes = append(o.routes, n)
	}
	if err := bench(ctx, e, o); err != nil {
		fmt.Fprintf(stderr, "error: %v\n", err)
		return 1
	}
	return 0
}

func bench(ctx context.Context, e *env, o options) error {
	var err error
	for _, p := range []*string{&e.portico, &e.envoy, &e.scratch, &o.out, &o.svg} {
		if *p, err = filepath.Abs(*p); err != nil {
			return err
		}
	}
	if e.repo, err = os.Getwd(); err != nil {
		return err
	}
	if err := os.MkdirAll(e.scratch, 0o755); err != nil {
		return err
	}
	for _, p := range []string{e.portico, e.envoy} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%w (run make build and make envoy first)", err)
		}
	}
	if e.backendA, err = startBackend("a"); err != nil {
		return err
	}
	defer e.backendA.close()
	if e.backendB, err = startBackend("b"); err != nil {
		return err
	}
	defer e.backendB.close()

	r := &results{Options: o, Machine: describeMachine(ctx, e)}
	fmt.Fprintln(e.log, "== control-plane cost: go benchmarks")
	if r.GoBench, r.Profile, err = goBenchmarks(ctx, e); err != nil {
		return err
	}
	fmt.Fprintln(e.log, "== startup")
	if r.Startup, err = measureStartup(ctx, e, o.startupRuns); err != nil {
		return err
	}
	fmt.Fprintln(e.log, "== data plane")
	if r.Dataplane, err = measureDataplane(ctx, e, o.rounds, o.duration); err != nil {
		return err
	}
	fmt.Fprintln(e.log, "== route propagation")
	for _, n := range o.routes {
		t0 := time.Now()
		p, err := measurePropagation(ctx, e, n, o.changes)
		if err != nil {
			if errors.Is(err, context.Canceled) {
				return err
			}
			// One route count failing must not lose the others' figures.
			fmt.Fprintf(e.log, "  %d routes: not measured: %v\n", n, err)
			p = &propagationResult{Routes: n, Unavailable: err.Error()}
		} else {
			fmt.Fprintf(e.log, "  %d routes: add p50 %v p99 %v, edit p50 %v, non-2xx %d+%d (%s)\n", n,
				percentile(p.Additions, 50), percentile(p.Additions, 99), percentile(p.Edits, 50),
				p.AddLoad.Non2xx+p.AddLoad.Errors, p.EditLoad.Non2xx+p.EditLoad.Errors, time.Since(t0).Round(time.Second))
		}
		r.Propagation = append(r.Propagation, p)
	}
	r.Total = time.Since(o.started)

	md := r.markdown(filepath.Base(o.svg))
	if err := os.WriteFile(o.out, []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(o.svg, propagationSVG(r.Propagation), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(e.log)
	fmt.Fprint(e.log, r.summaryTable())
	fmt.Fprintf(e.log, "\nwrote %s and %s (total %s)\n", o.out, o.svg, r.Total.Round(time.Second))
	return nil
}
