package supervisor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"time"
)

// hotRestartReadyTimeout bounds how long a new epoch may take to become ready. Until it is, the
// old epoch keeps its listeners and serves alone, so giving up costs nothing but the attempt.
const hotRestartReadyTimeout = 30 * time.Second

// Settings are the options of the Envoy process itself, which only a new process can change.
type Settings struct {
	// Concurrency is Envoy's worker thread count; 0 means one per hardware thread.
	Concurrency int
	// LogLevel is Envoy's log level, such as "info" or "warning".
	LogLevel string
	// DrainTimeout bounds a graceful stop, and is Envoy's drain time (rounded up to seconds),
	// which a hot restart's parent epoch drains for. 0 keeps Options.DrainTimeout.
	DrainTimeout time.Duration
}

type hotRestartRequest struct {
	settings Settings
	result   chan error
}

// Settings returns the settings of the current Envoy.
func (s *Supervisor) Settings() Settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settings
}

// HotRestart replaces the running Envoy with a new process with settings, using Envoy's hot
// restart: the new epoch takes over the listening sockets, the old one drains its connections
// and is ended by the new one after twice the drain time, so established connections and
// requests in flight are not cut. It returns once the new Envoy is ready, or with an error when
// it could not be started, in which case the old Envoy keeps serving with the old settings.
// Configuration changes never need it; changed Settings do.
func (s *Supervisor) HotRestart(ctx context.Context, settings Settings) error {
	if settings.Concurrency < 0 {
		return fmt.Errorf("hot restart: concurrency %d is negative", settings.Concurrency)
	}
	if settings.LogLevel == "" {
		settings.LogLevel = defaultLogLevel
	}
	if settings.DrainTimeout <= 0 {
		settings.DrainTimeout = s.opts.DrainTimeout
	}
	req := hotRestartRequest{settings: settings, result: make(chan error, 1)}
	select {
	case s.hotRestarts <- req:
	case <-s.stopped:
		return errors.New("hot restart: the supervisor has stopped")
	case <-ctx.Done():
		return fmt.Errorf("hot restart: %w", ctx.Err())
	}
	select {
	case err := <-req.result:
		return err
	case <-ctx.Done():
		// Run finishes the restart regardless; only this caller stops waiting for it.
		return fmt.Errorf("hot restart: %w", ctx.Err())
	}
}

// hotRestart starts the epoch after old's and makes it current once it is ready. It returns
// the new process, or nil when old stays current.
func (s *Supervisor) hotRestart(ctx context.Context, out *outputFile, old *envoyProcess, settings Settings) (*envoyProcess, error) {
	select {
	case <-old.ready:
	default:
		return nil, errors.New("hot restart: envoy is not ready yet; a hot restart takes over from a serving envoy")
	}
	if old.hasExited() {
		return nil, errors.New("hot restart: envoy has just exited and is being restarted")
	}
	next, err := s.start(out, old.epoch+1, settings)
	if err != nil {
		return nil, fmt.Errorf("hot restart: %w", err)
	}
	go s.watch(ctx, next)

	timer := time.NewTimer(hotRestartReadyTimeout)
	defer timer.Stop()
	select {
	case <-next.ready:
	case <-next.done:
		return nil, fmt.Errorf("hot restart: the new envoy (epoch %d) exited before it was ready: %s; the previous one keeps serving; last output:\n%s",
			next.epoch, next.exitReason(), strings.Join(next.tail.lines(), "\n"))
	case <-timer.C:
		next.kill(fmt.Sprintf("not ready within %s of a hot restart", hotRestartReadyTimeout))
		<-next.done
		return nil, fmt.Errorf("hot restart: the new envoy (epoch %d) was not ready within %s; the previous one keeps serving",
			next.epoch, hotRestartReadyTimeout)
	case <-ctx.Done():
		// Stopping: the new process is stopped with the others.
		s.addRetiring(next)
		return nil, fmt.Errorf("hot restart: %w", ctx.Err())
	}

	s.addRetiring(old)
	s.mu.Lock()
	s.hot++
	s.settings = settings
	s.mu.Unlock()
	s.setCurrent(next)
	s.log.Info("envoy hot restarted; the previous epoch drains",
		"pid", next.pid, "epoch", next.epoch, "previous_pid", old.pid, "concurrency", settings.Concurrency, "log_level", settings.LogLevel, "drain_timeout", settings.DrainTimeout,
		"parent_shutdown_in", time.Duration(2*drainSeconds(settings.DrainTimeout))*time.Second)
	return next, nil
}

// addRetiring keeps p, which is no longer current, until it exits, so that a stop or a kill
// reaches it too.
func (s *Supervisor) addRetiring(p *envoyProcess) {
	s.mu.Lock()
	s.retiring = append(s.retiring, p)
	s.mu.Unlock()
	go func() {
		<-p.done
		s.log.Info("previous envoy epoch exited", "pid", p.pid, "epoch", p.epoch, "exit", p.exitReason())
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, r := range s.retiring {
			if r == p {
				s.retiring = append(s.retiring[:i], s.retiring[i+1:]...)
				break
			}
		}
	}()
}

func (s *Supervisor) retiringProcesses() []*envoyProcess {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*envoyProcess(nil), s.retiring...)
}

// endRetiring kills the parents of earlier hot restarts and waits until they are reaped.
func (s *Supervisor) endRetiring(reason string) {
	for _, p := range s.retiringProcesses() {
		p.kill(reason)
		<-p.done
	}
}

// stopAll stops the current Envoy gracefully and, at the same time, asks the parents of earlier
// hot restarts, which are already draining, to exit.
func (s *Supervisor) stopAll(ctx context.Context, current *envoyProcess) {
	var wg sync.WaitGroup
	for _, p := range s.retiringProcesses() {
		wg.Go(func() { s.terminate(p) })
	}
	s.stop(ctx, current)
	s.setCurrent(nil)
	wg.Wait()
}

// Kill ends every Envoy of this supervisor at once with SIGKILL, without draining: for an
// operator who asked a second time to stop. Run then returns as after a stop.
func (s *Supervisor) Kill() {
	s.mu.Lock()
	procs := append([]*envoyProcess{s.current}, s.retiring...)
	s.mu.Unlock()
	for _, p := range procs {
		if p != nil {
			p.kill("stopped at once on request")
		}
	}
}

// terminate sends SIGTERM to p's group, kills it after TermTimeout, and waits until it is reaped.
func (s *Supervisor) terminate(p *envoyProcess) {
	p.signalGroup(syscall.SIGTERM)
	timer := time.NewTimer(s.opts.TermTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		s.log.Warn("envoy did not exit after SIGTERM; killing its process group",
			"pid", p.pid, "waited", s.opts.TermTimeout)
		p.kill(fmt.Sprintf("no exit within %s of SIGTERM", s.opts.TermTimeout))
	}
	<-p.done
}
