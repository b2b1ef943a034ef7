package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/portico-gw/portico/admin"
)

func newConfigDumpCmd(stdout io.Writer) *cobra.Command {
	var address string
	cmd := &cobra.Command{
		Use:   "config-dump",
		Short: "Print the running Envoy's configuration as JSON, without secrets",
		Long: `Print the running Envoy's configuration dump (its admin /config_dump, endpoints included) as
JSON, with secrets removed: private keys, passwords, session ticket keys and the inline content
of every secret. Safe to attach to a bug report.

It asks the admin API of the portico started with the same --admin-address.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			raw, err := fetchAdmin(cmd.Context(), address, "/config_dump")
			if err != nil {
				return err
			}
			_, err = stdout.Write(raw)
			return err
		},
	}
	cmd.Flags().StringVar(&address, "admin-address", admin.DefaultAddress, "admin address of the running portico")
	return cmd
}
