package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/controller"
	bootstrap "github.com/portico-gw/portico/envoy-bootstrap"
	"github.com/portico-gw/portico/supervisor"
	"github.com/portico-gw/portico/translator"
)

type validateOptions struct {
	output string
	envoy  bool
	runOptions
}

func newValidateCmd(stdout io.Writer) *cobra.Command {
	o := validateOptions{}
	cmd := &cobra.Command{
		Use:   "validate PATH...",
		Short: "Check configuration files without running anything",
		Long: `Check configuration files: decode, validate and translate them exactly as 'portico run'
does before it pushes to Envoy. Exits 0 when valid, 1 with every problem listed otherwise.

With --envoy, Envoy itself also checks the translated configuration (envoy --mode validate).`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("validate needs at least one file or directory")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.output != "text" && o.output != "json" {
				return usageError{fmt.Errorf("-o %q: use text or json", o.output)}
			}
			return validatePaths(cmd, o, args, stdout)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.output, "output", "o", "text", "output format: text or json")
	f.BoolVar(&o.envoy, "envoy", false, "also have Envoy validate the translated configuration")
	addEnvoyFlags(cmd, &o.runOptions)
	return cmd
}

// validateReport is validate's JSON output.
type validateReport struct {
	Valid    bool                 `json:"valid"`
	Problems []controller.Problem `json:"problems"`
	// Envoy is Envoy's own verdict, with --envoy.
	Envoy *envoyVerdict `json:"envoy,omitempty"`
}

type envoyVerdict struct {
	Version string `json:"version"`
	Valid   bool   `json:"valid"`
	Output  string `json:"output,omitempty"`
}

// validatePaths runs controller.Build, the code path run takes up to the push, on paths.
func validatePaths(cmd *cobra.Command, o validateOptions, paths []string, stdout io.Writer) error {
	report := validateReport{Problems: []controller.Problem{}}
	var plan *controller.Plan
	files, err := config.ReadFiles(paths...)
	if err == nil {
		plan, err = controller.Build(nil, files)
	}
	switch {
	case err != nil:
		report.Problems = controller.ProblemsOf(err)
	case !plan.Complete():
		for _, r := range plan.Rejected {
			report.Problems = append(report.Problems, controller.ProblemsOf(r.Problems)...)
		}
	default:
		report.Valid = true
		if len(plan.Config.Warnings) > 0 {
			report.Problems = controller.ProblemsOf(plan.Config.Warnings)
		}
	}
	if report.Valid && o.envoy {
		v, err := validateWithEnvoy(cmd, o.runOptions, plan)
		if err != nil {
			return err
		}
		report.Envoy = v
		report.Valid = v.Valid
	}
	if o.output == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
		if !report.Valid {
			return exitError{1}
		}
		return nil
	}
	return printValidation(cmd, stdout, report, plan)
}

func printValidation(cmd *cobra.Command, stdout io.Writer, report validateReport, plan *controller.Plan) error {
	stderr := cmd.ErrOrStderr()
	for _, p := range report.Problems {
		w := stdout
		if p.Severity == config.SeverityError.String() {
			w = stderr
		}
		fmt.Fprintln(w, problemText(p))
	}
	if report.Envoy != nil && !report.Envoy.Valid {
		fmt.Fprintf(stderr, "envoy %s rejects the translated configuration:\n%s\n", report.Envoy.Version, report.Envoy.Output)
	}
	if !report.Valid {
		return exitError{1}
	}
	cfg := plan.Config
	msg := fmt.Sprintf("valid: %d gateways, %d virtual services, %d route tables, %d upstreams",
		len(cfg.Gateways), len(cfg.VirtualServices), len(cfg.RouteTables), len(cfg.Upstreams))
	if n := len(cfg.GatewayAPI); n > 0 {
		// The counts are of Portico resources, which Gateway API documents become.
		msg += fmt.Sprintf(" (%d Kubernetes documents converted; see docs/gateway-api.md)", n)
	}
	if report.Envoy != nil {
		msg += fmt.Sprintf(" (envoy %s agrees)", report.Envoy.Version)
	}
	_, err := fmt.Fprintln(stdout, msg)
	return err
}

