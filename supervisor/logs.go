package supervisor

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// envoyLogFormat is the line shape Envoy is told to print, and parseEnvoyLine reads:
// "[2024-05-01 12:00:00.123][info][main] message".
const envoyLogFormat = "[%Y-%m-%d %T.%e][%l][%n] %v"

const (
	// envoyLogFile collects Envoy's raw output across the restarts of one run, for reading after
	// the fact.
	envoyLogFile = "envoy.log"
	// tailLines is how many of Envoy's last output lines an exit report carries.
	tailLines = 20
	// maxLineBytes caps one logged line; the rest of a longer line is dropped so that a runaway
	// line can neither grow memory without bound nor stop the pipe from being read.
	maxLineBytes = 64 << 10
)

// slog has no levels below Debug or above Error; these follow its convention of offsets of 4,
// which handlers print as DEBUG-4 and ERROR+4.
const (
	levelTrace    = slog.LevelDebug - 4
	levelCritical = slog.LevelError + 4
)

var envoyLevels = map[string]slog.Level{
	"trace":    levelTrace,
	"debug":    slog.LevelDebug,
	"info":     slog.LevelInfo,
	"warning":  slog.LevelWarn,
	"error":    slog.LevelError,
	"critical": levelCritical,
}

// envoyLine is one line of Envoy output in envoyLogFormat.
type envoyLine struct {
	level  slog.Level
	logger string // Envoy's logger name, such as main, config or upstream
	msg    string
}

// parseEnvoyLine splits a line printed in envoyLogFormat. Lines in any other shape, such as the
// continuation lines of a multi-line message, report ok=false.
func parseEnvoyLine(line string) (parsed envoyLine, ok bool) {
	rest, ok := strings.CutPrefix(line, "[")
	if !ok {
		return envoyLine{}, false
	}
	_, rest, ok = strings.Cut(rest, "][") // the timestamp: slog stamps its own
	if !ok {
		return envoyLine{}, false
	}
	levelName, rest, ok := strings.Cut(rest, "][")
	if !ok {
		return envoyLine{}, false
	}
	level, known := envoyLevels[levelName]
	if !known {
		return envoyLine{}, false
	}
	logger, msg, ok := strings.Cut(rest, "]")
	if !ok {
		return envoyLine{}, false
	}
	return envoyLine{level: level, logger: logger, msg: strings.TrimPrefix(msg, " ")}, true
}

// readOutput forwards one of Envoy's output streams, line by line, to the logger, the raw log
// file and the process's tail. Lines that do not parse continue the previous message, so they
// keep its level.
func (s *Supervisor) readOutput(r io.ReadCloser, tail *lineRing, out *outputFile, wg *sync.WaitGroup) {
	defer wg.Done()
	defer r.Close()
	level, logger := slog.LevelInfo, ""
	err := scanLines(r, func(line string) {
		out.writeLine(line)
		tail.add(line)
		msg := line
		if parsed, ok := parseEnvoyLine(line); ok {
			level, logger, msg = parsed.level, parsed.logger, parsed.msg
		}
		attrs := []slog.Attr{}
		if logger != "" {
			attrs = append(attrs, slog.String("logger", logger))
		}
		s.envoyLog.LogAttrs(context.Background(), level, msg, attrs...)
	})
	if err != nil {
		s.log.Warn("read envoy output", "error", err)
	}
}

// scanLines calls fn for every line of r without its line ending. Lines longer than
// maxLineBytes are cut short and marked, and the rest of them is skipped.
func scanLines(r io.Reader, fn func(line string)) error {
	br := bufio.NewReaderSize(r, maxLineBytes)
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == nil:
			fn(strings.TrimRight(string(chunk), "\r\n"))
		case errors.Is(err, bufio.ErrBufferFull):
			fn(string(chunk) + " [line truncated]")
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		case err == io.EOF:
			if len(chunk) > 0 {
				fn(strings.TrimRight(string(chunk), "\r"))
			}
			return nil
		default:
			return err
		}
	}
}

