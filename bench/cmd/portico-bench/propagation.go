package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gw/portico/bench/workload"
)

// propagationResult is what one route count measured.
type propagationResult struct {
	Routes    int
	Startup   time.Duration   // portico start to the last configured route answering 200
	Additions []time.Duration // file written to new route answering 200
	// AddSteps splits each addition, where portico's debug log shows its push and Envoy's ACK.
	AddSteps    []additionSteps
	AddLoad     loadCount       // unrelated route, while routes were added
	Edits       []time.Duration // file written to the edited route answering from the new upstream
	EditLoad    loadCount       // the edited route, while it was edited
	PorticoRSS  int             // KiB, after the additions
	EnvoyRSS    int             // KiB, after the additions
	Unavailable string          // why this route count was not measured, if it was not
}

// loadCount counts the answers a steady background load got.
type loadCount struct {
	Total, Non2xx, Errors int64
}

// measurePropagation starts portico with n routes and measures additions and edits against it.
func measurePropagation(ctx context.Context, e *env, n, changes int) (*propagationResult, error) {
	res := &propagationResult{Routes: n}
	root := filepath.Join(e.scratch, "propagation", strconv.Itoa(n))
	_ = os.RemoveAll(root)
	cfgDir, stage := filepath.Join(root, "config"), filepath.Join(root, "stage")
	for _, d := range []string{cfgDir, stage} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := workload.Spec{Routes: n, PerService: 1000, GatewayPort: port, Backends: []int{e.backendA.port, e.backendB.port}, UpstreamCount: 4}
	write := func(name string, data []byte) error {
		// Write beside the watched directory and rename in, as editors do, so portico never
		// reads half a file.
		tmp := filepath.Join(stage, name)
		if err := os.WriteFile(tmp, data, 0o644); err != nil {
			return err
		}
		return os.Rename(tmp, filepath.Join(cfgDir, name))
	}
	// u0 points at backend A and u1 at backend B: an edit is visible in the body.
	const editHost, editPath = "edit.bench", "/e"
	for name, data := range map[string][]byte{
		"base.yaml":   s.Base(),
		"routes.yaml": s.RoutesYAML(),
		"edit.yaml":   workload.OneService("edit", editHost, editPath, workload.UpstreamName(0)),
	} {
		if err := write(name, data); err != nil {
			return nil, err
		}
	}

	p, err := startProc("portico", nil, e.portico, "run", "-c", cfgDir, "--envoy-path", e.envoy,
		"--state-dir", filepath.Join(root, "state"), "--concurrency", "1", "--log-level", "debug")
	if err != nil {
		return nil, err
	}
	defer p.stop()
	fail := func(what string, err error) error {
		return fmt.Errorf("%d routes: %s: %w; portico output:\n%s", n, what, err, strings.TrimSpace(p.out.String()))
	}
	c := newClient()
	defer c.CloseIdleConnections()
	lastSvc, lastPath := s.Locate(n - 1)
	res.Startup, err = waitFor(ctx, p.started, 5*time.Millisecond, 120*time.Second, func() bool {
		code, _, err := get(ctx, c, port, workload.Domain(lastSvc), lastPath)
		return err == nil && code == http.StatusOK || p.exited()
	})
	if err != nil || p.exited() {
		return nil, fail("start", fmt.Errorf("no 200 on the last route (%v)", err))
	}

	// portico starts watching its files only after it is ready, so a file written right after
	// the first 200 can be missed. Probe with a throwaway route, rewriting it until it is served.
	probed := false
	for try := 0; try < 10 && !probed; try++ {
		if err := write("probe.yaml", workload.OneService("probe", "probe.bench", fmt.Sprintf("/probe-%d", try), workload.UpstreamName(0))); err != nil {
			return nil, err
		}
		_, err := waitFor(ctx, time.Now(), 5*time.Millisecond, 3*time.Second, func() bool {
			code, _, err := get(ctx, c, port, "probe.bench", fmt.Sprintf("/probe-%d", try))
			return err == nil && code == http.StatusOK
		})
		probed = err == nil
	}
	if !probed {
		return nil, fail("probe", fmt.Errorf("no edit of the configuration directory was applied"))
	}

	// Additions, with a steady load on a route that does not change.
	stopLoad := steadyLoad(ctx, port, workload.Domain(0), workload.Path(0))
	for k := 0; k < changes; k++ {
		host := fmt.Sprintf("add-%d.bench", k)
		t0 := time.Now()
		if err := write(fmt.Sprintf("add-%d.yaml", k), workload.OneService(fmt.Sprintf("add-%d", k), host, "/new", workload.UpstreamName(k%4))); err != nil {
			stopLoad()
			return nil, err
		}
		var last string
		d, err := waitFor(ctx, t0, time.Millisecond, 30*time.Second, func() bool {
			code, _, err := get(ctx, c, port, host, "/new")
			last = fmt.Sprintf("last answer %d, error %v", code, err)
			return err == nil && code == http.StatusOK
		})
		if err != nil {
			stopLoad()
			return nil, fail(fmt.Sprintf("addition %d (%s)", k, last), err)
		}
		res.Additions = append(res.Additions, d)
		if st, ok := splitAddition(t0, d, p.out.all()); ok {
			res.AddSteps = append(res.AddSteps, st)
		}
	}
	res.AddLoad = stopLoad()
	if res.PorticoRSS, err = rssKiB(p.cmd.Process.Pid); err != nil {
		return nil, err
	}
	if pid, err := envoyPID(filepath.Join(root, "state")); err == nil {
		res.EnvoyRSS, _ = rssKiB(pid)
	}

	// Edits of one route's upstream, with a steady load on that route.
	stopLoad = steadyLoad(ctx, port, editHost, editPath)
	for k := 0; k < changes; k++ {
		target, want := workload.UpstreamName(1), e.backendB.name
		if k%2 == 1 {
			target, want = workload.UpstreamName(0), e.backendA.name
		}
		t0 := time.Now()
		if err := write("edit.yaml", workload.OneService("edit", editHost, editPath, target)); err != nil {
			stopLoad()
			return nil, err
		}
		d, err := waitFor(ctx, t0, time.Millisecond, 30*time.Second, func() bool {
			code, body, err := get(ctx, c, port, editHost, editPath)
			return err == nil && code == http.StatusOK && body == want
		})
		if err != nil {
			stopLoad()
			return nil, fail(fmt.Sprintf("edit %d", k), err)
		}
		res.Edits = append(res.Edits, d)
	}
	res.EditLoad = stopLoad()
	return res, nil
}

