package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/portico-gw/portico/admin"
	"github.com/portico-gw/portico/controller"
)

func newStatusCmd(stdout io.Writer) *cobra.Command {
	var address, output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show what a running portico serves: Envoy, generations and every resource's state",
		Long: `Show what a running portico serves: whether Envoy is connected and which version it is,
the configuration generation Portico wants served and the one Envoy acknowledged, the last
reload, every resource with its state (Accepted, Warning or Rejected) and why, the Gateways'
listening addresses, the routes per virtual host, every Upstream host with its health as
Envoy sees it, and the last warnings and errors logged.

It asks the admin API of the portico started with the same --admin-address.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return usageError{fmt.Errorf("-o %q: use text or json", output)}
			}
			st, raw, err := fetchStatus(cmd.Context(), address)
			if err != nil {
				return err
			}
			if output == "json" {
				_, err := stdout.Write(raw)
				return err
			}
			if err := printStatus(stdout, st); err != nil {
				return err
			}
			return printServing(cmd.Context(), stdout, address)
		},
	}
	cmd.Flags().StringVar(&address, "admin-address", admin.DefaultAddress, "admin address of the running portico")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func fetchStatus(ctx context.Context, address string) (controller.Status, []byte, error) {
	var st controller.Status
	raw, err := fetchAdmin(ctx, address, "/status")
	if err != nil {
		return st, nil, err
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return st, nil, fmt.Errorf("decode status from %s: %w", address, err)
	}
	return st, raw, nil
}

// fetchAdmin gets path from the admin API of the portico at address.
func fetchAdmin(ctx context.Context, address, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+address+path, nil)
	if err != nil {
		return nil, usageError{fmt.Errorf("--admin-address %q: %w", address, err)}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ask portico at %s (is it running, with this --admin-address?): %w", address, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s from %s: %w", path, address, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s from %s: %s: %s", path, address, resp.Status, strings.TrimSpace(string(raw)))
	}
	return raw, nil
}

func printStatus(w io.Writer, st controller.Status) error {
	envoy := "not connected"
	if st.Envoy.Connected {
		envoy = "connected"
	}
	if st.Envoy.Version != "" {
		envoy += ", version " + st.Envoy.Version
	}
	ready := "yes"
	if !st.Ready {
		ready = "no: " + st.NotReadyReason
	}
	fmt.Fprintf(w, "envoy:      %s\n", envoy)
	fmt.Fprintf(w, "ready:      %s\n", ready)
	fmt.Fprintf(w, "generation: %d wanted, %d served, %d acknowledged by envoy\n",
		st.Generation.Current, st.Generation.Served, st.Generation.ACKed)
	fmt.Fprintf(w, "source:     %s\n", st.Source)
	if st.Envoy.LastRejection != "" {
		fmt.Fprintf(w, "last envoy rejection: %s\n", st.Envoy.LastRejection)
	}
	if lr := st.LastReload; lr != nil {
		fmt.Fprintf(w, "last reload: %s at %s (generation %d)\n", lr.Result, lr.Time.Local().Format(time.DateTime), lr.Generation)
		for _, p := range lr.Problems {
			fmt.Fprintf(w, "  %s\n", problemText(p))
		}
	}
	if rl := st.RateLimit; rl != nil {
		fmt.Fprintf(w, "rate limits: %s\n", rateLimitLine(rl))
	}
	printDiscovery(w, st.Discovery)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tNAME\tSTATE\tREASONS")
	for _, r := range st.Resources {
		reasons := strings.Join(r.Reasons, "; ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Kind, r.Name, r.State, reasons)
	}
	return tw.Flush()
}

// rateLimitLine summarises the global rate limit service, loudly when its store fails.
func rateLimitLine(rl *controller.RateLimitStatus) string {
	line := fmt.Sprintf("%d global, counted in %s (fail %s)", rl.Limits, rl.Store, rl.FailureMode)
	if rl.Degraded {
		line += "; DEGRADED"
		if rl.DegradedSince != nil {
			line += " since " + rl.DegradedSince.Local().Format(time.DateTime)
		}
		line += fmt.Sprintf(", requests decided by the failure mode: %s", rl.LastError)
	}
	return line
}

// shownErrors is how many of the recent warnings and errors status prints, newest last.
const shownErrors = 10

// printServing prints what Envoy serves: listeners, routes and Upstream hosts with their
// health. A part the admin API cannot give (no Envoy running yet) is reported in its place.
func printServing(ctx context.Context, w io.Writer, address string) error {
	var listeners []admin.Listener
	var routes []admin.Route
	var upstreams []admin.Upstream
	var recent []admin.LogEntry
	parts := []struct {
		title, path string
		into        any
		print       func() error
	}{
		{"LISTENERS", "/listeners", &listeners, func() error {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "GATEWAY\tADDRESS")
			for _, l := range listeners {
				fmt.Fprintf(tw, "%s\t%s\n", l.Gateway, l.Address)
			}
			return tw.Flush()
		}},
		{"ROUTES", "/routes", &routes, func() error { return printRoutes(w, routes) }},
		{"UPSTREAM HOSTS", "/upstreams", &upstreams, func() error {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "UPSTREAM\tHOST\tHEALTH")
			for _, u := range upstreams {
				if len(u.Hosts) == 0 {
					fmt.Fprintf(tw, "%s\t-\tno hosts\n", u.Name)
				}
				for _, h := range u.Hosts {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, h.Address, h.Health)
				}
			}
			return tw.Flush()
		}},
		{"RECENT WARNINGS AND ERRORS", "/errors", &recent, func() error {
			if len(recent) == 0 {
				_, err := fmt.Fprintln(w, "none")
				return err
			}
			for _, e := range recent[max(0, len(recent)-shownErrors):] {
				fmt.Fprintf(w, "%s %-5s %s\n", e.Time.Local().Format(time.DateTime), e.Level, e.Message)
			}
			return nil
		}},
	}
	for _, p := range parts {
		fmt.Fprintf(w, "\n%s\n", p.title)
		raw, err := fetchAdmin(ctx, address, p.path)
		if err == nil {
			err = json.Unmarshal(raw, p.into)
		}
		if err != nil {
			fmt.Fprintf(w, "unavailable: %v\n", err)
			continue
		}
		if err := p.print(); err != nil {
			return err
		}
	}
	return nil
}
