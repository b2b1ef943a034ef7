package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// staleExitTimeout bounds the wait for a killed stale Envoy to go.
const staleExitTimeout = 5 * time.Second

func (s *Supervisor) killStale() error {
	return KillStale(s.log, s.opts.RunDir, s.opts.BootstrapPath)
}

// KillStale ends an Envoy that an earlier run in runDir left behind, as after a crash of the
// machine or a kill that Pdeathsig did not cover. Such an Envoy holds the gateway's ports and the
// hot restart shared memory of this run directory's base id, so the new one could not start. The pid file alone
// is not trusted, since pids are reused: the process must be an envoy started with "-c
// bootstrapPath". Run calls it; callers that check ports before Run call it first.
func KillStale(log *slog.Logger, runDir, bootstrapPath string) error {
	path := filepath.Join(runDir, pidFile)
	pid, err := pidFromFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && isEnvoyWithBootstrap(pid, bootstrapPath) {
		log.Warn("killing an envoy left behind by an earlier run in this state directory", "pid", pid, "pid_file", path)
		// Envoy leads a process group of its own; the group takes anything it spawned too.
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		deadline := time.Now().Add(staleExitTimeout)
		for !processGone(pid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("envoy %d left behind by an earlier run is still running %s after SIGKILL; stop it yourself", pid, staleExitTimeout)
			}
			time.Sleep(addressPollInterval)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale envoy pid file: %w", err)
	}
	return nil
}

// isEnvoyWithBootstrap reports whether pid runs an envoy binary with "-c bootstrap".
func isEnvoyWithBootstrap(pid int, bootstrap string) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")
	if len(args) == 0 || !strings.Contains(filepath.Base(args[0]), "envoy") {
		return false
	}
	for i := 1; i+1 < len(args); i++ {
		if args[i] == "-c" && args[i+1] == bootstrap {
			return true
		}
	}
	return false
}

// processGone reports whether pid has exited: it no longer exists, or it and all its threads
// are zombies, which an orphan stays until whoever adopted it reaps it. The leader turns zombie
// before its other threads finish exiting, and those still hold the process's sockets, so a
// zombie leader alone does not mean the ports are free.
func processGone(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return true
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // the thread exited while we looked
		}
		if !exited(stat) {
			return false
		}
	}
	return true
}

// exited reports whether a /proc stat line is that of a zombie or dead task. The state follows
// the parenthesised command name, which may itself contain spaces.
func exited(stat []byte) bool {
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) > 0 && (fields[0] == "Z" || fields[0] == "X")
}
