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
	Doc Position
	// fields holds the positions in Doc's file, which are nearly all of them, as a line and a
	// column only: a served configuration keeps one entry per field written, and a whole
	// Position per entry was a quarter of the heap a running Portico keeps at 10,000 routes.
	fields map[string]lineColumn
	// elsewhere holds the positions in other files (a resource converted from another one)
	// and those too far into a file for a lineColumn.
	elsewhere map[string]Position
	// invalid holds the paths of fields that were written but could not be decoded (a list where
	// a string belongs, say). Their values are zero; validation must not judge them again.
	invalid map[string]bool
}

// lineColumn is a Position in the file of its Source's document.
type lineColumn struct {
	line, column int32
}

// At returns the position of the field at path, or of its nearest enclosing field that was
// written, or of the document when nothing closer is known.
func (s Source) At(path string) Position {
	for p := path; p != ""; p = parentPath(p) {
		if pos, ok := s.position(p); ok {
			return pos
		}
	}
	return s.Doc
}

// position returns the recorded position of the field at path.
func (s Source) position(path string) (Position, bool) {
	if lc, ok := s.fields[path]; ok {
		return Position{File: s.Doc.File, Line: int(lc.line), Column: int(lc.column)}, true
	}
	pos, ok := s.elsewhere[path]
	return pos, ok
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
	if pos.File == s.Doc.File && pos.Line == int(int32(pos.Line)) && pos.Column == int(int32(pos.Column)) {
		if s.fields == nil {
			s.fields = make(map[string]lineColumn)
		}
		s.fields[path] = lineColumn{line: int32(pos.Line), column: int32(pos.Column)}
		delete(s.elsewhere, path)
		return
	}
	if s.elsewhere == nil {
		s.elsewhere = make(map[string]Position)
	}
	s.elsewhere[path] = pos
	delete(s.fields, path)
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
	_, ok := s.position(path)
	return ok
}

// valid reports whether the field at path was written and decoded, so its value is the user's.
func (s Source) valid(path string) bool {
	return s.has(path) && !s.invalid[path]
}
