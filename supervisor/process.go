package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Files Envoy and the supervisor keep in RunDir.
const (
	adminAddressFile = "admin-address.txt"
	pidFile          = "envoy.pid"
)

// outputDrainTimeout bounds how long an exited Envoy's output is still read. The pipes close
// when Envoy exits unless something it spawned inherited them; the supervisor must not hang on
// such a straggler.
const outputDrainTimeout = 2 * time.Second

// envoyProcess is one started Envoy, from fork to reaping.
type envoyProcess struct {
	pid   int
	epoch int // hot restart epoch: 0 for a fresh start, one more than its parent's otherwise
	tail  *lineRing

	exited chan struct{} // closed once Envoy has been reaped
	done   chan struct{} // closed once exited, output read and the pid file removed
	ready  chan struct{} // closed when admin /ready first answered 200

	mu         sync.Mutex
	adminAddr  string
	readyAt    time.Time
	killReason string
	state      *os.ProcessState
}

func (p *envoyProcess) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *envoyProcess) adminAddress() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.adminAddr
}

func (p *envoyProcess) readySince() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.readyAt
}

// signalGroup signals Envoy's process group. Setpgid made Envoy the leader of a group of its
// own, so -pid reaches Envoy and anything it spawned, and nothing else. Once Envoy is reaped its
// pid may be reused, so an exited process is never signalled.
func (p *envoyProcess) signalGroup(sig syscall.Signal) {
	if p.hasExited() {
		return
	}
	// ESRCH only means the group is already gone, which is what a signal here is for.
	_ = syscall.Kill(-p.pid, sig)
}

// kill ends an Envoy the supervisor has given up on, recording why for the exit report.
func (p *envoyProcess) kill(reason string) {
	p.mu.Lock()
	p.killReason = reason
	p.mu.Unlock()
	p.signalGroup(syscall.SIGKILL)
}

// exitReason describes how Envoy ended: "exit code 1", "signal SIGKILL", plus the supervisor's
// reason when it was the supervisor that killed it. Valid once done is closed.
func (p *envoyProcess) exitReason() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	reason := describeExit(p.state)
	if p.killReason != "" {
		reason += " (killed by the supervisor: " + p.killReason + ")"
	}
	return reason
}

func describeExit(state *os.ProcessState) string {
	if state == nil {
		return "unknown exit status"
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		name := unix.SignalName(ws.Signal())
		if name == "" {
			name = strconv.Itoa(int(ws.Signal()))
		}
		if ws.CoreDump() {
			return "signal " + name + " (core dumped)"
		}
		return "signal " + name
	}
	return "exit code " + strconv.Itoa(state.ExitCode())
}

// args builds the command line of the Envoy of hot restart epoch epoch.
func (s *Supervisor) args(epoch int, settings Settings) []string {
	drain := drainSeconds(settings.DrainTimeout)
	args := []string{
		"-c", s.opts.BootstrapPath,
		"--admin-address-path", filepath.Join(s.opts.RunDir, adminAddressFile),
		"-l", settings.LogLevel,
		"--log-format", envoyLogFormat,
		// Hot restart: every epoch shares the base id, which names the shared memory and the
		// domain sockets the epochs talk over. It is derived from the run directory, so two
		// Porticos with different state directories never meet there.
		"--base-id", strconv.FormatUint(uint64(s.opts.BaseID), 10),
		"--restart-epoch", strconv.Itoa(epoch),
		// The sockets are files, owner-only in an owner-only directory, rather than Envoy's
		// default abstract sockets, which any local user could connect to.
		"--socket-path", filepath.Join(s.opts.SocketDir, hotRestartSocketName),
		"--socket-mode", "600",
		// A parent that has gone (it crashed, or was killed) must not stop the new epoch from
		// starting: it then binds its listeners itself.
		"--skip-hot-restart-on-no-parent",
		// Drain immediately: from the start of a drain every response tells its client to close
		// the connection, instead of Envoy's default of closing a growing share of them over ten
		// minutes. The same drain time bounds how long listeners removed by an update linger,
		// and how long the parent epoch drains after a hot restart.
		"--drain-strategy", "immediate",
		"--drain-time-s", strconv.Itoa(drain),
		// The parent of a hot restart keeps serving the requests it has in flight for another
		// drain period after its listeners have drained, then the new epoch ends it.
		"--parent-shutdown-time-s", strconv.Itoa(2 * drain),
	}
	if settings.Concurrency > 0 {
		args = append(args, "--concurrency", strconv.Itoa(settings.Concurrency))
	}
	return args
}

