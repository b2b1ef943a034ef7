package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/translator"
	"github.com/portico-gw/portico/xds"
)

// Plan is a configuration ready to push: the files it came from, what of them is served, and
// the Envoy resources.
type Plan struct {
	Files    []config.SourceFile
	Config   *config.Config
	Rejected []config.Rejection
	// Decoded names the files decoded to build the plan: with a decode cache, the changed ones.
	Decoded []string
	// Output is the translation of Config. Resources are its resources, with the hosts
	// discovered at run time in the load assignments of the Upstreams that discover them.
	Output    *translator.Output
	Resources xds.Resources
	// Checked is Resources as checked once, for the push.
	Checked *xds.Checked
}

// Complete reports whether the files are served exactly as written, with nothing held back.
func (p *Plan) Complete() bool { return len(p.Rejected) == 0 }

// Build is everything before a push: decode and validate files (isolating broken
// VirtualServices and RouteTables against prev, the configuration served now, which may be
// nil), translate, and check the resources exactly as the xDS server will. `portico validate`
// and the controller both call it, so they cannot disagree.
func Build(prev *config.Config, files []config.SourceFile) (*Plan, error) {
	return build(context.Background(), nil, prev, files, nil)
}

// build is Build decoding only the files that changed since decoded's last load (all of them
// when decoded is nil), and with the hosts d discovers for the Upstreams that discover them
// (none when d is nil): d follows the new configuration's sources before the push, and keeps
// following prev's, which serves until the push is through.
func build(ctx context.Context, decoded *config.DecodeCache, prev *config.Config, files []config.SourceFile, d Discoverer) (*Plan, error) {
	iso, err := decoded.LoadIsolated(prev, files)
	if err != nil {
		return nil, err
	}
	out, err := translator.Translate(iso.Config)
	if err != nil {
		return nil, fmt.Errorf("translate configuration: %w", err)
	}
	res := out.Resources()
	if d != nil {
		d.Discover(ctx, prev, iso.Config)
		res = withDiscovered(res, iso.Config, d)
	}
	checked, err := xds.Check(res)
	if err != nil {
		return nil, fmt.Errorf("translated configuration is not servable: %w", err)
	}
	return &Plan{Files: files, Config: iso.Config, Rejected: iso.Rejected, Decoded: iso.Decoded, Output: out, Resources: res, Checked: checked}, nil
}

// Problem is one finding in a machine-readable form, for `portico validate -o json` and the
// status API.
type Problem struct {
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Kind     string `json:"kind,omitempty"`
	Name     string `json:"name,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
	Severity string `json:"severity"`
}

// ProblemsOf lists the problems in err: one per diagnostic for a configuration error, else
// one carrying the error's text.
func ProblemsOf(err error) []Problem {
	var ds config.Diagnostics
	if !errors.As(err, &ds) {
		return []Problem{{Message: err.Error(), Severity: config.SeverityError.String()}}
	}
	return diagnosticProblems(ds)
}

func diagnosticProblems(ds config.Diagnostics) []Problem {
	out := make([]Problem, 0, len(ds))
	for _, d := range ds {
		out = append(out, Problem{
			File: d.Pos.File, Line: d.Pos.Line, Column: d.Pos.Column,
			Kind: d.Kind, Name: d.Name, Field: d.Field,
			Message: d.Message, Severity: d.Severity.String(),
		})
	}
	return out
}
