package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/portico-gw/portico/config"
	bootstrap "github.com/portico-gw/portico/envoy-bootstrap"
)

func newBootstrapCmd(stdout io.Writer) *cobra.Command {
	var configs []string
	var stateDirFlag string
	var overload overloadFlags
	cmd := &cobra.Command{
		Use:   "bootstrap [-c FILE|DIR]...",
		Short: "Print the Envoy bootstrap portico would start Envoy with",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			src, err := resolveConfig(configs)
			if err != nil {
				return err
			}
			files, err := src.Read()
			if err != nil {
				return err
			}
			if _, err := config.LoadFiles(files); err != nil {
				return err
			}
			stateDir, err := resolveStateDir(stateDirFlag)
			if err != nil {
				return err
			}
			// Print the socket path run would use; create nothing.
			sock := filepath.Join(stateDir, "run", "xds.sock")
			if len(sock) >= maxSocketPath {
				sock = filepath.Join("/tmp", "portico-XXXXXX", "xds.sock")
			}
			maxHeap, maxConns, _, err := overload.bootstrapLimits(os.DirFS("/"))
			if err != nil {
				return err
			}
			bs, err := bootstrap.Build(bootstrap.Options{NodeID: nodeID, Cluster: nodeID, XDSSocket: sock,
				RateLimitSocket: filepath.Join(filepath.Dir(sock), "ratelimit.sock"), AuthzSocket: filepath.Join(filepath.Dir(sock), "authz.sock"),
				MaxHeapBytes: maxHeap, MaxConnections: maxConns})
			if err != nil {
				return fmt.Errorf("build envoy bootstrap: %w", err)
			}
			out, err := bootstrap.Marshal(bs)
			if err != nil {
				return err
			}
			_, err = stdout.Write(out)
			return err
		},
	}
	cmd.Flags().StringArrayVarP(&configs, "config", "c", nil, "configuration file or directory (repeatable)")
	cmd.Flags().StringVar(&stateDirFlag, "state-dir", "", "state directory, as for run")
	addOverloadFlags(cmd, &overload)
	return cmd
}
