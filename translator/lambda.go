package translator

import (
	"fmt"
	"net"
	"net/url"
	"strconv"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	lambdav3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/aws_lambda/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/wellknown"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/portico-gw/portico/config"
)

// FilterLambda is the name of the aws_lambda filter in the listener and in the per-route
// configuration of the routes that invoke functions.
const FilterLambda = "envoy.filters.http.aws_lambda"

// lambdaClusterMetadata is the filter metadata namespace the aws_lambda filter looks for on a
// route's cluster: without egress_gateway: true there, it passes the request on untouched.
const lambdaClusterMetadata = "com.amazonaws.lambda"

// lambdaPlaceholderARN fills the listener-level configuration, which Envoy requires to hold a
// well-formed ARN. The filter is disabled there, so nothing is ever invoked with it: only
// routes with a lambda action enable the filter, each with its own function.
const lambdaPlaceholderARN = "arn:aws:lambda:us-east-1:000000000000:function:portico-disabled"

// lambdaCluster makes c, the cluster of aws Upstream u, reach its Lambda endpoint and mark it
// for the aws_lambda filter. A name is resolved as one logical host, since AWS endpoints rotate
// addresses behind one name; an https endpoint is verified against the system's CA bundle found
// at load time (config.AWSUpstream.SystemCAFile) and must name the endpoint, unless the
// Upstream's own options.tls already set up TLS.
func lambdaCluster(u *config.Upstream, c *clusterv3.Cluster) (*clusterv3.Cluster, error) {
	ep := u.Spec.AWS.LambdaEndpoint()
	host, port, err := endpointHostPort(ep)
	if err != nil {
		return nil, err
	}
	c.Metadata = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{
		lambdaClusterMetadata: {Fields: map[string]*structpb.Value{"egress_gateway": structpb.NewBoolValue(true)}},
	}}
	endpoint := &endpointv3.Endpoint{Address: socketAddress(host, port)}
	if ip := net.ParseIP(host); ip == nil {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_LOGICAL_DNS}
		// Lambda endpoints answer over IPv4 everywhere; Envoy's default would try IPv6 first
		// and fail on hosts without an IPv6 route.
		c.DnsLookupFamily = clusterv3.Cluster_V4_PREFERRED
		endpoint.Hostname = host
	} else {
		c.ClusterDiscoveryType = &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC}
	}
	c.LoadAssignment = loadAssignment(u.Metadata.Name, []*endpointv3.LbEndpoint{lbEndpoint(endpoint, 0)})
	if ep.Scheme == "https" && c.TransportSocket == nil {
		ctx, err := anypb.New(&tlsv3.UpstreamTlsContext{
			Sni: host,
			CommonTlsContext: &tlsv3.CommonTlsContext{
				ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
					// Envoy reads the bundle itself; its system_root_certs cannot be combined
					// with the name check, which is what makes the chain mean this endpoint.
					TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: u.Spec.AWS.SystemCAFile}},
					MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
						SanType: tlsv3.SubjectAltNameMatcher_DNS,
						Matcher: stringMatcher(host, ""),
					}},
				}},
			},
		})
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		c.TransportSocket = &corev3.TransportSocket{
			Name:       wellknown.TransportSocketTls,
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: ctx},
		}
	}
	return c, nil
}

// endpointHostPort splits a validated endpoint URL, defaulting the port from the scheme.
func endpointHostPort(ep *url.URL) (string, int, error) {
	port := 443
	if ep.Scheme == "http" {
		port = 80
	}
	if p := ep.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return "", 0, fmt.Errorf("endpoint %q: port: %w", ep, err)
		}
		port = n
	}
	return ep.Hostname(), port, nil
}

// lambdaRoute sends er, the Envoy route of r, to the cluster of r's aws Upstream and enables
// the aws_lambda filter for it with r's function. When the Upstream names a Secret, Envoy reads
// its keys from the credentials file Portico writes (see docs/security.md), under the profile
// named here.
func (b *routeBuilder) lambdaRoute(r *config.LambdaDestination, er *routev3.Route) error {
	u := b.upstreamNamed(r.Upstream)
	if u == nil || u.Spec.AWS == nil {
		return fmt.Errorf("lambda: upstream %q is not an aws Upstream", r.Upstream)
	}
	if r.ARN == "" {
		return fmt.Errorf("lambda: function %q was not resolved to an ARN", r.Function)
	}
	invoke := &lambdav3.Config{
		Arn:                r.ARN,
		PayloadPassthrough: r.PayloadPassthrough,
		// The signature covers the host header, which must name the endpoint, not the
		// Gateway the client called.
		HostRewrite: u.Spec.AWS.LambdaEndpoint().Host,
	}
	if r.Invocation == config.LambdaInvocationAsync {
		invoke.InvocationMode = lambdav3.Config_ASYNCHRONOUS
	}
	if name := u.Spec.AWS.Credentials.Secret; name != "" {
		sec := b.cfg.SecretNamed(name)
		if sec == nil || sec.Spec.AWS == nil {
			return fmt.Errorf("lambda: secret %q has no keys", name)
		}
		// Only the profile's name travels: keys in the configuration would show in Envoy's
		// config dump, which its admin API serves to any local process.
		invoke.CredentialsProfile = config.AWSProfile(name, sec.Spec.AWS)
	}
	perRoute, err := anypb.New(&lambdav3.PerRouteConfig{InvokeConfig: invoke})
	if err != nil {
		return fmt.Errorf("lambda: %w", err)
	}
	// The filter is disabled in the listener; a FilterConfig entry turns it on for this route.
	enable, err := anypb.New(&routev3.FilterConfig{Config: perRoute})
	if err != nil {
		return fmt.Errorf("lambda: %w", err)
	}
	er.Action = &routev3.Route_Route{Route: &routev3.RouteAction{
		ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: r.Upstream},
	}}
	setPerFilter(&er.TypedPerFilterConfig, FilterLambda, enable)
	return nil
}

// upstreamNamed returns the Upstream of that name, nil when there is none.
func (b *routeBuilder) upstreamNamed(name string) *config.Upstream {
	for _, u := range b.cfg.Upstreams {
		if u.Metadata.Name == name {
			return u
		}
	}
	return nil
}

// applyLambda puts the aws_lambda filter just before the router when a route of the listener
// invokes a function. It is disabled by default, so that a request reaches it only on a route
// that enables it: a plain route can never be turned into an invocation.
func applyLambda(tn trafficNeeds, manager *hcmv3.HttpConnectionManager) error {
	if !tn.lambda {
		return nil
	}
	// Keys of its own keep Envoy from starting a credential chain (environment, files,
	// instance metadata) for a configuration that signs nothing.
	cfg, err := anypb.New(&lambdav3.Config{Arn: lambdaPlaceholderARN, Credentials: &lambdav3.Credentials{
		AccessKeyId: "unused", SecretAccessKey: "unused",
	}})
	if err != nil {
		return err
	}
	filter := &hcmv3.HttpFilter{
		Name:       FilterLambda,
		Disabled:   true,
		ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: cfg},
	}
	last := len(manager.HttpFilters) - 1 // the router
	manager.HttpFilters = append(manager.HttpFilters[:last:last], filter, manager.HttpFilters[last])
	return nil
}
