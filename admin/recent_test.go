package admin

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestRecentErrorsKeepsTheLastWarningsAndErrors(t *testing.T) {
	var out bytes.Buffer
	ring := NewRecentErrors(3)
	logger := slog.New(ring.Handler(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelError})))
	logger.Info("routine")
	logger.With("component", "envoy").WithGroup("g").Warn("first", "n", 1)
	logger.Error("second", "err", "boom")
	logger.Warn("third")
	logger.Error("fourth")

	var got []string
	for _, e := range ring.Entries() {
		got = append(got, e.Level+" "+e.Message)
	}
	want := []string{"ERROR second err=boom", "WARN third", "ERROR fourth"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("entries = %q, want %q", got, want)
	}
	// The wrapped handler keeps its own level: warnings are kept here but not written there.
	if text := out.String(); strings.Contains(text, "third") || !strings.Contains(text, "fourth") {
		t.Errorf("the wrapped handler wrote:\n%s", text)
	}
}

func TestRecentErrorsFormatsAttributes(t *testing.T) {
	ring := NewRecentErrors(5)
	logger := slog.New(ring.Handler(slog.DiscardHandler))
	logger.With("component", "envoy").WithGroup("g").Warn("first", "n", 1, slog.Group("h", "x", "y"))
	if got := ring.Entries(); len(got) != 1 || got[0].Message != "first component=envoy g.n=1 g.h.x=y" {
		t.Errorf("entries = %+v", got)
	}
}
