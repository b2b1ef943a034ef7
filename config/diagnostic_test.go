package config

import (
	"slices"
	"testing"
)

func TestDiagnosticError(t *testing.T) {
	pos := Position{File: "routes.yaml", Line: 14, Column: 7}
	tests := []struct {
		d    Diagnostic
		want string
	}{
		{Diagnostic{Pos: pos, Kind: KindVirtualService, Name: "shop", Field: "spec.routes[2].upstream", Message: `Upstream "cart" is not defined (defined: api, web)`},
			`routes.yaml:14:7: VirtualService "shop" spec.routes[2].upstream: Upstream "cart" is not defined (defined: api, web)`},
		{Diagnostic{Pos: pos, Severity: SeverityWarning, Kind: KindVirtualService, Name: "shop", Message: "m"},
			`routes.yaml:14:7: warning: VirtualService "shop": m`},
		{Diagnostic{Pos: pos, Kind: KindGateway, Field: "metadata", Message: "m"}, `routes.yaml:14:7: Gateway metadata: m`},
		{Diagnostic{Pos: pos, Field: "kind", Message: "m"}, `routes.yaml:14:7: kind: m`},
		{Diagnostic{Pos: Position{File: "a.yaml", Line: 3}, Message: "m"}, `a.yaml:3: m`},
		{Diagnostic{Pos: Position{File: "a.yaml"}, Message: "m"}, `a.yaml: m`},
		{Diagnostic{Message: "m"}, `m`},
		{Diagnostic{Pos: pos, Kind: KindGateway, Name: "a\tb", Message: "m"}, `routes.yaml:14:7: Gateway "a\tb": m`},
	}
	for _, tt := range tests {
		if got := tt.d.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	if SeverityError.String() != "error" || SeverityWarning.String() != "warning" {
		t.Errorf("Severity strings = %q, %q", SeverityError, SeverityWarning)
	}
}

func TestDiagnosticsSorted(t *testing.T) {
	at := func(file string, line, col int, msg string) Diagnostic {
		return Diagnostic{Pos: Position{File: file, Line: line, Column: col}, Message: msg}
	}
	ds := Diagnostics{
		at("b.yaml", 1, 1, "b1"),
		at("a.yaml", 10, 1, "a10"),
		at("a.yaml", 2, 9, "a2-9"),
		at("a.yaml", 2, 3, "a2-3 first"),
		at("a.yaml", 2, 3, "a2-3 second"),
	}
	orig := slices.Clone(ds)
	want := "a.yaml:2:3: a2-3 first\na.yaml:2:3: a2-3 second\na.yaml:2:9: a2-9\na.yaml:10:1: a10\nb.yaml:1:1: b1"
	if got := ds.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
	if !slices.Equal(ds, orig) {
		t.Error("Error() reordered the receiver")
	}
	if !ds.HasErrors() {
		t.Error("HasErrors() = false for errors")
	}
	if (Diagnostics{{Severity: SeverityWarning}}).HasErrors() {
		t.Error("HasErrors() = true for a warning only")
	}
}

func TestClosest(t *testing.T) {
	candidates := []string{"bindAddress", "bindPort"}
	tests := map[string]string{
		"bindport":  "bindPort", // case
		"bindPrt":   "bindPort", // a letter missing
		"port":      "bindPort", // part of the name
		"address":   "bindAddress",
		"tls":       "",
		"x":         "",
		"bindPorts": "bindPort",
	}
	for in, want := range tests {
		if got := closest(in, candidates); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
	if got := closest(string(make([]byte, maxSuggestLen+1)), candidates); got != "" {
		t.Errorf("closest(very long) = %q, want none", got)
	}
}
