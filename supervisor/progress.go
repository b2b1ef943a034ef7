package supervisor

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

const (
	// progressMinBytes keeps the versions JSON, a few kilobytes, from drawing a progress bar:
	// only the archive does.
	progressMinBytes = 1 << 20
	// plainProgressEvery spaces the lines written when the output is not a terminal, so a log
	// shows that a download advances without being flooded.
	plainProgressEvery = 5 * time.Second
	// terminalProgressEvery limits how often a terminal's progress line is redrawn.
	terminalProgressEvery = 100 * time.Millisecond
	progressBarWidth      = 30
)

// withProgress wraps func-e's transport so that the body of a large response, the Envoy archive,
// reports how much of it has arrived. func-e reads the body as it unpacks, so the count follows
// the real transfer.
func (a *Acquirer) withProgress(rt http.RoundTripper, version string) http.RoundTripper {
	if a.Progress == nil {
		return rt
	}
	return progressTransport{next: rt, out: a.Progress, terminal: a.ProgressTerminal, label: "envoy " + version}
}

type progressTransport struct {
	next     http.RoundTripper
	out      io.Writer
	terminal bool
	label    string
}

func (t progressTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength < progressMinBytes {
		return resp, err
	}
	resp.Body = &progressBody{
		ReadCloser: resp.Body,
		progress:   progress{out: t.out, terminal: t.terminal, label: t.label, total: resp.ContentLength, start: time.Now()},
	}
	return resp, nil
}

// progressBody counts the bytes read through it against the response's Content-Length.
type progressBody struct {
	io.ReadCloser
	progress
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.add(int64(n), err == io.EOF)
	return n, err
}

func (b *progressBody) Close() error {
	b.finish()
	return b.ReadCloser.Close()
}

// progress renders a transfer of total bytes.
type progress struct {
	out      io.Writer
	terminal bool
	label    string
	total    int64
	start    time.Time

	mu       sync.Mutex
	done     int64
	lastDraw time.Time
	finished bool
}

func (p *progress) add(n int64, eof bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	every := plainProgressEvery
	if p.terminal {
		every = terminalProgressEvery
	}
	if eof || p.done >= p.total {
		p.finishLocked()
		return
	}
	if now := time.Now(); now.Sub(p.lastDraw) >= every {
		p.lastDraw = now
		p.draw()
	}
}

func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finishLocked()
}

// finishLocked draws the last state once: complete, or how far a broken transfer got.
func (p *progress) finishLocked() {
	if p.finished {
		return
	}
	p.finished = true
	p.draw()
	if p.terminal {
		fmt.Fprintln(p.out)
	}
}

func (p *progress) draw() {
	pct := int(100 * p.done / p.total)
	line := fmt.Sprintf("downloading %s: %.1f of %.1f MB (%d%%) in %s",
		p.label, float64(p.done)/1e6, float64(p.total)/1e6, pct, time.Since(p.start).Round(100*time.Millisecond))
	if !p.terminal {
		fmt.Fprintln(p.out, line)
		return
	}
	filled := progressBarWidth * pct / 100
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", progressBarWidth-filled)
	// \r returns to the start of the line and \x1b[K clears what a longer line left there.
	fmt.Fprintf(p.out, "\r[%s] %s\x1b[K", bar, line)
}
