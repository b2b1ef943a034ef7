package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/portico-gw/portico/supervisor"
)

// envoySourceFlags choose where Envoy binaries come from; run and the envoy commands share them.
type envoySourceFlags struct {
	versionsURL string
	offline     bool
}

func (f *envoySourceFlags) register(cmd *cobra.Command, persistent bool) {
	fs := cmd.Flags()
	if persistent {
		fs = cmd.PersistentFlags()
	}
	fs.StringVar(&f.versionsURL, "envoy-versions-url", os.Getenv("PORTICO_ENVOY_VERSIONS_URL"), "URL of the Envoy versions JSON, for mirrors (env PORTICO_ENVOY_VERSIONS_URL)")
	fs.BoolVar(&f.offline, "offline", os.Getenv("PORTICO_OFFLINE") == "1", "never download: use the Envoy cache or PATH only (env PORTICO_OFFLINE=1)")
}

// newAcquirer returns an Acquirer for the flags, drawing download progress on stderr.
func newAcquirer(logger *slog.Logger, stderr io.Writer, f envoySourceFlags) *supervisor.Acquirer {
	a := supervisor.NewAcquirer(logger)
	a.VersionsURL = f.versionsURL
	a.Offline = f.offline
	a.Progress, a.ProgressTerminal = stderr, isTerminal(stderr)
	if f.offline {
		logger.Info("offline: envoy comes from the cache or PATH only, nothing is downloaded")
	}
	return a
}

// isTerminal reports whether w is a terminal, where a progress bar can redraw itself.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

func newEnvoyCmd(stdout, stderr io.Writer, newLogger func() (*slog.Logger, error)) *cobra.Command {
	var src envoySourceFlags
	cmd := &cobra.Command{
		Use:   "envoy",
		Short: "Install and inspect the Envoy binaries portico runs",
		Long: `Install and inspect the Envoy binaries portico runs. Downloads are verified against the
published SHA-256 checksum and installed atomically into the cache ($XDG_DATA_HOME/portico).`,
		Args: noArgs,
	}
	src.register(cmd, true)
	cmd.AddCommand(
		&cobra.Command{
			Use:   "install [VERSION]",
			Short: "Download an Envoy version into the cache (default " + supervisor.DefaultEnvoyVersion + ")",
			Args:  maxOneArg,
			RunE: func(cmd *cobra.Command, args []string) error {
				logger, err := newLogger()
				if err != nil {
					return err
				}
				version := supervisor.DefaultEnvoyVersion
				if len(args) == 1 {
					version = args[0]
				}
				e, err := newAcquirer(logger, stderr, src).Install(cmd.Context(), version)
				if err != nil {
					return err
				}
				state := "downloaded and installed"
				if e.Source == "cache" {
					state = "already installed"
				}
				_, err = fmt.Fprintf(stdout, "envoy %s %s: %s\n", e.Version, state, e.Path)
				return err
			},
		},
		&cobra.Command{
			Use:   "list",
			Short: "List the Envoy versions in the cache",
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				logger, err := newLogger()
				if err != nil {
					return err
				}
				installed, err := newAcquirer(logger, stderr, src).Installed(cmd.Context())
				if err != nil {
					return err
				}
				if len(installed) == 0 {
					_, err := fmt.Fprintln(stdout, "no envoy installed; run `portico envoy install`")
					return err
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				for _, in := range installed {
					state := "ok"
					if in.Problem != "" {
						state = "broken (replaced on next install or run): " + in.Problem
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", in.Version, in.Path, state)
				}
				return tw.Flush()
			},
		},
		&cobra.Command{
			Use:   "versions",
			Short: "List the Envoy versions available for this platform",
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				logger, err := newLogger()
				if err != nil {
					return err
				}
				a := newAcquirer(logger, stderr, src)
				releases, latest, err := a.Available(cmd.Context())
				if err != nil {
					return err
				}
				installed, err := a.Installed(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				for _, r := range releases {
					var notes []string
					if r.Version == latest {
						notes = append(notes, "latest")
					}
					if r.Version == supervisor.DefaultEnvoyVersion {
						notes = append(notes, "default")
					}
					if slices.ContainsFunc(installed, func(in supervisor.Installed) bool { return in.Version == r.Version && in.Problem == "" }) {
						notes = append(notes, "installed")
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Version, r.ReleaseDate, strings.Join(notes, ", "))
				}
				return tw.Flush()
			},
		},
		newWhichCmd(stdout, stderr, newLogger, &src),
	)
	return cmd
}

func newWhichCmd(stdout, stderr io.Writer, newLogger func() (*slog.Logger, error), src *envoySourceFlags) *cobra.Command {
	var path, version string
	cmd := &cobra.Command{
		Use:   "which",
		Short: "Print the Envoy binary `portico run` would use, and where it comes from",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger()
			if err != nil {
				return err
			}
			e, err := newAcquirer(logger, stderr, *src).Which(cmd.Context(), path, version)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(stdout, "%s\tenvoy %s, %s\n", e.Path, e.Version, sourceText(e.Source))
			return err
		},
	}
	cmd.Flags().StringVar(&path, "envoy-path", os.Getenv("PORTICO_ENVOY_PATH"), "as for run (env PORTICO_ENVOY_PATH)")
	cmd.Flags().StringVar(&version, "envoy-version", supervisor.DefaultEnvoyVersion, "as for run")
	return cmd
}

// sourceText explains an Envoy's source to a user.
func sourceText(source string) string {
	switch source {
	case "flag":
		return "named by --envoy-path or PORTICO_ENVOY_PATH"
	case "cache":
		return "from the cache"
	case "download":
		return "not installed yet: run downloads it to this path"
	case "path":
		return "from PATH"
	}
	return source
}

// maxOneArg accepts at most one positional argument.
func maxOneArg(cmd *cobra.Command, args []string) error {
	if len(args) > 1 {
		return usageError{fmt.Errorf("%s takes at most one argument, got %d", cmd.CommandPath(), len(args))}
	}
	return nil
}
