package admin

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// LogEntry is one warning or error Portico logged.
type LogEntry struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"message"`
}

// RecentErrors keeps the last warnings and errors logged through its Handler (Portico's own and
// Envoy's, which Portico relays), so that `portico status` can show them without a log search.
type RecentErrors struct {
	mu      sync.Mutex
	entries []LogEntry // a ring: next is the oldest once full
	next    int
	size    int
}

// NewRecentErrors keeps the last size warnings and errors.
func NewRecentErrors(size int) *RecentErrors { return &RecentErrors{size: size} }

// Entries returns the kept entries, oldest first.
func (r *RecentErrors) Entries() []LogEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]LogEntry, 0, len(r.entries))
	out = append(out, r.entries[r.next:]...)
	return append(out, r.entries[:r.next]...)
}

func (r *RecentErrors) add(e LogEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.entries) < r.size {
		r.entries = append(r.entries, e)
		return
	}
	r.entries[r.next] = e
	r.next = (r.next + 1) % r.size
}

// Handler returns a handler that passes every record to next and keeps warnings and errors.
func (r *RecentErrors) Handler(next slog.Handler) slog.Handler {
	return &recentHandler{ring: r, next: next}
}

type recentHandler struct {
	ring   *RecentErrors
	next   slog.Handler
	attrs  string // attributes added by WithAttrs, already formatted
	prefix string // group prefix for attribute keys
}

var _ slog.Handler = (*recentHandler)(nil)

func (h *recentHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn || h.next.Enabled(ctx, l)
}

func (h *recentHandler) Handle(ctx context.Context, rec slog.Record) error {
	if rec.Level >= slog.LevelWarn {
		var b strings.Builder
		b.WriteString(rec.Message)
		b.WriteString(h.attrs)
		rec.Attrs(func(a slog.Attr) bool {
			writeAttr(&b, h.prefix, a)
			return true
		})
		h.ring.add(LogEntry{Time: rec.Time, Level: rec.Level.String(), Message: b.String()})
	}
	if !h.next.Enabled(ctx, rec.Level) {
		return nil
	}
	return h.next.Handle(ctx, rec)
}

func (h *recentHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	for _, a := range attrs {
		writeAttr(&b, h.prefix, a)
	}
	return &recentHandler{ring: h.ring, next: h.next.WithAttrs(attrs), attrs: h.attrs + b.String(), prefix: h.prefix}
}

func (h *recentHandler) WithGroup(name string) slog.Handler {
	return &recentHandler{ring: h.ring, next: h.next.WithGroup(name), attrs: h.attrs, prefix: h.prefix + name + "."}
}

func writeAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Value.Kind() == slog.KindGroup {
		for _, ga := range a.Value.Group() {
			writeAttr(b, prefix+a.Key+".", ga)
		}
		return
	}
	fmt.Fprintf(b, " %s%s=%v", prefix, a.Key, a.Value)
}
