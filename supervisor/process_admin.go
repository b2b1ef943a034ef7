package supervisor

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

const (
	addressPollInterval = 20 * time.Millisecond
	readyPollInterval   = 100 * time.Millisecond
	drainPollInterval   = 100 * time.Millisecond
	adminRequestTimeout = 2 * time.Second
)

// activeRequestsFilter selects the live gauges of in-flight requests of every HTTP connection
// manager, Envoy's admin included. A drain waits for requests, not connections: Envoy keeps idle
// keep-alive connections open during a graceful drain, and waiting for their clients to hang up
// would make every stop last the whole drain timeout while nothing is in flight.
const activeRequestsFilter = `^http\..+\.downstream_rq_active$`

// newAdminClient returns the client for Envoy's admin endpoint. The endpoint is on loopback and
// must never be reached through a proxy taken from the environment; without keep-alives the
// polling leaves no idle connections behind to an Envoy that is gone.
func newAdminClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		Timeout:   adminRequestTimeout,
	}
}

// readAdminAddress reads the "host:port" Envoy wrote to path. Envoy truncates the file before
// writing it, so an empty or partial read is reported as an error and polled again.
func readAdminAddress(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	addr := strings.TrimSpace(string(raw))
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("admin address file %s: %w", path, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return "", fmt.Errorf("admin address file %s: bad port %q", path, port)
	}
	return addr, nil
}

// adminRequest sends one request to Envoy's admin endpoint and returns the body of a 200 reply.
func (s *Supervisor) adminRequest(ctx context.Context, method, addr, pathAndQuery string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+pathAndQuery, nil)
	if err != nil {
		return "", fmt.Errorf("envoy admin %s %s: %w", method, pathAndQuery, err)
	}
	resp, err := s.admin.Do(req)
	if err != nil {
		return "", fmt.Errorf("envoy admin %s %s: %w", method, pathAndQuery, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("envoy admin %s %s: read body: %w", method, pathAndQuery, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("envoy admin %s %s: status %d: %s",
			method, pathAndQuery, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return string(body), nil
}

func (s *Supervisor) isReady(ctx context.Context, addr string) bool {
	_, err := s.adminRequest(ctx, http.MethodGet, addr, "/ready")
	return err == nil
}

// activeRequests sums the requests in flight through Envoy's traffic listeners. The admin
// request asking is itself in flight and counted, so one is taken off; any other concurrent admin
// request only makes the drain wait longer, never cut a request short.
func (s *Supervisor) activeRequests(ctx context.Context, addr string) (int, error) {
	body, err := s.adminRequest(ctx, http.MethodGet, addr,
		"/stats?filter="+url.QueryEscape(activeRequestsFilter))
	if err != nil {
		return 0, err
	}
	total := 0
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			return 0, fmt.Errorf("envoy stat %s: value %q is not a number", name, value)
		}
		total += n
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return max(total-1, 0), nil
}

// drain tells Envoy to drain gracefully and to stop accepting connections, and waits, at most
// the current Settings' DrainTimeout, until no request is left in flight.
func (s *Supervisor) drain(ctx context.Context, p *envoyProcess, addr string) {
	timeout := s.Settings().DrainTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	begin := time.Now()
	if _, err := s.adminRequest(ctx, http.MethodPost, addr, "/drain_listeners?graceful"); err != nil {
		s.log.Warn("could not start draining envoy; stopping it without a drain", "pid", p.pid, "error", err)
		return
	}
	// The graceful drain makes every response tell its client to close the connection; this
	// second call closes the listening sockets, so that new connections are refused at once
	// and clients try elsewhere, while the requests in flight go on.
	if _, err := s.adminRequest(ctx, http.MethodPost, addr, "/drain_listeners"); err != nil {
		s.log.Warn("could not close envoy's listeners; they accept connections until envoy exits", "pid", p.pid, "error", err)
	}
	ticker := time.NewTicker(drainPollInterval)
	defer ticker.Stop()
	open, lastErr := -1, error(nil)
	for {
		n, err := s.activeRequests(ctx, addr)
		if err == nil && n == 0 {
			s.log.Info("envoy drained", "pid", p.pid, "took", time.Since(begin).Round(time.Millisecond))
			return
		}
		if err == nil {
			open = n
		} else {
			lastErr = err
		}
		select {
		case <-p.exited:
			return
		case <-ctx.Done():
			attrs := []any{"pid", p.pid, "drain_timeout", timeout}
			if open >= 0 {
				attrs = append(attrs, "requests_in_flight", open)
			}
			if lastErr != nil {
				attrs = append(attrs, "last_error", lastErr)
			}
			s.log.Warn("envoy still had requests in flight when the drain timed out", attrs...)
			return
		case <-ticker.C:
		}
	}
}