// lineRing keeps the last lines added to it.
type lineRing struct {
	mu    sync.Mutex
	buf   []string
	next  int
	count int
}

func newLineRing(size int) *lineRing {
	return &lineRing{buf: make([]string, size)}
}

func (r *lineRing) add(line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf[r.next] = line
	r.next = (r.next + 1) % len(r.buf)
	r.count = min(r.count+1, len(r.buf))
}

// lines returns the kept lines, oldest first.
func (r *lineRing) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, r.count)
	start := (r.next - r.count + len(r.buf)) % len(r.buf)
	for i := range r.count {
		out = append(out, r.buf[(start+i)%len(r.buf)])
	}
	return out
}

// outputFile is a run's envoy.log: Envoy's raw output, appended across restarts.
type outputFile struct {
	f      *os.File
	log    *slog.Logger
	failed atomic.Bool
}

// runDirLayout names a run's log directory after its start time, so that names sort by age.
const runDirLayout = "20060102T150405.000Z"

// openRunLog creates this run's log directory under RunsDir, points RunDir/envoy.log at the log
// in it, and removes the directories of all but the newest KeepRuns runs.
func (s *Supervisor) openRunLog() (*outputFile, error) {
	if err := os.MkdirAll(s.opts.RunsDir, 0o700); err != nil {
		return nil, fmt.Errorf("create run logs directory: %w", err)
	}
	name := time.Now().UTC().Format(runDirLayout)
	dir := filepath.Join(s.opts.RunsDir, name)
	// Two runs within a millisecond are rare but must not share, or fail on, a directory.
	for i := 1; ; i++ {
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return nil, fmt.Errorf("create run log directory: %w", err)
		}
		dir = filepath.Join(s.opts.RunsDir, fmt.Sprintf("%s-%d", name, i))
	}
	path := filepath.Join(dir, envoyLogFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open envoy log: %w", err)
	}
	link := filepath.Join(s.opts.RunDir, envoyLogFile)
	if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("remove the previous run's envoy.log link", "path", link, "error", err)
	} else if err := os.Symlink(path, link); err != nil {
		s.log.Warn("link envoy.log to this run's log", "path", link, "error", err)
	}
	s.pruneRuns()
	s.log.Info("envoy log", "path", path)
	return &outputFile{f: f, log: s.log}, nil
}

// pruneRuns removes the log directories of all but the newest KeepRuns runs. A failure only
// costs disk space, so it is logged and not fatal.
func (s *Supervisor) pruneRuns() {
	entries, err := os.ReadDir(s.opts.RunsDir)
	if err != nil {
		s.log.Warn("list run logs", "path", s.opts.RunsDir, "error", err)
		return
	}
	var runs []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := time.Parse(runDirLayout, e.Name()[:min(len(e.Name()), len(runDirLayout))]); err == nil {
				runs = append(runs, e.Name())
			}
		}
	}
	slices.Sort(runs)
	for _, name := range runs[:max(0, len(runs)-s.opts.KeepRuns)] {
		if err := os.RemoveAll(filepath.Join(s.opts.RunsDir, name)); err != nil {
			s.log.Warn("remove old run logs", "path", filepath.Join(s.opts.RunsDir, name), "error", err)
		}
	}
}

// writeLine appends one line. The file is a convenience copy of what already goes to the
// logger, so a failing write is reported once and the file is then left alone instead of
// failing the supervisor.
func (o *outputFile) writeLine(line string) {
	if o.failed.Load() {
		return
	}
	// One Write per line: with O_APPEND, lines from stdout and stderr never interleave.
	if _, err := o.f.Write([]byte(line + "\n")); err != nil && o.failed.CompareAndSwap(false, true) {
		o.log.Warn("stop writing envoy.log after a failed write", "path", o.f.Name(), "error", err)
	}
}

func (o *outputFile) Close() error {
	return o.f.Close()
}
