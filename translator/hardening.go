package translator

import (
	"fmt"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	connlimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/connection_limit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/portico-gw/portico/config"
)

// connectionLimitFilter is the network filter that enforces a Gateway's maxConnections.
const connectionLimitFilter = "envoy.filters.network.connection_limit"

// applyGatewayOptions gives the listener and its connection manager the Gateway's options, with
// every option the user left out at its safe default (config.GatewayOptions.Resolved), so the
// hardening is on unless a Gateway turns it off.
func applyGatewayOptions(gw *config.Gateway, l *listenerv3.Listener, hcm *hcmv3.HttpConnectionManager) error {
	o := gw.Spec.Options.Resolved()
	l.PerConnectionBufferLimitBytes = wrapperspb.UInt32(uint32(o.PerConnectionBufferLimitBytes))
	hcm.UseRemoteAddress = wrapperspb.Bool(*o.UseRemoteAddress)
	hcm.XffNumTrustedHops = uint32(o.XffNumTrustedHops)
	hcm.PreserveExternalRequestId = o.PreserveExternalRequestID
	hcm.NormalizePath = wrapperspb.Bool(*o.NormalizePath)
	hcm.MergeSlashes = *o.MergeSlashes
	escaped, ok := hcmv3.HttpConnectionManager_PathWithEscapedSlashesAction_value[o.EscapedSlashesAction]
	if !ok {
		return fmt.Errorf("escapedSlashesAction %q cannot be translated", o.EscapedSlashesAction)
	}
	hcm.PathWithEscapedSlashesAction = hcmv3.HttpConnectionManager_PathWithEscapedSlashesAction(escaped)
	underscores, ok := corev3.HttpProtocolOptions_HeadersWithUnderscoresAction_value[o.HeadersWithUnderscoresAction]
	if !ok {
		return fmt.Errorf("headersWithUnderscoresAction %q cannot be translated", o.HeadersWithUnderscoresAction)
	}
	idle, err := timeout("idleTimeout", o.IdleTimeout)
	if err != nil {
		return err
	}
	hcm.CommonHttpProtocolOptions = &corev3.HttpProtocolOptions{
		IdleTimeout:                  idle,
		HeadersWithUnderscoresAction: corev3.HttpProtocolOptions_HeadersWithUnderscoresAction(underscores),
	}
	if hcm.RequestHeadersTimeout, err = timeout("requestHeadersTimeout", o.RequestHeadersTimeout); err != nil {
		return err
	}
	if hcm.StreamIdleTimeout, err = timeout("streamIdleTimeout", o.StreamIdleTimeout); err != nil {
		return err
	}
	if o.RequestTimeout != "" {
		if hcm.RequestTimeout, err = timeout("requestTimeout", o.RequestTimeout); err != nil {
			return err
		}
	}
	hcm.Http2ProtocolOptions = &corev3.Http2ProtocolOptions{
		MaxConcurrentStreams:        wrapperspb.UInt32(uint32(o.HTTP2.MaxConcurrentStreams)),
		InitialStreamWindowSize:     wrapperspb.UInt32(uint32(o.HTTP2.InitialStreamWindowSize)),
		InitialConnectionWindowSize: wrapperspb.UInt32(uint32(o.HTTP2.InitialConnectionWindowSize)),
	}
	return nil
}

// timeout is a validated duration; "0s" is Envoy's "no timeout".
func timeout(field, d string) (*durationpb.Duration, error) {
	parsed, err := time.ParseDuration(d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return durationpb.New(parsed), nil
}

// limitConnections puts a connection_limit filter first in every filter chain of a Gateway with
// maxConnections, so a connection over the cap is closed before any TLS or HTTP work is spent on
// it. Envoy counts per filter chain: an HTTPS Gateway with several certificates caps each
// certificate's connections separately (docs/security.md says so).
func limitConnections(gw *config.Gateway, l *listenerv3.Listener) error {
	o := gw.Spec.Options
	if o == nil || o.MaxConnections == 0 {
		return nil
	}
	limit, err := anypb.New(&connlimitv3.ConnectionLimit{
		StatPrefix:     StatName(gw.Metadata.Name),
		MaxConnections: wrapperspb.UInt64(uint64(o.MaxConnections)),
	})
	if err != nil {
		return err
	}
	for _, chain := range l.FilterChains {
		chain.Filters = append([]*listenerv3.Filter{{
			Name:       connectionLimitFilter,
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: limit},
		}}, chain.Filters...)
	}
	return nil
}
