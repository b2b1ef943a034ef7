package supervisor

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/portico-gw/portico/internal/unixsock"
)

// Options configures a Supervisor. Zero durations and counts take the defaults documented on
// each field, so callers set only what they mean to change; tests shrink the restart limits.
type Options struct {
	// EnvoyPath is the Envoy executable to run.
	EnvoyPath string
	// BootstrapPath is the bootstrap file passed to Envoy with -c.
	BootstrapPath string
	// RunDir holds the state of the running Envoy: the admin-address file, envoy.pid, and
	// envoy.log, a link to the current run's log. It is created with mode 0700 when missing.
	RunDir string
	// RunsDir keeps one directory of logs per Run, named after its start time; the newest
	// KeepRuns are kept and older ones removed. Defaults RunDir/runs and 5.
	RunsDir  string
	KeepRuns int
	// BaseID is Envoy's --base-id, which names the shared memory and domain sockets of hot
	// restart; Envoys sharing one would collide. Default: derived from RunDir's absolute path.
	BaseID uint32
	// SocketDir holds the Unix sockets the Envoys of a hot restart talk over (Envoy's
	// --socket-path), mode 0600 in this directory, which Run makes 0700. Filesystem sockets,
	// unlike Envoy's default abstract ones, have permissions, so other local users cannot
	// connect to them. Default RunDir; its socket paths must fit in sun_path
	// (HotRestartSocketPathLen).
	SocketDir string
	// Env is added to the environment Envoy inherits from Portico (KEY=value entries; a later
	// entry for a key wins).
	Env []string
	// Concurrency is Envoy's worker thread count (--concurrency); 0 leaves Envoy's default of
	// one worker per hardware thread.
	Concurrency int
	// LogLevel is Envoy's log level (-l). Default "info".
	LogLevel string
	// DrainTimeout bounds how long a graceful stop waits for connections to finish before Envoy
	// is told to exit. Default 5s. It is the first Settings' DrainTimeout; HotRestart changes it.
	DrainTimeout time.Duration
	// Logger receives the supervisor's own records and Envoy's output (attr component=envoy).
	// Default: records are discarded.
	Logger *slog.Logger

	// RestartBackoff is the wait before the first restart after an exit; it doubles with every
	// further exit up to MaxRestartBackoff. Defaults 200ms and 10s.
	RestartBackoff    time.Duration
	MaxRestartBackoff time.Duration
	// Run gives up when Envoy has exited MaxExits times within ExitWindow. Defaults 5 and 60s.
	MaxExits   int
	ExitWindow time.Duration
	// HealthyAfter is how long an Envoy must have been ready before its exit no longer counts as
	// part of a crash loop: the exit history and the backoff start afresh. Default 30s.
	HealthyAfter time.Duration
	// StartTimeout bounds how long a new Envoy may take to write its admin address. One that
	// has not done so by then is killed and counted as a failed start. Default 10s.
	StartTimeout time.Duration
	// TermTimeout is how long Envoy gets to exit after SIGTERM before its process group is
	// killed. Default 5s.
	TermTimeout time.Duration
}

const defaultLogLevel = "info"

