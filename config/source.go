package config

import (
	"fmt"
	"strings"
)

// Position is a place in a user's file. Line and Column are 1-based; zero means unknown.
type Position struct {
	File   string
	Line   int
	Column int
}

func (p Position) String() string {
	switch {
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	default:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
	}
}

// Source records where a resource was read from: its document and the position of every field
// the decoder saw, keyed by field path ("spec.routes[2].upstream").
type Source struct {
	Doc    Position
	fields map[string]Position
	// invalid holds the paths of fields that were written but could not be decoded (a list where
	// a string belongs, say). Their values are zero; validation must not judge them again.
	invalid map[string]bool
}

// At returns the position of the field at path, or of its nearest enclosing field that was
// written, or of the document when nothing closer is known.
func (s Source) At(path string) Position {
	for p := path; p != ""; p = parentPath(p) {
		if pos, ok := s.fields[p]; ok {
			return pos
		}
	}
	return s.Doc
}

// parentPath strips the last element from a field path: "a.b[2].c" -> "a.b[2]" -> "a.b" -> "a".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// set records that the field at path was written at pos.
func (s *Source) set(path string, pos Position) {
	if s.fields == nil {
		s.fields = make(map[string]Position)
	}
	s.fields[path] = pos
}

// markInvalid records that the field at path was written but its value was rejected.
func (s *Source) markInvalid(path string) {
	if s.invalid == nil {
		s.invalid = make(map[string]bool)
	}
	s.invalid[path] = true
}

// has reports whether the user wrote the field at path with a non-empty value, whether or not
// that value decoded.
func (s Source) has(path string) bool {
	_, ok := s.fields[path]
	return ok
}

// valid reports whether the field at path was written and decoded, so its value is the user's.
func (s Source) valid(path string) bool {
	return s.has(path) && !s.invalid[path]
}