// problemText renders a problem as the config package does: file:line:col: subject: message.
func problemText(p controller.Problem) string {
	d := config.Diagnostic{
		Pos:  config.Position{File: p.File, Line: p.Line, Column: p.Column},
		Kind: p.Kind, Name: p.Name, Field: p.Field, Message: p.Message,
	}
	if p.Severity == config.SeverityWarning.String() {
		d.Severity = config.SeverityWarning
	}
	if p.Kind == "" && p.File == "" {
		return "error: " + p.Message
	}
	return d.Error()
}

// validateWithEnvoy has Envoy check plan's resources: `envoy --mode validate` on a bootstrap
// that carries them as static resources, with routes inlined into their listeners and
// endpoints into their clusters, since validate mode fetches nothing over xDS.
func validateWithEnvoy(cmd *cobra.Command, o runOptions, plan *controller.Plan) (*envoyVerdict, error) {
	ctx := cmd.Context()
	logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	acq := supervisor.NewAcquirer(logger)
	acq.VersionsURL = o.envoyVersionsURL
	envoy, err := acq.Acquire(ctx, o.envoyPath, o.envoyVersion)
	if err != nil {
		return nil, err
	}
	bs, err := staticBootstrap(plan.Output)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "portico-validate-")
	if err != nil {
		return nil, fmt.Errorf("validate with envoy: %w", err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "envoy.yaml")
	if err := bootstrap.Write(path, bs); err != nil {
		return nil, fmt.Errorf("validate with envoy: %w", err)
	}
	run := exec.CommandContext(ctx, envoy.Path, "--mode", "validate", "-c", path, "--log-level", "error")
	out, err := run.CombinedOutput()
	v := &envoyVerdict{Version: envoy.Version, Valid: err == nil, Output: strings.TrimSpace(string(out))}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, fmt.Errorf("run %s --mode validate: %w", envoy.Path, err)
	}
	return v, nil
}

// staticBootstrap is a bootstrap whose static resources are out's listeners, with their route
// configurations inlined, and out's clusters, with their endpoints inlined.
func staticBootstrap(out *translator.Output) (*bootstrapv3.Bootstrap, error) {
	routes := map[string]*routev3.RouteConfiguration{}
	for _, r := range out.Routes {
		routes[r.GetName()] = r
	}
	endpoints := map[string]*endpointv3.ClusterLoadAssignment{}
	for _, e := range out.Endpoints {
		endpoints[e.GetClusterName()] = e
	}
	static := &bootstrapv3.Bootstrap_StaticResources{}
	for _, l := range out.Listeners {
		l = proto.Clone(l).(*listenerv3.Listener)
		if err := inlineRoutes(l, routes); err != nil {
			return nil, err
		}
		static.Listeners = append(static.Listeners, l)
	}
	for _, c := range out.Clusters {
		c = proto.Clone(c).(*clusterv3.Cluster)
		if cla, ok := endpoints[c.GetName()]; ok && c.GetType() == clusterv3.Cluster_EDS {
			c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
			c.EdsClusterConfig = nil
			c.LoadAssignment = cla
		}
		static.Clusters = append(static.Clusters, c)
	}
	return &bootstrapv3.Bootstrap{
		Node:            &corev3.Node{Id: nodeID, Cluster: nodeID},
		StaticResources: static,
	}, nil
}

// inlineRoutes replaces each HTTP connection manager's RDS reference with the route
// configuration it names.
func inlineRoutes(l *listenerv3.Listener, routes map[string]*routev3.RouteConfiguration) error {
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			tc := f.GetTypedConfig()
			if tc == nil || !tc.MessageIs(&hcmv3.HttpConnectionManager{}) {
				continue
			}
			hcm := &hcmv3.HttpConnectionManager{}
			if err := tc.UnmarshalTo(hcm); err != nil {
				return fmt.Errorf("listener %q: %w", l.GetName(), err)
			}
			if rds := hcm.GetRds(); rds != nil {
				rc, ok := routes[rds.GetRouteConfigName()]
				if !ok {
					return fmt.Errorf("listener %q: route configuration %q is missing", l.GetName(), rds.GetRouteConfigName())
				}
				hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc}
			}
			a, err := anypb.New(hcm)
			if err != nil {
				return fmt.Errorf("listener %q: %w", l.GetName(), err)
			}
			f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
		}
	}
	return nil
}
