package config

import "testing"

// TestSourcePositions checks that positions keep their file, line and column whether they are
// in the document's file (kept compactly) or in another one, and that a field's last recorded
// position is the one returned.
func TestSourcePositions(t *testing.T) {
	s := Source{Doc: Position{File: "gateway.yaml", Line: 3, Column: 1}}
	s.set("spec", Position{File: "gateway.yaml", Line: 5, Column: 3})
	s.set("spec.certFile", Position{File: "secret.yaml", Line: 9, Column: 7})
	s.set("spec.port", Position{File: "other.yaml", Line: 2, Column: 2})
	s.set("spec.port", Position{File: "gateway.yaml", Line: 6, Column: 9})
	s.set("spec.far", Position{File: "gateway.yaml", Line: 1 << 40, Column: 1})
	tests := []struct {
		path string
		want Position
	}{
		{"spec", Position{File: "gateway.yaml", Line: 5, Column: 3}},
		{"spec.routes[2].upstream", Position{File: "gateway.yaml", Line: 5, Column: 3}},
		{"spec.certFile", Position{File: "secret.yaml", Line: 9, Column: 7}},
		{"spec.port", Position{File: "gateway.yaml", Line: 6, Column: 9}},
		{"spec.far", Position{File: "gateway.yaml", Line: 1 << 40, Column: 1}},
		{"metadata.name", Position{File: "gateway.yaml", Line: 3, Column: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := s.At(tt.path); got != tt.want {
				t.Errorf("At(%q) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
	if !s.has("spec.certFile") || !s.has("spec.port") || s.has("spec.routes") {
		t.Errorf("has: spec.certFile %v, spec.port %v, spec.routes %v; want true, true, false",
			s.has("spec.certFile"), s.has("spec.port"), s.has("spec.routes"))
	}
}
