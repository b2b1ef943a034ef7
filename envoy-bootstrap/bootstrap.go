// Package bootstrap builds the static bootstrap Envoy starts from: who Envoy is (node id and
// cluster), where its admin API listens, how it reaches Portico's xDS server and, when asked,
// Portico's rate limit and authentication services, and the overload manager that guards
// Envoy's memory and its process-wide connection count.
//
// It owns only that hand-off. Listeners, routes and clusters for user traffic never appear here:
// they arrive later over ADS, so a config change never requires rewriting the bootstrap or
// restarting Envoy. The package does not start processes or pick file locations; the supervisor
// decides where the file goes and runs Envoy on it.
package bootstrap

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/portico-gw/portico/internal/protoyaml"
)

// XDSClusterName names the static cluster through which Envoy reaches Portico's xDS server.
const XDSClusterName = "portico_xds"

// RateLimitClusterName names the static cluster through which Envoy's ratelimit filter reaches
// Portico's in-process rate limit service.
const RateLimitClusterName = "portico_ratelimit"

// AuthzClusterName names the static cluster through which Envoy's ext_authz filter reaches
// Portico's in-process authentication service (API keys, basic auth).
const AuthzClusterName = "portico_authz"

// DefaultAdminAddress is where Envoy's admin API listens when Options.AdminAddress is empty.
const DefaultAdminAddress = "127.0.0.1"

// maxSocketPathBytes keeps the xDS socket path inside sun_path (108 bytes on Linux, 104 on
// macOS) with room for the terminating NUL, so a path that works here works on both.
const maxSocketPathBytes = 100

// xdsConnectTimeout bounds how long Envoy waits to connect to the xDS socket. The server is a
// local Unix socket in the same process that started Envoy, so anything slower is a failure
// Envoy should retry rather than wait on.
const xdsConnectTimeout = time.Second

// Options describe the one Envoy that Portico runs.
type Options struct {
	NodeID       string // xDS node id; the xDS server keys its snapshots by it
	Cluster      string // node cluster, reported to the xDS server alongside NodeID
	XDSSocket    string // absolute path of the Unix socket of Portico's xDS server
	AdminAddress string // loopback IP for Envoy's admin API; "" means DefaultAdminAddress
	// RateLimitSocket, when set, is the absolute path of the Unix socket of Portico's rate
	// limit service; the bootstrap then has a RateLimitClusterName cluster to it. It is
	// static because the service lives as long as Portico, like the xDS server.
	RateLimitSocket string
	// MaxHeapBytes is the heap size the overload manager measures against; 0 means
	// DefaultMaxHeapBytes. The caller derives it from the machine with HeapLimit.
	MaxHeapBytes uint64
	// MaxConnections caps client connections over all listeners together; 0 means
	// DefaultMaxConnections.
	MaxConnections uint64
	// AuthzSocket, when set, is the absolute path of the Unix socket of Portico's
	// authentication service; the bootstrap then has an AuthzClusterName cluster to it.
	AuthzSocket string
}

// Build returns the bootstrap for opts, checked both by Portico's own rules and by the
// constraints Envoy's protos declare, so that a bootstrap Build returns is one Envoy accepts.
//
// The admin port is always 0: Envoy picks a free port and the supervisor reads it back through
// --admin-address-path, so two Porticos on one host never collide.
func Build(opts Options) (*bootstrapv3.Bootstrap, error) {
	admin, err := checkOptions(&opts)
	if err != nil {
		return nil, err
	}

	// Portico speaks HTTP/2 only to its xDS server; Envoy needs this said explicitly because a
	// cluster defaults to HTTP/1.1 and gRPC cannot run over that.
	protocolOptions, err := anypb.New(&httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
				},
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("pack xds cluster http protocol options: %w", err)
	}

	overload, err := overloadManager(opts.MaxHeapBytes, opts.MaxConnections)
	if err != nil {
		return nil, fmt.Errorf("pack overload manager: %w", err)
	}

	adsSource := func() *corev3.ConfigSource {
		return &corev3.ConfigSource{
			ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
			ResourceApiVersion:    corev3.ApiVersion_V3,
		}
	}

	b := &bootstrapv3.Bootstrap{
		Node: &corev3.Node{Id: opts.NodeID, Cluster: opts.Cluster},
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				// State-of-the-world rather than delta: Portico's snapshots are small and
				// always complete, so SotW costs little and is the simpler protocol to reason
				// about and debug.
				ApiType:             corev3.ApiConfigSource_GRPC,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{
					TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{
						EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: XDSClusterName},
					},
				}},
				// The node never changes for the life of a stream; sending it once keeps
				// every later request small.
				SetNodeOnFirstMessageOnly: true,
			},
			LdsConfig: adsSource(),
			CdsConfig: adsSource(),
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Clusters: []*clusterv3.Cluster{unixSocketCluster(XDSClusterName, opts.XDSSocket, protocolOptions)},
		},
		OverloadManager: overload,
		Admin: &bootstrapv3.Admin{
			// The admin API is on loopback only, and the supervisor must still reach it when
			// clients use up the global connection limit.
			IgnoreGlobalConnLimit: true,
			Address: &corev3.Address{
				Address: &corev3.Address_SocketAddress{
					SocketAddress: &corev3.SocketAddress{
						Address:       admin.String(),
						PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 0},
					},
				},
			},
		},
	}
	if opts.RateLimitSocket != "" {
		// The rate limit service speaks gRPC too, so it needs the same HTTP/2 options.
		b.StaticResources.Clusters = append(b.StaticResources.Clusters,
			unixSocketCluster(RateLimitClusterName, opts.RateLimitSocket, protocolOptions))
	}
	if opts.AuthzSocket != "" {
		b.StaticResources.Clusters = append(b.StaticResources.Clusters,
			unixSocketCluster(AuthzClusterName, opts.AuthzSocket, protocolOptions))
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("envoy bootstrap is invalid: %w", err)
	}
	return b, nil
}