func (o Options) withDefaults() Options {
	setDuration := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	if o.LogLevel == "" {
		o.LogLevel = defaultLogLevel
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxExits <= 0 {
		o.MaxExits = 5
	}
	if o.RunsDir == "" && o.RunDir != "" {
		o.RunsDir = filepath.Join(o.RunDir, "runs")
	}
	if o.KeepRuns <= 0 {
		o.KeepRuns = 5
	}
	if o.SocketDir == "" {
		o.SocketDir = o.RunDir
	}
	if o.BaseID == 0 && o.RunDir != "" {
		o.BaseID = baseIDFor(o.RunDir)
	}
	setDuration(&o.DrainTimeout, 5*time.Second)
	setDuration(&o.RestartBackoff, 200*time.Millisecond)
	setDuration(&o.MaxRestartBackoff, 10*time.Second)
	setDuration(&o.ExitWindow, 60*time.Second)
	setDuration(&o.HealthyAfter, 30*time.Second)
	setDuration(&o.StartTimeout, 10*time.Second)
	setDuration(&o.TermTimeout, 5*time.Second)
	return o
}

// baseIDFor derives a hot restart base id from a run directory. Envoy multiplies the base id by
// ten to leave room for epochs, so it stays below maxBaseID; 0, Envoy's default that any other
// Envoy on the host may be using, is never chosen.
func baseIDFor(runDir string) uint32 {
	if abs, err := filepath.Abs(runDir); err == nil {
		runDir = abs
	}
	h := fnv.New32a()
	h.Write([]byte(runDir))
	return 1 + h.Sum32()%maxBaseID
}

// maxBaseID keeps base id times ten plus the epoch within an int32: Envoy computes the number
// in its hot restart socket names that way, and a larger base id makes it wrap around to a
// twenty-digit number, which leaves less of sun_path for the directory.
const maxBaseID = 214_748_364

// hotRestartSocketName is the --socket-path Envoy is given, in SocketDir. Envoy names each hot
// restart socket after it, adding a role and a number: envoy-hr_parent_70, envoy-hr_udp_child_71.
const hotRestartSocketName = "envoy-hr"

// longestHotRestartSuffix is the longest suffix Envoy adds: the longest role, and base id times
// ten plus the epoch (at most ten digits, see maxBaseID).
const longestHotRestartSuffix = "_udp_parent_2147483647"

// HotRestartSocketPathLen is the length of the longest hot restart socket path Envoy creates in
// dir, to be checked against the kernel's sun_path limit.
func HotRestartSocketPathLen(dir string) int {
	return len(filepath.Join(dir, hotRestartSocketName)) + len(longestHotRestartSuffix)
}

func (o Options) validate() error {
	var errs []error
	if o.EnvoyPath == "" {
		errs = append(errs, errors.New("envoy path is empty"))
	}
	if o.BootstrapPath == "" {
		errs = append(errs, errors.New("bootstrap path is empty"))
	}
	if o.RunDir == "" {
		errs = append(errs, errors.New("run directory is empty"))
	}
	if o.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency %d is negative", o.Concurrency))
	}
	if o.BaseID > maxBaseID {
		errs = append(errs, fmt.Errorf("base id %d is above %d, which Envoy's hot restart cannot number", o.BaseID, maxBaseID))
	}
	if n := HotRestartSocketPathLen(o.SocketDir); o.SocketDir != "" && n > unixsock.MaxPath {
		// Envoy would cut the names short, and the parent's and the child's could meet.
		errs = append(errs, fmt.Errorf("hot restart socket directory %s is too long: its sockets' paths would be %d bytes, the limit is %d", o.SocketDir, n, unixsock.MaxPath))
	}
	return errors.Join(errs...)
}

// Supervisor runs one Envoy at a time for the lifetime of a single Run call.
type Supervisor struct {
	opts     Options
	log      *slog.Logger
	envoyLog *slog.Logger
	admin    *http.Client

	started atomic.Bool
	// stopped is closed when Run returns; runErr is its result.
	stopped chan struct{}

	// hotRestarts carries HotRestart's requests to Run, which alone starts processes.
	hotRestarts chan hotRestartRequest

	mu       sync.Mutex
	current  *envoyProcess
	retiring []*envoyProcess // parents of hot restarts, draining until the new epoch ends them
	changed  chan struct{}   // closed and replaced whenever current changes
	restarts int
	hot      int      // completed hot restarts
	settings Settings // of the current Envoy, and of the next one a crash restart starts
	runErr   error
}

// New returns a Supervisor for opts. Nothing starts until Run.
func New(opts Options) *Supervisor {
	opts = opts.withDefaults()
	return &Supervisor{
		opts:     opts,
		log:      opts.Logger.With("component", "supervisor"),
		envoyLog: opts.Logger.With("component", "envoy"),
		admin:    newAdminClient(),
		stopped:  make(chan struct{}),
		changed:  make(chan struct{}),

		hotRestarts: make(chan hotRestartRequest),
		settings:    Settings{Concurrency: opts.Concurrency, LogLevel: opts.LogLevel, DrainTimeout: opts.DrainTimeout},
	}
}