// drainSeconds rounds d up to whole seconds, the unit of --drain-time-s, and at least 1.
func drainSeconds(d time.Duration) int {
	return max(1, int((d+time.Second-1)/time.Second))
}

// start forks a new Envoy of hot restart epoch epoch and begins reading its output. The returned
// process is running; its done channel closes when it has exited and been cleaned up after.
func (s *Supervisor) start(out *outputFile, epoch int, settings Settings) (*envoyProcess, error) {
	addrPath := filepath.Join(s.opts.RunDir, adminAddressFile)
	// A file left by an earlier Envoy would hand out an address nobody listens on any more.
	if err := os.Remove(addrPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("remove stale admin address file: %w", err)
	}
	stdoutR, stdoutW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create envoy stdout pipe: %w", err)
	}
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		stdoutR.Close()
		stdoutW.Close()
		return nil, fmt.Errorf("create envoy stderr pipe: %w", err)
	}

	cmd := exec.Command(s.opts.EnvoyPath, s.args(epoch, settings)...)
	// Handing exec real files lets Envoy write straight into the pipes, so Wait returns when
	// Envoy exits rather than when every copy of the pipes is closed.
	cmd.Stdout, cmd.Stderr = stdoutW, stderrW
	if len(s.opts.Env) > 0 {
		cmd.Env = append(os.Environ(), s.opts.Env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// A group of its own lets the supervisor signal Envoy and anything it spawns together,
		// and keeps a terminal's Ctrl-C from reaching Envoy before Portico has drained it.
		Setpgid: true,
		// The kernel kills Envoy when the thread that started it dies, however Portico dies,
		// SIGKILL included. See own.
		Pdeathsig: syscall.SIGKILL,
	}
	proc := &envoyProcess{
		epoch:  epoch,
		tail:   newLineRing(tailLines),
		exited: make(chan struct{}),
		done:   make(chan struct{}),
		ready:  make(chan struct{}),
	}

	var output sync.WaitGroup
	output.Add(2)
	started := make(chan error, 1)
	go s.own(cmd, proc, started, &output)
	err = <-started
	// The child holds its own copies of the write ends; the parent's would keep the pipes open,
	// and the readers from ever seeing end of file, after Envoy exits.
	stdoutW.Close()
	stderrW.Close()
	if err != nil {
		stdoutR.Close()
		stderrR.Close()
		return nil, err
	}
	go s.readOutput(stdoutR, proc.tail, out, &output)
	go s.readOutput(stderrR, proc.tail, out, &output)
	s.log.Info("envoy started", "pid", proc.pid, "epoch", epoch, "path", s.opts.EnvoyPath, "args", cmd.Args[1:])
	return proc, nil
}

