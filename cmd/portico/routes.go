package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/portico-gw/portico/admin"
)

func newRoutesCmd(stdout io.Writer) *cobra.Command {
	var address, output string
	cmd := &cobra.Command{
		Use:   "routes",
		Short: "Show the route table a running portico serves",
		Long: `Show the route table a running portico serves, in the order Envoy matches it: per Gateway
and domains, each route's name, match, action, upstream and the state of its VirtualService.
Routes delegated to RouteTables appear where Envoy has them, named after the delegation.

It asks the admin API of the portico started with the same --admin-address.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("-o %q: use text or json", output)}
			}
			raw, err := fetchAdmin(cmd.Context(), address, "/routes")
			if err != nil {
				return err
			}
			if output == "json" {
				_, err := stdout.Write(raw)
				return err
			}
			var routes []admin.Route
			if err := json.Unmarshal(raw, &routes); err != nil {
				return fmt.Errorf("decode routes from %s: %w", address, err)
			}
			return printRoutes(stdout, routes)
		},
	}
	cmd.Flags().StringVar(&address, "admin-address", admin.DefaultAddress, "admin address of the running portico")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func printRoutes(w io.Writer, routes []admin.Route) error {
	if len(routes) == 0 {
		_, err := fmt.Fprintln(w, "no routes: no VirtualService is attached to a Gateway")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GATEWAY\tDOMAINS\tROUTE\tMATCH\tACTION\tUPSTREAM\tSTATUS")
	for _, r := range routes {
		upstream := r.Upstream
		if upstream == "" {
			upstream = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s/%s\t%s\t%s\t%s\t%s\n", r.Gateway, strings.Join(r.Domains, ","),
			r.VirtualService, r.Name, r.Match, r.Action, upstream, r.Status)
	}
	return tw.Flush()
}
