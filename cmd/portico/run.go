package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/portico-gw/portico/admin"
	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/controller"
	bootstrap "github.com/portico-gw/portico/envoy-bootstrap"
	"github.com/portico-gw/portico/internal/unixsock"
	"github.com/portico-gw/portico/metrics"
	"github.com/portico-gw/portico/supervisor"
	"github.com/portico-gw/portico/xds"
)

// nodeID is the xDS node id Envoy presents; one portico serves one Envoy, so it is fixed.
const nodeID = "portico"

type runOptions struct {
	configs          []string
	envoyPath        string
	envoyVersion     string
	envoyVersionsURL string
	offline          bool
	stderr           io.Writer // download progress
	stateDir         string
	concurrency      int
	envoyLogLevel    string
	drainTimeout     time.Duration
	readyTimeout     time.Duration
	adminAddress     string
	// adminExplicit is set when --admin-address was given: failing to listen there is fatal,
	// while a taken default (another portico on the host) only costs the admin API.
	adminExplicit bool
	// metricsAddress, when set, serves /metrics alone there, on any address.
	metricsAddress string
	strict         bool
	overload       overloadFlags
}

func newRunCmd(stdout io.Writer, newLogger func() (*slog.Logger, error)) *cobra.Command {
	o := runOptions{}
	cmd := &cobra.Command{
		Use:   "run [-c FILE|DIR]...",
		Short: "Run the gateway: start Envoy and serve the configuration, applying edits live",
		Long: `Run the gateway: fetch Envoy if needed, start and supervise it, serve the configuration
over xDS and apply every edit of the configuration files live, without restarting Envoy.

Without -c, portico reads ./portico.yaml, or serves a built-in demo on 127.0.0.1:8080.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			logger, err := newLogger()
			if err != nil {
				return err
			}
			o.stderr = cmd.ErrOrStderr()
			o.adminExplicit = cmd.Flags().Changed("admin-address")
			return runGateway(cmd.Context(), o, logger, stdout)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.configs, "config", "c", nil, "configuration file or directory (repeatable)")
	addEnvoyFlags(cmd, &o)
	addOverloadFlags(cmd, &o.overload)
	f.StringVar(&o.stateDir, "state-dir", "", "directory for run state: bootstrap, sockets, Envoy logs (default $XDG_STATE_HOME/portico)")
	f.IntVar(&o.concurrency, "concurrency", 2, "Envoy worker threads; a Proxy document's concurrency overrides it")
	f.StringVar(&o.envoyLogLevel, "envoy-log-level", "warning", "Envoy's log level: trace, debug, info, warning, error, critical or off; a Proxy document's logLevel overrides it")
	f.DurationVar(&o.drainTimeout, "drain-timeout", 5*time.Second, "how long a stop waits for in-flight requests; a Proxy document's drainTimeout overrides it")
	f.DurationVar(&o.readyTimeout, "ready-timeout", 60*time.Second, "how long to wait for Envoy to become ready")
	f.StringVar(&o.adminAddress, "admin-address", admin.DefaultAddress, "loopback address of portico's admin API (/readyz, /status)")
	f.StringVar(&o.metricsAddress, "metrics-address", "", "also serve /metrics (and nothing else of the admin API) on this address, such as 0.0.0.0:9701, for Prometheus on other hosts")
	f.BoolVar(&o.strict, "strict", false, "refuse to start unless the configuration files are valid as a whole, instead of serving the last known good configuration or holding broken resources back")
	return cmd
}

// addEnvoyFlags declares the flags that choose the Envoy binary.
func addEnvoyFlags(cmd *cobra.Command, o *runOptions) {
	f := cmd.Flags()
	f.StringVar(&o.envoyPath, "envoy-path", os.Getenv("PORTICO_ENVOY_PATH"), "Envoy binary to run instead of a downloaded one (env PORTICO_ENVOY_PATH)")
	f.StringVar(&o.envoyVersion, "envoy-version", supervisor.DefaultEnvoyVersion, "Envoy version to download and run")
	f.StringVar(&o.envoyVersionsURL, "envoy-versions-url", os.Getenv("PORTICO_ENVOY_VERSIONS_URL"), "URL of the Envoy versions JSON, for mirrors (env PORTICO_ENVOY_VERSIONS_URL; default func-e's)")
	f.BoolVar(&o.offline, "offline", os.Getenv("PORTICO_OFFLINE") == "1", "never download Envoy: use the cache or PATH only (env PORTICO_OFFLINE=1)")
}

func runGateway(ctx context.Context, o runOptions, logger *slog.Logger, stdout io.Writer) error {
	started := time.Now()
	recent := admin.NewRecentErrors(recentErrors)
	logger = slog.New(recent.Handler(logger.Handler()))
	src, err := resolveConfig(o.configs)
	if err != nil {
		return err
	}
	logger.Info("configuration", "source", src.Desc)
	maxHeap, maxConns, heapOrigin, err := o.overload.bootstrapLimits(os.DirFS("/"))
	if err != nil {
		return err
	}
	logger.Info("envoy overload limits", "max_heap_mib", maxHeap>>20, "heap_limit_from", heapOrigin, "max_connections", maxConns)
	stateDir, err := resolveStateDir(o.stateDir)
	if err != nil {
		return err
	}
	runDir := filepath.Join(stateDir, "run")
	if err := os.MkdirAll(runDir, 0o700); err != nil {
		return fmt.Errorf("create run directory: %w", err)
	}
	// An Envoy a crashed run left behind would hold the ports the check below expects free.
	if err := supervisor.KillStale(logger, runDir, filepath.Join(runDir, "bootstrap.yaml")); err != nil {
		return err
	}
	sockDir, cleanupSock, err := socketDir(runDir)
	if err != nil {
		return err
	}
	defer cleanupSock()

	// Watch before the first read, so that an edit made while Envoy starts is applied too.
	var watcher *controller.Watcher
	if len(src.Watch) > 0 {
		if watcher, err = controller.NewWatcher(logger, src.Watch); err != nil {
			return err
		}
		defer watcher.Close()
	}
	xsrv := xds.New(logger, nodeID)
	porticoMetrics := prometheus.NewRegistry()
	xsrv.SetObserver(metrics.NewXDS(porticoMetrics))
	authn, err := newAuthenticator(logger, porticoMetrics)
	if err != nil {
		return err
	}
	disc, err := newDiscovery(logger, porticoMetrics)
	if err != nil {
		return err
	}
	awsCreds := newAWSCredentialsFile(logger, runDir)
	defer awsCreds.remove()
	applying := func(cfg *config.Config) {
		authn.applying(cfg)
		awsCreds.applying(cfg)
	}
	ctrl := controller.New(controller.Options{Read: src.Read, XDS: xsrv, Logger: logger, StateDir: stateDir,
		SourceID: sourceID(src), Strict: o.strict, Preflight: newGatewayPorts, Applying: applying, Discovery: disc})
	gen, err := ctrl.Start(ctx)
	if err != nil {
		return err
	}
	// Host changes found after the first read are pushed as they come; one found meanwhile
	// is waiting in Changed.
	go pushDiscovered(ctx, disc, ctrl)
	watchServedFiles(logger, watcher, ctrl.Current())
	limiter, err := newRateLimiter(logger, porticoMetrics, ctrl.Current())
	if err != nil {
		return err
	}
	defer limiter.close()
	// Listen before Envoy starts, so that a taken admin port fails the start at once and
	// /readyz answers "not ready" while Envoy is starting.
	adminListener, err := admin.Listen(o.adminAddress)
	switch {
	case err != nil && o.adminExplicit:
		return err
	case err != nil:
		logger.Warn("admin API not started: /readyz and portico status are unavailable; choose a free --admin-address", "error", err.Error())
	default:
		defer adminListener.Close()
	}
	metricsListener, err := listenMetrics(o.metricsAddress)
	if err != nil {
		return err
	}
	if metricsListener != nil {
		defer metricsListener.Close()
	}
	if err := checkGatewayPorts(ctrl.Current()); err != nil {
		return err
	}

	acq := newAcquirer(logger, o.stderr, envoySourceFlags{versionsURL: o.envoyVersionsURL, offline: o.offline})
	envoy, err := acq.Acquire(ctx, o.envoyPath, o.envoyVersion)
	if err != nil {
		return err
	}

	status := func() controller.Status {
		st := ctrl.Status()
		st.Envoy.Version = envoy.Version
		st.RateLimit = limiter.status()
		addDiscoveryStatus(&st, disc.Status())
		return st
	}

	// The xDS server outlives Envoy's drain: it stops only after the supervisor returns.
	xdsCtx, stopXDS := context.WithCancel(context.WithoutCancel(ctx))
	defer stopXDS()
	sock := filepath.Join(sockDir, "xds.sock")
	xdsDone := make(chan error, 1)
	go func() { xdsDone <- xsrv.Serve(xdsCtx, sock) }()
	// The rate limit service, like the xDS server, answers until Envoy has drained.
	rlSock, serveRateLimits, err := limiter.listen(sockDir)
	if err != nil {
		stopXDS()
		<-xdsDone
		return err
	}
	rlDone := make(chan error, 1)
	go func() { rlDone <- serveRateLimits(xdsCtx) }()
	authzSock, serveAuthn, err := authn.listen(sockDir)
	if err != nil {
		stopXDS()
		<-xdsDone
		<-rlDone
		return err
	}
	authzDone := make(chan error, 1)
	go func() { authzDone <- serveAuthn(xdsCtx) }()

	bs, err := bootstrap.Build(bootstrap.Options{NodeID: nodeID, Cluster: nodeID, XDSSocket: sock, RateLimitSocket: rlSock,
		AuthzSocket: authzSock, MaxHeapBytes: maxHeap, MaxConnections: maxConns})
	if err != nil {
		return fmt.Errorf("build envoy bootstrap: %w", err)
	}
	bsPath := filepath.Join(runDir, "bootstrap.yaml")
	if err := bootstrap.Write(bsPath, bs); err != nil {
		return fmt.Errorf("write envoy bootstrap: %w", err)
	}

	settings := proxySettings(o, ctrl.Current())
	sup := supervisor.New(supervisor.Options{
		EnvoyPath:     envoy.Path,
		BootstrapPath: bsPath,
		RunDir:        runDir,
		SocketDir:     sockDir,
		Env:           awsCreds.env(),
		RunsDir:       filepath.Join(stateDir, "runs"),
		Concurrency:   settings.Concurrency,
		LogLevel:      settings.LogLevel,
		DrainTimeout:  settings.DrainTimeout,
		Logger:        logger,
	})
	adminOpts := adminOptions(status, ctrl.Current, sup, porticoMetrics)
	adminOpts.Recent = recent
	if adminListener != nil {
		go serveAdmin(ctx, logger, adminListener, admin.New(adminOpts))
	}
	if metricsListener != nil {
		go serveAdmin(ctx, logger, metricsListener, admin.MetricsHandler(adminOpts))
	}
	supDone := make(chan error, 1)
	go func() { supDone <- sup.Run(ctx) }()
	stopSignals := handleSignals(ctx, logger, sup)
	defer stopSignals()

	if err := awaitReady(ctx, o.readyTimeout, sup, xsrv, gen, supDone); err != nil {
		stopXDS()
		return err
	}
	fmt.Fprintf(stdout, "portico: gateway ready on %s (envoy %s, %.1fs)\n",
		listenURLs(ctrl.Current()), envoy.Version, time.Since(started).Seconds())

	reload := func() {
		ctrl.Reload(ctx)
		watchServedFiles(logger, watcher, ctrl.Current())
		applyProxySettings(ctx, logger, sup, o, ctrl.Current())
		limiter.reload(ctrl.Current())
	}
	if watcher != nil {
		go func() {
			if err := watcher.Run(ctx, watchSettle, reload); err != nil {
				logger.Error("configuration files are not watched: edits need a restart or SIGHUP", "error", err.Error())
			}
		}()
	}
	go reloadOnHangup(ctx, logger, reload)

	err = <-supDone
	if stopSignals() && err == nil {
		err = errForcedStop
	}
	stopXDS()
	if xerr := <-xdsDone; xerr != nil && err == nil {
		err = xerr
	}
	if rerr := <-rlDone; rerr != nil && err == nil {
		err = rerr
	}
	if aerr := <-authzDone; aerr != nil && err == nil {
		err = aerr
	}
	if err == nil {
		logger.Info("stopped")
	}
	return err
}

// watchServedFiles watches the directories of the files cfg serves to Envoy (certificates), so
// that replacing one reloads the configuration and pushes the new content.
func watchServedFiles(logger *slog.Logger, watcher *controller.Watcher, cfg *config.Config) {
	if watcher == nil || cfg == nil {
		return
	}
	if err := watcher.Add(cfg.ServedFiles()...); err != nil {
		logger.Warn("certificate files are not watched: replacing them needs SIGHUP", "error", err.Error())
	}
}

// watchSettle is how long the files must be quiet before a reload: long enough to take an
// editor's save, a copy of a large file (a write event per chunk) or a ConfigMap swap (a few
// events within microseconds) as one change. Every change waits it out before anything else
// happens, so it is kept short: a route addition takes a few tens of milliseconds in all.
const watchSettle = 10 * time.Millisecond

// sourceID identifies the configuration files for the last known good configuration: their
// absolute paths, so that a state directory shared by runs of different files never serves
// one's configuration to the other.
func sourceID(src configSource) string {
	if len(src.Watch) == 0 {
		return "built-in demo"
	}
	ids := make([]string, len(src.Watch))
	for i, p := range src.Watch {
		abs, err := filepath.Abs(p)
		if err != nil {
			abs = p
		}
		ids[i] = abs
	}
	return strings.Join(ids, string(os.PathListSeparator))
}

// reloadOnHangup reloads the configuration on every SIGHUP until ctx is done: the classic way
// to say "read your files again", for setups where file events do not arrive (some network
// file systems) or are not wanted.
func reloadOnHangup(ctx context.Context, logger *slog.Logger, reload func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			logger.Info("SIGHUP: reloading the configuration")
			reload()
		}
	}
}

// awaitReady waits for Envoy to answer /ready and to acknowledge generation gen, or for the
// supervisor to give up, whichever is first.
func awaitReady(ctx context.Context, timeout time.Duration, sup *supervisor.Supervisor, xsrv *xds.Server, gen uint64, supDone <-chan error) error {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ready := make(chan error, 1)
	go func() {
		if err := sup.WaitReady(rctx); err != nil {
			ready <- fmt.Errorf("envoy did not become ready: %w", err)
			return
		}
		if err := xsrv.WaitACK(rctx, gen); err != nil {
			ready <- fmt.Errorf("envoy did not accept the configuration: %w", err)
			return
		}
		ready <- nil
	}()
	select {
	case err := <-ready:
		if err != nil && ctx.Err() != nil {
			return <-supDone // interrupted while starting: report how the stop went
		}
		if errors.Is(err, context.DeadlineExceeded) {
			cancel()
			<-supDone
			return fmt.Errorf("%w (waited %s; raise --ready-timeout or see the envoy log lines above)", err, timeout)
		}
		return err
	case err := <-supDone:
		if err == nil {
			err = errors.New("envoy stopped before it became ready")
		}
		return err
	}
}

func listenURLs(cfg *config.Config) string {
	var urls []string
	for _, gw := range cfg.Gateways {
		urls = append(urls, fmt.Sprintf("%s://%s:%d", strings.ToLower(gw.Spec.Protocol), gw.Spec.BindAddress, gw.Spec.BindPort))
	}
	if len(urls) == 0 {
		return "no gateways (add a Gateway to listen)"
	}
	return strings.Join(urls, ", ")
}

// resolveStateDir returns the directory for portico's run state: the flag, else
// $XDG_STATE_HOME/portico, else ~/.local/state/portico.
func resolveStateDir(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "portico"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the state directory (set --state-dir): %w", err)
	}
	return filepath.Join(home, ".local", "state", "portico"), nil
}

// maxSocketPath keeps Unix socket paths within the kernel's sun_path limit (108 bytes on Linux)
// with room to spare.
const maxSocketPath = 100

// socketDir returns the directory for portico's Unix sockets (and Envoy's hot restart sockets):
// the run directory when their paths fit in sun_path, else a fresh 0700 directory under the
// system temp dir, removed on exit.
func socketDir(runDir string) (string, func(), error) {
	if len(filepath.Join(runDir, "xds.sock")) < maxSocketPath && supervisor.HotRestartSocketPathLen(runDir) <= unixsock.MaxPath {
		return runDir, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "portico-")
	if err != nil {
		return "", nil, fmt.Errorf("create socket directory: %w", err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}
