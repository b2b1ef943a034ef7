package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// TestHotRestartUnderLoad changes Envoy's log level, which needs a new process, by hot restart
// while clients send requests without a pause: not one request may fail, and a different
// process with the new setting must serve afterwards.
func TestHotRestartUnderLoad(t *testing.T) {
	t.Parallel()
	port := envoytest.FreePort(t)
	opts := testOptions(t, writeBootstrap(t, t.TempDir(), port, envoytest.FreePort(t)))
	opts.DrainTimeout = time.Second
	rs := startSupervisor(t, opts)
	rs.waitReady(t)
	before := rs.PID()

	url := fmt.Sprintf("http://127.0.0.1:%d/", port)
	// Keep-alive clients, as real ones are: their connections to the old epoch must close
	// cleanly and the next request land on the new one.
	client := &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if body, err := get(client, url); err != nil || body != directBody {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%q, %v", body, err))
				} else {
					ok.Add(1)
				}
			}
		})
	}
	// Load runs for a bounded time around the restart.
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	want := Settings{Concurrency: 1, LogLevel: "warning", DrainTimeout: 2 * time.Second}
	if err := rs.HotRestart(ctx, want); err != nil {
		close(stop)
		wg.Wait()
		t.Fatalf("HotRestart: %v", err)
	}
	after := rs.PID()
	// Keep the load on while the old epoch drains and is ended.
	eventually(t, 15*time.Second, func() error {
		if !exists(before) {
			return nil
		}
		return fmt.Errorf("the previous epoch %d still runs", before)
	})
	close(stop)
	wg.Wait()

	if after == before || after == 0 {
		t.Errorf("PID() after hot restart = %d, before %d: want a new process", after, before)
	}
	if failed.Load() != 0 {
		t.Errorf("%d of %d requests failed during the hot restart; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	if ok.Load() < 100 {
		t.Errorf("only %d requests were sent: the load did not cover the restart", ok.Load())
	}
	if rs.HotRestarts() != 1 || rs.Restarts() != 0 {
		t.Errorf("HotRestarts() = %d, Restarts() = %d; want 1 and 0", rs.HotRestarts(), rs.Restarts())
	}
	if got := rs.Settings(); got != want {
		t.Errorf("Settings() = %+v after the hot restart, want %+v", got, want)
	}
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", after)); err != nil || !strings.Contains(string(cmdline), "-l\x00warning\x00") ||
		!strings.Contains(string(cmdline), "--drain-time-s\x002\x00") {
		t.Errorf("new envoy's command line %q (%v) lacks -l warning or --drain-time-s 2", cmdline, err)
	}
	if got := readPIDFile(t, opts.RunDir); got != after {
		t.Errorf("pid file holds %d after the old epoch exited, want the new epoch %d", got, after)
	}
	if err := servesDirectBody(port)(); err != nil {
		t.Errorf("after the hot restart: %v", err)
	}

	// Stopping still drains and ends the current epoch.
	rs.cancel()
	if err := rs.waitReturned(t, returnBound); err != nil {
		t.Fatalf("Run = %v after stop", err)
	}
	if exists(after) {
		t.Errorf("envoy %d still exists after Run returned", after)
	}
}