// Run starts Envoy and keeps it running until ctx is done, then drains and stops it and returns
// nil. When Envoy exits on its own it is restarted after a backoff; after MaxExits exits within
// ExitWindow Run gives up and returns an error naming the last exit and Envoy's last output
// lines. Run never returns while the Envoy it started is still running. A Supervisor runs once:
// a second call returns an error.
func (s *Supervisor) Run(ctx context.Context) (err error) {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("supervisor: Run called more than once")
	}
	defer func() {
		s.mu.Lock()
		s.runErr = err
		s.mu.Unlock()
		close(s.stopped)
	}()
	if err := s.opts.validate(); err != nil {
		return fmt.Errorf("supervisor options: %w", err)
	}
	if err := os.MkdirAll(s.opts.RunDir, 0o700); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	if err := unixsock.PrivateDir(s.opts.SocketDir); err != nil {
		return fmt.Errorf("hot restart sockets: %w", err)
	}
	if err := s.killStale(); err != nil {
		return err
	}
	out, err := s.openRunLog()
	if err != nil {
		return err
	}
	// Run returns only after every process it started has exited and its output readers have
	// finished, so the file is not in use when it is closed.
	defer out.Close()

	backoff := s.opts.RestartBackoff
	var exits []time.Time
	for restart := false; ; restart = true {
		if ctx.Err() != nil {
			return nil
		}
		proc, err := s.start(out, 0, s.Settings())
		if err != nil {
			return err
		}
		if restart {
			s.mu.Lock()
			s.restarts++
			s.mu.Unlock()
		}
		s.setCurrent(proc)
		go s.watch(ctx, proc)

		proc = s.serve(ctx, out, proc)
		if proc == nil {
			return nil
		}
		s.setCurrent(nil)
		// A parent epoch still draining holds the hot restart socket a fresh Envoy binds.
		s.endRetiring("its successor exited")

		now := time.Now()
		if readyAt := proc.readySince(); !readyAt.IsZero() && now.Sub(readyAt) >= s.opts.HealthyAfter {
			exits, backoff = nil, s.opts.RestartBackoff
		}
		exits = append(recentExits(exits, now, s.opts.ExitWindow), now)
		reason := proc.exitReason()
		output := proc.tail.lines()
		if len(exits) >= s.opts.MaxExits {
			return fmt.Errorf("envoy exited %d times within %s, giving up; last exit: %s; last output:\n%s",
				len(exits), s.opts.ExitWindow, reason, strings.Join(output, "\n"))
		}
		s.log.Warn("envoy exited unexpectedly; restarting",
			"pid", proc.pid, "exit", reason, "restart_in", backoff, "output", strings.Join(output, "\n"))

		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-timer.C:
		}
		backoff = min(2*backoff, s.opts.MaxRestartBackoff)
	}
}

// serve keeps proc, and the epochs that replace it by hot restart, running until the current
// one exits, which it returns, or until ctx is done, when it stops every Envoy and returns nil.
func (s *Supervisor) serve(ctx context.Context, out *outputFile, proc *envoyProcess) *envoyProcess {
	for {
		select {
		case <-ctx.Done():
			s.stopAll(ctx, proc)
			return nil
		case <-proc.done:
			return proc
		case req := <-s.hotRestarts:
			next, err := s.hotRestart(ctx, out, proc, req.settings)
			if next != nil {
				proc = next
			}
			req.result <- err
		}
	}
}

// recentExits drops the exit times that have left the window ending at now.
func recentExits(exits []time.Time, now time.Time, window time.Duration) []time.Time {
	kept := exits[:0]
	for _, t := range exits {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	return kept
}

func (s *Supervisor) setCurrent(p *envoyProcess) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = p
	close(s.changed)
	s.changed = make(chan struct{})
}

// WaitReady blocks until the current Envoy has answered 200 on its admin /ready endpoint. It
// follows restarts: a replacement Envoy that becomes ready satisfies it. It fails when ctx is
// done or when Run has returned.
func (s *Supervisor) WaitReady(ctx context.Context) error {
	for {
		s.mu.Lock()
		proc, changed := s.current, s.changed
		s.mu.Unlock()

		// A nil channel never fires: so it is while no Envoy runs, and for one that has exited
		// but whose replacement Run has not started yet.
		var ready <-chan struct{}
		if proc != nil && !proc.hasExited() {
			ready = proc.ready
		}
		select {
		case <-ready:
			return nil
		case <-changed:
		case <-s.stopped:
			s.mu.Lock()
			runErr := s.runErr
			s.mu.Unlock()
			if runErr != nil {
				return fmt.Errorf("supervisor stopped before envoy was ready: %w", runErr)
			}
			return errors.New("supervisor stopped before envoy was ready")
		case <-ctx.Done():
			return fmt.Errorf("wait for envoy readiness: %w", ctx.Err())
		}
	}
}

// PID returns the process id of the running Envoy, or 0 when none is running.
func (s *Supervisor) PID() int {
	s.mu.Lock()
	proc := s.current
	s.mu.Unlock()
	if proc == nil || proc.hasExited() {
		return 0
	}
	return proc.pid
}

// AdminAddress returns the "host:port" of the current Envoy's admin endpoint, or "" before
// Envoy has written it.
func (s *Supervisor) AdminAddress() string {
	s.mu.Lock()
	proc := s.current
	s.mu.Unlock()
	if proc == nil {
		return ""
	}
	return proc.adminAddress()
}

// HotRestarts returns how many hot restarts have completed.
func (s *Supervisor) HotRestarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hot
}

// Restarts returns how many times Envoy has been started again after exiting on its own.
func (s *Supervisor) Restarts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.restarts
}