// steadyLoad sends paced requests to one route from a few keep-alive connections until the
// returned function is called; that function returns the counts.
func steadyLoad(ctx context.Context, port int, host, path string) func() loadCount {
	var total, non2xx, errs atomic.Int64
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient()
			defer c.CloseIdleConnections()
			// Paced, not flat out: the load must not starve the processes being measured of
			// the machine's two cores.
			tick := time.NewTicker(4 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				code, _, err := get(ctx, c, port, host, path)
				if ctx.Err() != nil {
					return
				}
				total.Add(1)
				switch {
				case err != nil:
					errs.Add(1)
				case code < 200 || code > 299:
					non2xx.Add(1)
				}
			}
		}()
	}
	return func() loadCount {
		cancel()
		wg.Wait()
		return loadCount{Total: total.Load(), Non2xx: non2xx.Load(), Errors: errs.Load()}
	}
}

// envoyPID reads the pid portico records for its Envoy.
func envoyPID(stateDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, "run", "envoy.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// additionSteps is where one route addition's time went.
type additionSteps struct {
	// Portico is from the file's rename to the push: the watcher's settle time, reading the
	// files, decoding the changed one, validating and translating all, checking the resources.
	Portico time.Duration
	// Envoy is from the push to Envoy's ACK of every type: sending the route configuration and
	// Envoy rebuilding it with all N routes.
	Envoy time.Duration
	// Rest is from the ACK to the first 200: the 1 ms poll and the worker thread taking the
	// new routes.
	Rest time.Duration
}

// splitAddition finds, in portico's debug log, the first generation pushed after written and
// Envoy's ACK of it. Log times have millisecond resolution.
func splitAddition(written time.Time, total time.Duration, log string) (additionSteps, bool) {
	var pushed, applied time.Time
	gen := ""
	for _, line := range strings.Split(log, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		ts, ok := strings.CutPrefix(f[0], "time=")
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || t.Before(written.Truncate(time.Millisecond)) {
			continue
		}
		switch {
		case gen == "" && strings.Contains(line, `msg="pushed xds generation"`):
			gen, pushed = logValue(line, "generation"), t
		case gen != "" && strings.Contains(line, `msg="envoy applied xds generation"`) && logValue(line, "generation") == gen:
			applied = t
		}
	}
	if gen == "" || applied.IsZero() {
		return additionSteps{}, false
	}
	st := additionSteps{Portico: max(pushed.Sub(written), 0), Envoy: applied.Sub(pushed)}
	st.Rest = max(total-st.Portico-st.Envoy, 0)
	return st, true
}

// logValue returns the value of key=value in a slog text line, "" if it is not there.
func logValue(line, key string) string {
	for _, f := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}
