package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/portico-gw/portico/bench/workload"
)

// startupResult holds time from process start to the first 200 through the gateway.
type startupResult struct {
	Routes  int
	Portico []time.Duration
	Envoy   []time.Duration
	// Timeline is one further portico start at debug level: when each step happened.
	Timeline []timelineEvent
}

// timelineEvent is a step of portico's startup, from its own log, relative to process start.
type timelineEvent struct {
	Step string
	At   time.Duration
}

// startupSteps are the log messages that mark portico's startup steps, in order.
var startupSteps = []struct{ msg, step string }{
	{"msg=configuration ", "first log line: configuration source chosen"},
	{`msg="pushed xds generation"`, "configuration loaded, translated, snapshot set"},
	{`msg="using the envoy named by the user"`, "Envoy binary checked (--envoy-path)"},
	{`msg="envoy started"`, "Envoy process started"},
	{`msg="envoy xds stream opened"`, "Envoy connected to the xDS socket"},
	{`msg="envoy applied xds generation"`, "Envoy ACKed every resource"},
}

// measureStartup alternates `portico run` and `envoy -c` with equivalent configurations, runs
// times each, and times each from exec to the first 200 on a configured route.
func measureStartup(ctx context.Context, e *env, runs int) (*startupResult, error) {
	dir := filepath.Join(e.scratch, "startup")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	res := &startupResult{Routes: 10}
	for i := 0; i < runs; i++ {
		for _, contender := range []string{"portico", "envoy"} {
			d, _, err := startOnce(ctx, e, dir, contender, res.Routes, "warn")
			if err != nil {
				return nil, fmt.Errorf("startup run %d of %s: %w", i+1, contender, err)
			}
			if contender == "portico" {
				res.Portico = append(res.Portico, d)
			} else {
				res.Envoy = append(res.Envoy, d)
			}
		}
	}
	d, out, err := startOnce(ctx, e, dir, "portico", res.Routes, "debug")
	if err != nil {
		return nil, fmt.Errorf("startup timeline: %w", err)
	}
	res.Timeline = parseTimeline(out.started, out.out.all())
	res.Timeline = append(res.Timeline, timelineEvent{"first 200 through the gateway", d})
	return res, nil
}

// parseTimeline finds each startup step's first log line and its time relative to start.
func parseTimeline(start time.Time, log string) []timelineEvent {
	var events []timelineEvent
	lines := strings.Split(log, "\n")
	for _, s := range startupSteps {
		for _, line := range lines {
			if !strings.Contains(line, s.msg) {
				continue
			}
			ts, ok := strings.CutPrefix(strings.Fields(line)[0], "time=")
			if t, err := time.Parse(time.RFC3339Nano, ts); ok && err == nil {
				events = append(events, timelineEvent{s.step, t.Sub(start)})
			}
			break
		}
	}
	return events
}

// startOnce starts one contender and returns the time to its first 200 and the process.
func startOnce(ctx context.Context, e *env, dir, contender string, routes int, logLevel string) (time.Duration, *proc, error) {
	port, err := freePort()
	if err != nil {
		return 0, nil, err
	}
	s := workload.Spec{Routes: routes, PerService: 1000, GatewayPort: port, Backends: []int{e.backendA.port, e.backendB.port}, UpstreamCount: 2}
	var p *proc
	if contender == "portico" {
		cfg := filepath.Join(dir, "portico.yaml")
		if err := os.WriteFile(cfg, s.All(), 0o644); err != nil {
			return 0, nil, err
		}
		state := filepath.Join(dir, "state")
		_ = os.RemoveAll(state)
		p, err = startProc("portico", nil, e.portico, "run", "-c", cfg, "--envoy-path", e.envoy,
			"--state-dir", state, "--concurrency", "1", "--log-level", logLevel)
	} else {
		cfg := filepath.Join(dir, "envoy.yaml")
		conf, err := envoyStaticFor(s)
		if err != nil {
			return 0, nil, err
		}
		if err := os.WriteFile(cfg, conf, 0o644); err != nil {
			return 0, nil, err
		}
		p, err = startProc("envoy", nil, e.envoy, "-c", cfg, "--concurrency", "1",
			"--disable-hot-restart", "--log-level", "warning")
	}
	if err != nil {
		return 0, nil, err
	}
	defer p.stop()
	c := newClient()
	defer c.CloseIdleConnections()
	c.Timeout = 200 * time.Millisecond
	svc, path := s.Locate(routes - 1)
	d, err := waitFor(ctx, p.started, time.Millisecond, 60*time.Second, func() bool {
		code, _, err := get(ctx, c, port, workload.Domain(svc), path)
		return err == nil && code == http.StatusOK || p.exited()
	})
	if err == nil && p.exited() {
		err = fmt.Errorf("exited before serving")
	}
	if err != nil {
		return 0, nil, fmt.Errorf("%w; output:\n%s", err, strings.TrimSpace(p.out.String()))
	}
	return d, p, nil
}