// unixSocketCluster is a static HTTP/2 cluster of one Portico gRPC server on a Unix socket.
func unixSocketCluster(name, socket string, protocolOptions *anypb.Any) *clusterv3.Cluster {
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(xdsConnectTimeout),
		TypedExtensionProtocolOptions: map[string]*anypb.Any{
			"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": protocolOptions,
		},
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{
				LbEndpoints: []*endpointv3.LbEndpoint{{
					HostIdentifier: &endpointv3.LbEndpoint_Endpoint{
						Endpoint: &endpointv3.Endpoint{
							Address: &corev3.Address{
								Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: socket}},
							},
						},
					},
				}},
			}},
		},
	}
}

// checkOptions applies defaults to opts and reports every problem at once, since each one is
// a separate thing the user has to fix.
func checkOptions(opts *Options) (netip.Addr, error) {
	var errs []error
	if opts.NodeID == "" {
		errs = append(errs, errors.New("node id is empty: the xDS server needs it to find Envoy's configuration"))
	}
	if opts.Cluster == "" {
		errs = append(errs, errors.New("node cluster is empty"))
	}
	switch {
	case opts.XDSSocket == "":
		errs = append(errs, errors.New("xDS socket path is empty"))
	case !filepath.IsAbs(opts.XDSSocket):
		errs = append(errs, fmt.Errorf("xDS socket path %q is not absolute: Envoy resolves it from its own working directory", opts.XDSSocket))
	case len(opts.XDSSocket) >= maxSocketPathBytes:
		errs = append(errs, fmt.Errorf("xDS socket path %q is %d bytes: Unix socket paths must be under %d bytes; choose a shorter directory", opts.XDSSocket, len(opts.XDSSocket), maxSocketPathBytes))
	}
	for _, s := range []struct{ what, path string }{{"rate limit", opts.RateLimitSocket}, {"authz", opts.AuthzSocket}} {
		switch {
		case s.path == "":
		case !filepath.IsAbs(s.path):
			errs = append(errs, fmt.Errorf("%s socket path %q is not absolute: Envoy resolves it from its own working directory", s.what, s.path))
		case len(s.path) >= maxSocketPathBytes:
			errs = append(errs, fmt.Errorf("%s socket path %q is %d bytes: Unix socket paths must be under %d bytes; choose a shorter directory", s.what, s.path, len(s.path), maxSocketPathBytes))
		}
	}

	if opts.AdminAddress == "" {
		opts.AdminAddress = DefaultAdminAddress
	}
	// Envoy's admin API can drain listeners, change log levels and shut Envoy down, and it has
	// no authentication: it must never be reachable from another host.
	admin, err := netip.ParseAddr(opts.AdminAddress)
	admin = admin.Unmap()
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("admin address %q is not an IP address: use a loopback IP such as 127.0.0.1 or ::1", opts.AdminAddress))
	case admin.IsUnspecified():
		errs = append(errs, fmt.Errorf("admin address %s listens on every interface: Envoy's admin API is unauthenticated and can shut Envoy down; use 127.0.0.1 or ::1", opts.AdminAddress))
	case !admin.IsLoopback():
		errs = append(errs, fmt.Errorf("admin address %s is not a loopback address: Envoy's admin API is unauthenticated and can shut Envoy down; use 127.0.0.1 or ::1", opts.AdminAddress))
	}
	if len(errs) > 0 {
		return netip.Addr{}, fmt.Errorf("envoy bootstrap options: %w", errors.Join(errs...))
	}
	return admin, nil
}

// Marshal renders b as YAML, the format a person debugging Envoy reads. Fields appear in proto
// declaration order with proto (snake_case) names, the same spelling as Envoy's documentation,
// and the same bootstrap always renders to the same bytes.
func Marshal(b *bootstrapv3.Bootstrap) ([]byte, error) {
	out, err := protoyaml.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode envoy bootstrap: %w", err)
	}
	return out, nil
}

// Write stores b at path as YAML, readable only by its owner, replacing any previous file in one
// rename so that Envoy never reads a half-written bootstrap.
func Write(path string, b *bootstrapv3.Bootstrap) (err error) {
	data, err := Marshal(b)
	if err != nil {
		return err
	}
	// The temporary file must be in the same directory: rename is atomic only within one
	// file system.
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write envoy bootstrap: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	// CreateTemp already creates the file 0600; Chmod states the requirement rather than
	// relying on that.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write envoy bootstrap %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write envoy bootstrap %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write envoy bootstrap %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write envoy bootstrap %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write envoy bootstrap %s: %w", path, err)
	}
	return nil
}
