package main

import (
	"fmt"
	"io"

	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/spf13/cobra"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/translator"
)

func newValidateCmd(stdout io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "validate PATH...",
		Short: "Check configuration files without running anything",
		Long: `Check configuration files: decode, validate and translate them exactly as 'portico run'
does before it pushes to Envoy. Exits 0 when valid, 1 with every problem listed otherwise.`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{fmt.Errorf("validate needs at least one file or directory")}
			}
			return nil
		},
		RunE: func(_ *cobra.Command, args []string) error {
			cfg, err := config.Load(args...)
			if err != nil {
				return err
			}
			out, err := translator.Translate(cfg)
			if err != nil {
				return err
			}
			snap, err := cache.NewSnapshot("validate", out.Resources())
			if err != nil {
				return fmt.Errorf("build snapshot: %w", err)
			}
			if err := snap.Consistent(); err != nil {
				return fmt.Errorf("translated resources are inconsistent: %w", err)
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintf(stdout, "warning: %s\n", w.Error())
			}
			_, err = fmt.Fprintf(stdout, "valid: %d gateways, %d virtual services, %d upstreams\n",
				len(cfg.Gateways), len(cfg.VirtualServices), len(cfg.Upstreams))
			return err
		},
	}
}
