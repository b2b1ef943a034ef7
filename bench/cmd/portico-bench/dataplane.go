package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// contender is one way of putting a proxy (or none) in front of the data-plane backend.
type contender struct {
	name   string
	h1, h2 int // ports for HTTP/1.1 and prior-knowledge h2c; h2 is 0 when not offered
	proc   *proc
	note   string // why it is missing, when it is
}

// loadResult is one wrk or h2load run.
type loadResult struct {
	RPS           float64
	P50, P99      time.Duration // wrk only
	Mean          time.Duration // h2load only
	Non2xx, Error int64
}

// dataplaneResult holds each contender's runs, in the order they ran.
type dataplaneResult struct {
	Order []string
	Notes map[string]string
	H1    map[string][]loadResult
	H2    map[string][]loadResult
}

// measureDataplane starts every contender in front of one Go backend, then alternates short
// wrk (HTTP/1.1) and h2load (h2c) runs over them for rounds rounds.
func measureDataplane(ctx context.Context, e *env, rounds int, dur time.Duration) (*dataplaneResult, error) {
	dir := filepath.Join(e.scratch, "dataplane")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	be, err := startBackend("data")
	if err != nil {
		return nil, err
	}
	defer be.close()
	res := &dataplaneResult{Notes: map[string]string{}, H1: map[string][]loadResult{}, H2: map[string][]loadResult{}}
	starters := []struct {
		name  string
		start func(dir string, backend int) (*contender, error)
	}{
		{"direct", func(string, int) (*contender, error) { return &contender{h1: be.port, h2: be.port}, nil }},
		{"envoy", func(d string, b int) (*contender, error) { return startBareEnvoy(e, d, b) }},
		{"portico", func(d string, b int) (*contender, error) { return startPortico(e, d, b) }},
		{"nginx", startNginx},
		{"haproxy", startHAProxy},
		{"caddy", startCaddy},
	}
	var running []*contender
	defer func() {
		for _, c := range running {
			c.proc.stop()
		}
	}()
	for _, s := range starters {
		cdir := filepath.Join(dir, s.name)
		_ = os.RemoveAll(cdir)
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			return nil, err
		}
		c, err := s.start(cdir, be.port)
		if err == nil {
			c.name = s.name
			err = waitServing(ctx, c)
		}
		if err != nil {
			res.Notes[s.name] = err.Error()
			fmt.Fprintf(e.log, "  %s: not measured: %v\n", s.name, err)
			if c != nil {
				c.proc.stop()
			}
			continue
		}
		running = append(running, c)
		res.Order = append(res.Order, s.name)
	}
	// Warm every contender's connection pools before anything is recorded.
	for _, c := range running {
		if _, err := runWrk(ctx, c.h1, time.Second); err != nil {
			return nil, fmt.Errorf("warm up %s: %w", c.name, err)
		}
	}
	for r := 0; r < rounds; r++ {
		order := append([]*contender(nil), running...)
		if r%2 == 1 { // alternate: whoever ran last in one round runs first in the next
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, c := range order {
			lr, err := runWrk(ctx, c.h1, dur)
			if err != nil {
				return nil, fmt.Errorf("wrk against %s: %w", c.name, err)
			}
			fmt.Fprintf(e.log, "  round %d http/1.1 %-8s %9.0f req/s p50 %v p99 %v\n", r+1, c.name, lr.RPS, lr.P50, lr.P99)
			res.H1[c.name] = append(res.H1[c.name], lr)
		}
		for _, c := range order {
			if c.h2 == 0 {
				continue
			}
			lr, err := runH2load(ctx, c.h2, dur)
			if err != nil {
				res.Notes[c.name+" h2c"] = err.Error()
				continue
			}
			fmt.Fprintf(e.log, "  round %d h2c      %-8s %9.0f req/s mean %v\n", r+1, c.name, lr.RPS, lr.Mean)
			res.H2[c.name] = append(res.H2[c.name], lr)
		}
	}
	return res, nil
}

