package supervisor

import (
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseEnvoyLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line   string
		want   envoyLine
		wantOK bool
	}{
		{"[2026-01-02 03:04:05.678][trace][conn_handler] accepting", envoyLine{levelTrace, "conn_handler", "accepting"}, true},
		{"[2026-01-02 03:04:05.678][debug][upstream] added host", envoyLine{slog.LevelDebug, "upstream", "added host"}, true},
		{"[2026-01-02 03:04:05.678][info][main] starting main dispatch loop", envoyLine{slog.LevelInfo, "main", "starting main dispatch loop"}, true},
		{"[2026-01-02 03:04:05.678][warning][config] gRPC config stream closed", envoyLine{slog.LevelWarn, "config", "gRPC config stream closed"}, true},
		{"[2026-01-02 03:04:05.678][error][envoy_bug] bug", envoyLine{slog.LevelError, "envoy_bug", "bug"}, true},
		{"[2026-01-02 03:04:05.678][critical][main] error initializing config", envoyLine{levelCritical, "main", "error initializing config"}, true},
		// A message holding brackets of its own keeps them.
		{"[2026-01-02 03:04:05.678][info][main] [a][b] c", envoyLine{slog.LevelInfo, "main", "[a][b] c"}, true},
		{"[2026-01-02 03:04:05.678][info][main]", envoyLine{slog.LevelInfo, "main", ""}, true},
		{"  bad.yaml'", envoyLine{}, false},
		{"[2026-01-02 03:04:05.678][loud][main] x", envoyLine{}, false},
		{"[2026-01-02 03:04:05.678][info]", envoyLine{}, false},
		{"", envoyLine{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, ok := parseEnvoyLine(tt.line)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("parseEnvoyLine = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestScanLines(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", maxLineBytes+10)
	tests := []struct {
		name  string
		input string
		want  []string
	}{
		{"newline terminated", "a\nb\n", []string{"a", "b"}},
		{"last line unterminated", "a\nb", []string{"a", "b"}},
		{"carriage returns dropped", "a\r\nb\r\n", []string{"a", "b"}},
		{"empty lines kept", "a\n\nb\n", []string{"a", "", "b"}},
		{"nothing", "", nil},
		{
			name:  "overlong line cut and the rest skipped",
			input: long + "\nnext\n",
			want:  []string{long[:maxLineBytes] + " [line truncated]", "next"},
		},
		{
			name:  "overlong last line",
			input: "a\n" + long,
			want:  []string{"a", long[:maxLineBytes] + " [line truncated]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			if err := scanLines(strings.NewReader(tt.input), func(line string) { got = append(got, line) }); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("lines = %.80q, want %.80q", got, tt.want)
			}
		})
	}
}

func TestLineRing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		added int
		want  []string
	}{
		{0, []string{}},
		{2, []string{"0", "1"}},
		{3, []string{"0", "1", "2"}},
		{7, []string{"4", "5", "6"}},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.added), func(t *testing.T) {
			r := newLineRing(3)
			for i := range tt.added {
				r.add(strconv.Itoa(i))
			}
			if got := r.lines(); !slices.Equal(got, tt.want) {
				t.Errorf("lines = %q, want %q", got, tt.want)
			}
		})
	}
}
