package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Severity tells whether a Diagnostic stops a configuration from loading.
type Severity int

const (
	// SeverityError rejects the configuration.
	SeverityError Severity = iota
	// SeverityWarning is reported in Config.Warnings; the configuration is still served.
	SeverityWarning
)

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Diagnostic is one finding about the user's configuration, pointing at the field to change.
type Diagnostic struct {
	Pos      Position
	Severity Severity
	// Kind and Name identify the resource, when known.
	Kind, Name string
	// Field is the path of the field within the resource, such as "spec.routes[2].upstream".
	Field string
	// Message says what is wrong and how to fix it.
	Message string
}

// Error formats the diagnostic as
// `routes.yaml:14:7: VirtualService "shop" spec.routes[2].upstream: Upstream "cart" is not defined`,
// leaving out the parts that are unknown.
func (d Diagnostic) Error() string {
	var b strings.Builder
	if p := d.Pos.String(); p != "" {
		b.WriteString(p)
		b.WriteString(": ")
	}
	if d.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	var subject []string
	if d.Kind != "" {
		subject = append(subject, d.Kind)
	}
	if d.Name != "" {
		subject = append(subject, quote(d.Name))
	}
	if d.Field != "" {
		subject = append(subject, d.Field)
	}
	if len(subject) > 0 {
		b.WriteString(strings.Join(subject, " "))
		b.WriteString(": ")
	}
	b.WriteString(d.Message)
	return b.String()
}

// Diagnostics is every finding of one load. As an error it prints one diagnostic per line, in
// file, line and column order; use errors.As to get at the individual diagnostics.
type Diagnostics []Diagnostic

func (ds Diagnostics) Error() string {
	sorted := slices.Clone(ds)
	sorted.sort()
	lines := make([]string, len(sorted))
	for i, d := range sorted {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

// HasErrors reports whether any diagnostic has SeverityError.
func (ds Diagnostics) HasErrors() bool {
	return slices.ContainsFunc(ds, func(d Diagnostic) bool { return d.Severity == SeverityError })
}

// sort orders by position; a stable sort keeps several findings on one field in the order the
// checks made them.
func (ds Diagnostics) sort() {
	slices.SortStableFunc(ds, func(a, b Diagnostic) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Column, b.Pos.Column),
		)
	})
}

// quote renders a user-supplied value in messages the way Go would write it, so control
// characters and odd whitespace are visible.
func quote(s string) string {
	return strconv.Quote(s)
}