// own starts cmd and stays with it until it exits, reporting the start on started.
//
// Pdeathsig fires when the thread that forked the child exits, not when the process does, and
// Go retires idle threads at will: forked from an ordinary goroutine, Envoy could be killed the
// moment the runtime happened to end that thread. So the fork happens on a goroutine locked to
// its thread, which stays blocked in Wait for Envoy's whole life; the thread then dies only with
// Portico (taking Envoy with it) or after Envoy has exited. The lock is never released: the
// runtime ends the thread when this goroutine returns rather than reusing it.
func (s *Supervisor) own(cmd *exec.Cmd, proc *envoyProcess, started chan<- error, output *sync.WaitGroup) {
	runtime.LockOSThread()
	if err := cmd.Start(); err != nil {
		started <- fmt.Errorf("start envoy %s: %w", s.opts.EnvoyPath, err)
		return
	}
	proc.pid = cmd.Process.Pid
	pidPath := filepath.Join(s.opts.RunDir, pidFile)
	if err := writePIDFile(pidPath, proc.pid); err != nil {
		_ = syscall.Kill(-proc.pid, syscall.SIGKILL)
		_ = cmd.Wait()
		started <- err
		return
	}
	started <- nil

	// The wait error repeats what ProcessState says; the exit is reported from the latter.
	_ = cmd.Wait()
	proc.mu.Lock()
	proc.state = cmd.ProcessState
	proc.mu.Unlock()
	close(proc.exited)

	drained := make(chan struct{})
	go func() {
		output.Wait()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(outputDrainTimeout):
		s.log.Warn("envoy exited but its output is still open; no longer waiting for it", "pid", proc.pid)
	}
	// After a hot restart the file names the new epoch, which must stay findable.
	if pid, err := pidFromFile(pidPath); err == nil && pid == proc.pid {
		if err := os.Remove(pidPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("remove envoy pid file", "path", pidPath, "error", err)
		}
	}
	close(proc.done)
}

// writePIDFile writes pid atomically, so a reader never sees a partial number.
func writePIDFile(path string, pid int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		return fmt.Errorf("write envoy pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write envoy pid file: %w", err)
	}
	return nil
}

// pidFromFile reads the pid written by writePIDFile.
func pidFromFile(path string) (int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s holds %q, not a process id", path, raw)
	}
	return pid, nil
}

// watch follows a new Envoy until it is ready: it learns the admin address, then polls /ready.
// An Envoy that never writes its admin address cannot be checked or drained, so it is killed
// and left to the restart logic.
func (s *Supervisor) watch(ctx context.Context, p *envoyProcess) {
	addr, err := s.awaitAdminAddress(ctx, p)
	if err != nil {
		if !p.hasExited() && ctx.Err() == nil {
			s.log.Error("killing envoy", "pid", p.pid, "error", err)
			p.kill(err.Error())
		}
		return
	}
	p.mu.Lock()
	p.adminAddr = addr
	p.mu.Unlock()
	s.log.Info("envoy admin endpoint known", "pid", p.pid, "admin_address", addr)

	ticker := time.NewTicker(readyPollInterval)
	defer ticker.Stop()
	for {
		if s.isReady(ctx, addr) {
			p.mu.Lock()
			p.readyAt = time.Now()
			p.mu.Unlock()
			close(p.ready)
			s.log.Info("envoy ready", "pid", p.pid)
			return
		}
		select {
		case <-p.exited:
			return
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// awaitAdminAddress polls for the file Envoy writes once its admin listener is bound.
func (s *Supervisor) awaitAdminAddress(ctx context.Context, p *envoyProcess) (string, error) {
	path := filepath.Join(s.opts.RunDir, adminAddressFile)
	deadline := time.NewTimer(s.opts.StartTimeout)
	defer deadline.Stop()
	ticker := time.NewTicker(addressPollInterval)
	defer ticker.Stop()
	for {
		if addr, err := readAdminAddress(path); err == nil {
			return addr, nil
		}
		select {
		case <-p.exited:
			return "", errors.New("envoy exited before writing its admin address")
		case <-ctx.Done():
			return "", ctx.Err()
		case <-deadline.C:
			return "", fmt.Errorf("envoy did not write its admin address to %s within %s", path, s.opts.StartTimeout)
		case <-ticker.C:
		}
	}
}

// stop drains Envoy, asks it to exit, and kills its process group if it will not. It returns
// only once Envoy has been reaped.
func (s *Supervisor) stop(ctx context.Context, p *envoyProcess) {
	// Run's context is already done; the drain still needs one for its requests.
	ctx = context.WithoutCancel(ctx)
	s.log.Info("stopping envoy", "pid", p.pid)
	if addr := p.adminAddress(); addr != "" && !p.hasExited() {
		s.drain(ctx, p, addr)
	}
	s.terminate(p)
	s.log.Info("envoy stopped", "pid", p.pid, "exit", p.exitReason())
}