func TestHotRestartRefusedBeforeReady(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "fake-envoy")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 60\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	rs := startSupervisor(t, Options{EnvoyPath: script, BootstrapPath: filepath.Join(dir, "b.yaml"), RunDir: filepath.Join(dir, "run")})
	eventually(t, 5*time.Second, func() error {
		if rs.PID() == 0 {
			return errors.New("not started")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rs.HotRestart(ctx, Settings{}); err == nil || !strings.Contains(err.Error(), "not ready yet") {
		t.Errorf("HotRestart of an Envoy that is not ready = %v, want a refusal", err)
	}
}

// TestKillsStaleEnvoy leaves an Envoy running with a pid file in the run directory, as a
// crashed run would, and checks that the next Run kills it and serves on the same port.
func TestKillsStaleEnvoy(t *testing.T) {
	t.Parallel()
	port := envoytest.FreePort(t)
	opts := testOptions(t, writeBootstrap(t, t.TempDir(), port, envoytest.FreePort(t)))
	if err := os.MkdirAll(opts.RunDir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := exec.Command(opts.EnvoyPath, "-c", opts.BootstrapPath, "--concurrency", "1",
		"--base-id", fmt.Sprint(baseIDFor(opts.RunDir)), "-l", "error")
	stale.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := stale.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { stale.Wait(); close(reaped) }()
	t.Cleanup(func() { stale.Process.Kill(); <-reaped })
	eventually(t, 20*time.Second, servesDirectBody(port))
	if err := writePIDFile(filepath.Join(opts.RunDir, pidFile), stale.Process.Pid); err != nil {
		t.Fatal(err)
	}

	rs := startSupervisor(t, opts)
	rs.waitReady(t)
	select {
	case <-reaped:
	case <-time.After(5 * time.Second):
		t.Fatalf("stale envoy %d still runs after the new Run became ready", stale.Process.Pid)
	}
	if pid := rs.PID(); pid == stale.Process.Pid || pid == 0 {
		t.Errorf("PID() = %d, want a new Envoy", pid)
	}
	if err := servesDirectBody(port)(); err != nil {
		t.Errorf("new envoy does not serve: %v", err)
	}
	if len(rs.logs.find(t, map[string]any{"msg": "killing an envoy left behind by an earlier run in this state directory"})) != 1 {
		t.Error("no warning about the stale envoy")
	}
}

// TestStalePIDFileOfAnotherProcess: a pid file naming a live process that is not our Envoy
// (pids are reused) must leave that process alone.
func TestStalePIDFileOfAnotherProcess(t *testing.T) {
	t.Parallel()
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	dir := t.TempDir()
	s := New(Options{EnvoyPath: "envoy", BootstrapPath: filepath.Join(dir, "b.yaml"), RunDir: dir})
	if err := writePIDFile(filepath.Join(dir, pidFile), other.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if err := s.killStale(); err != nil {
		t.Fatal(err)
	}
	if processGone(other.Process.Pid) {
		t.Fatal("killStale killed a process that is not an envoy")
	}
	if _, err := os.Stat(filepath.Join(dir, pidFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale pid file left in place: %v", err)
	}
}

// TestRunLogsArePrunedAndLinked runs the supervisor seven times against an Envoy that fails at
// once: each run gets its own log, envoy.log names the newest, and five are kept.
func TestRunLogsArePrunedAndLinked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "fake-envoy")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"run $$\"\nexit 7\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	for i := range 7 {
		s := New(Options{EnvoyPath: script, BootstrapPath: filepath.Join(dir, "b.yaml"), RunDir: runDir, MaxExits: 1})
		if err := s.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "exit code 7") {
			t.Fatalf("run %d: Run = %v, want exit code 7", i, err)
		}
	}
	entries, err := os.ReadDir(filepath.Join(runDir, "runs"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 5 {
		t.Fatalf("%d run log directories kept, want 5", len(entries))
	}
	newest := filepath.Join(runDir, "runs", entries[len(entries)-1].Name(), envoyLogFile)
	target, err := os.Readlink(filepath.Join(runDir, envoyLogFile))
	if err != nil || target != newest {
		t.Errorf("envoy.log links to %q (%v), want %q", target, err, newest)
	}
	raw, err := os.ReadFile(newest)
	if err != nil || !strings.HasPrefix(string(raw), "run ") {
		t.Errorf("newest run log = %q, %v; want the fake envoy's output", raw, err)
	}
}

func TestCheckListeners(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	free := envoytest.FreePort(t)

	tests := []struct {
		name      string
		listeners []Listener
		want      []string // substrings of the error; none means no error
	}{
		{"free", []Listener{{Owner: `gateway "a"`, Address: "127.0.0.1", Port: free}}, nil},
		{"taken", []Listener{
			{Owner: `gateway "a"`, Address: "127.0.0.1", Port: free},
			{Owner: `gateway "web"`, Address: "127.0.0.1", Port: busyPort},
		}, []string{fmt.Sprintf(`gateway "web": port %d on 127.0.0.1 is already in use`, busyPort)}},
		{"not local", []Listener{{Owner: `gateway "far"`, Address: "192.0.2.1", Port: free}},
			[]string{`gateway "far": address 192.0.2.1 is not an address of this machine`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckListeners(tt.listeners)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("CheckListeners = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("CheckListeners = nil, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), `gateway "a"`) {
				t.Errorf("error names the free listener: %v", err)
			}
		})
	}
}

// TestProcessGoneSeesAnUnreapedZombie: a child that exited but was not yet waited for still has
// /proc entries; it counts as gone, as a killed stale Envoy whose parent has not reaped it must.
func TestProcessGoneSeesAnUnreapedZombie(t *testing.T) {
	t.Parallel()
	child := exec.Command("true")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { child.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for !processGone(child.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d exited but processGone still reports it running", child.Process.Pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", child.Process.Pid)); err != nil {
		t.Fatalf("the zombie was reaped before the check, so the test proves nothing: %v", err)
	}
}