func waitServing(ctx context.Context, c *contender) error {
	cl := newClient()
	defer cl.CloseIdleConnections()
	_, err := waitFor(ctx, time.Now(), 10*time.Millisecond, 30*time.Second, func() bool {
		code, _, err := get(ctx, cl, c.h1, "", "/")
		return err == nil && code == http.StatusOK || (c.proc != nil && c.proc.exited())
	})
	if err == nil && c.proc != nil && c.proc.exited() {
		err = fmt.Errorf("exited")
	}
	if err != nil && c.proc != nil {
		return fmt.Errorf("not serving: %w; output: %s", err, strings.TrimSpace(c.proc.out.String()))
	}
	return err
}

func startBareEnvoy(e *env, dir string, backend int) (*contender, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "envoy.yaml")
	conf, err := envoyStaticConfig(port, []staticVHost{{name: "all", domains: []string{"*"}, routes: []staticRoute{{prefix: "/", cluster: "data"}}}}, map[string]int{"data": backend})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(cfg, conf, 0o644); err != nil {
		return nil, err
	}
	p, err := startProc("envoy", nil, e.envoy, "-c", cfg, "--concurrency", "1", "--disable-hot-restart", "--log-level", "warning")
	if err != nil {
		return nil, err
	}
	return &contender{h1: port, h2: port, proc: p}, nil
}

func startPortico(e *env, dir string, backend int) (*contender, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "portico.yaml")
	conf := fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: bench}
spec: {bindAddress: 127.0.0.1, bindPort: %d}
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: all}
spec:
  routes:
  - match: {prefix: /}
    upstream: data
---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: data}
spec:
  static:
    hosts: [{address: 127.0.0.1, port: %d}]
`, port, backend)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := startProc("portico", nil, e.portico, "run", "-c", cfg, "--envoy-path", e.envoy,
		"--state-dir", filepath.Join(dir, "state"), "--concurrency", "1", "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	return &contender{h1: port, h2: port, proc: p}, nil
}

// The peers get one worker each, as Envoy gets --concurrency 1, keep-alive to the backend, no
// access log, and no per-connection request limit (nginx closes after 1000 by default).
func startNginx(dir string, backend int) (*contender, error) {
	if _, err := exec.LookPath("nginx"); err != nil {
		return nil, fmt.Errorf("nginx is not installed")
	}
	h1, err := freePort()
	if err != nil {
		return nil, err
	}
	h2, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`worker_processes 1;
daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream data {
    server 127.0.0.1:%[2]d;
    keepalive 64;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:%[3]d;
    listen 127.0.0.1:%[4]d http2;
    location / {
      proxy_pass http://data;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`, dir, backend, h1, h2)
	cfg := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := startProc("nginx", nil, "nginx", "-p", dir, "-c", cfg, "-e", filepath.Join(dir, "error.log"))
	if err != nil {
		return nil, err
	}
	return &contender{h1: h1, h2: h2, proc: p}, nil
}

func startHAProxy(dir string, backend int) (*contender, error) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		return nil, fmt.Errorf("haproxy is not installed")
	}
	h1, err := freePort()
	if err != nil {
		return nil, err
	}
	h2, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`global
  nbthread 1
  maxconn 1000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend bench
  bind 127.0.0.1:%d
  bind 127.0.0.1:%d proto h2
  default_backend data
backend data
  server data 127.0.0.1:%d
`, h1, h2, backend)
	cfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := startProc("haproxy", nil, "haproxy", "-f", cfg, "-db")
	if err != nil {
		return nil, err
	}
	return &contender{h1: h1, h2: h2, proc: p}, nil
}

func startCaddy(dir string, backend int) (*contender, error) {
	if _, err := exec.LookPath("caddy"); err != nil {
		return nil, fmt.Errorf("caddy is not installed")
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
	servers {
		protocols h1 h2c
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	reverse_proxy 127.0.0.1:%d
}
`, port, backend)
	cfg := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	// One OS thread running Go code: Caddy's equivalent of one worker.
	env := []string{"GOMAXPROCS=1", "HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir}
	p, err := startProc("caddy", env, "caddy", "run", "--config", cfg, "--adapter", "caddyfile")
	if err != nil {
		return nil, err
	}
	return &contender{h1: port, h2: port, proc: p}, nil
}

var (
	wrkRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	wrkPct    = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNon2xx = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	h2RPS     = regexp.MustCompile(`finished in [0-9.]+\w+, ([0-9.]+) req/s`)
	h2Status  = regexp.MustCompile(`requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored`)
	h2Mean    = regexp.MustCompile(`time for request:\s+\S+\s+\S+\s+(\S+)`)
)

// runWrk runs wrk with one thread and 32 connections: two cores shared by load generator,
// proxy and backend leave no room for more.
func runWrk(ctx context.Context, port int, d time.Duration) (loadResult, error) {
	out, err := exec.CommandContext(ctx, "wrk", "-t1", "-c32", "-d"+strconv.Itoa(int(d.Seconds()))+"s", "--latency",
		fmt.Sprintf("http://127.0.0.1:%d/", port)).CombinedOutput()
	if err != nil {
		return loadResult{}, fmt.Errorf("%w: %s", err, out)
	}
	return parseWrk(string(out))
}

func parseWrk(out string) (loadResult, error) {
	var r loadResult
	m := wrkRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk output: %s", out)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	for _, p := range wrkPct.FindAllStringSubmatch(out, -1) {
		d, err := parseUnit(p[2], p[3])
		if err != nil {
			return r, err
		}
		if p[1] == "50" {
			r.P50 = d
		} else {
			r.P99 = d
		}
	}
	if r.P50 == 0 || r.P99 == 0 {
		return r, fmt.Errorf("no latency distribution in wrk output: %s", out)
	}
	if m := wrkNon2xx.FindStringSubmatch(out); m != nil {
		r.Non2xx, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := wrkSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseInt(s, 10, 64)
			r.Error += n
		}
	}
	return r, nil
}

// runH2load sends prior-knowledge h2c: 4 connections with 8 streams each, the same 32 requests
// in flight as wrk.
func runH2load(ctx context.Context, port int, d time.Duration) (loadResult, error) {
	out, err := exec.CommandContext(ctx, "h2load", "-t1", "-c4", "-m8", "-D", strconv.Itoa(int(d.Seconds())),
		fmt.Sprintf("http://127.0.0.1:%d/", port)).CombinedOutput()
	if err != nil {
		return loadResult{}, fmt.Errorf("%w: %s", err, out)
	}
	return parseH2load(string(out))
}

func parseH2load(out string) (loadResult, error) {
	var r loadResult
	m := h2RPS.FindStringSubmatch(out)
	st := h2Status.FindStringSubmatch(out)
	if m == nil || st == nil {
		return r, fmt.Errorf("unexpected h2load output: %s", out)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	ok, _ := strconv.ParseInt(st[1], 10, 64)
	failed, _ := strconv.ParseInt(st[2], 10, 64)
	errored, _ := strconv.ParseInt(st[3], 10, 64)
	if ok == 0 {
		return r, fmt.Errorf("no request succeeded over h2c (failed %d, errored %d)", failed, errored)
	}
	r.Error = failed + errored
	if mm := h2Mean.FindStringSubmatch(out); mm != nil {
		num := strings.TrimRight(mm[1], "usm")
		unit := strings.TrimPrefix(mm[1], num)
		r.Mean, _ = parseUnit(num, unit)
	}
	return r, nil
}

func parseUnit(num, unit string) (time.Duration, error) {
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %q: %w", num, err)
	}
	switch unit {
	case "us":
		return time.Duration(f * float64(time.Microsecond)), nil
	case "ms":
		return time.Duration(f * float64(time.Millisecond)), nil
	case "s":
		return time.Duration(f * float64(time.Second)), nil
	}
	return 0, fmt.Errorf("unknown unit %q", unit)
}
