package translator

import (
	"fmt"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	filev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/portico-gw/portico/config"
)

// accessLogFormats are Envoy's format commands for the fields of config.AccessLogFields. A
// command alone in a JSON value keeps its type, so status and durations are numbers.
var accessLogFormats = map[string]string{
	"time":          "%START_TIME(%Y-%m-%dT%H:%M:%S.%3fZ)%",
	"method":        "%REQ(:METHOD)%",
	"path":          "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
	"authority":     "%REQ(:AUTHORITY)%",
	"status":        "%RESPONSE_CODE%",
	"duration":      "%DURATION%",
	"bytes":         "%BYTES_SENT%",
	"bytesReceived": "%BYTES_RECEIVED%",
	// RAW: the cluster's name, which is the Upstream's, not its escaped alt_stat_name.
	"upstream":      "%UPSTREAM_CLUSTER_RAW%",
	"route":         "%ROUTE_NAME%",
	"requestID":     "%REQ(X-REQUEST-ID)%",
	"clientAddress": "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%",
	"userAgent":     "%REQ(USER-AGENT)%",
	"responseFlags": "%RESPONSE_FLAGS%",
	"upstreamHost":  "%UPSTREAM_HOST%",
	"protocol":      "%PROTOCOL%",
}

// Runtime keys Envoy's access log filters require; Portico sets no runtime values, so the
// defaults written here apply.
const (
	runtimeKeyStatus   = "portico.access_log.status"
	runtimeKeyDuration = "portico.access_log.min_duration"
	runtimeKeySampling = "portico.access_log.sampling"
)

// accessLogs builds the HTTP connection manager's access log for a Gateway, nil without one.
func accessLogs(a *config.AccessLog) ([]*accesslogv3.AccessLog, error) {
	if a == nil {
		return nil, nil
	}
	fields := a.Fields
	if len(fields) == 0 {
		fields = config.AccessLogFields
	}
	values := make(map[string]any, len(fields))
	for _, f := range fields {
		format, ok := accessLogFormats[f]
		if !ok {
			return nil, fmt.Errorf("access log field %q has no Envoy format", f)
		}
		values[f] = format
	}
	jsonFormat, err := structpb.NewStruct(values)
	if err != nil {
		return nil, err
	}
	format := &corev3.SubstitutionFormatString{Format: &corev3.SubstitutionFormatString_JsonFormat{JsonFormat: jsonFormat}}
	var logger proto.Message
	name := "envoy.access_loggers.stdout"
	if a.Path == "" || a.Path == config.AccessLogStdout {
		logger = &streamv3.StdoutAccessLog{AccessLogFormat: &streamv3.StdoutAccessLog_LogFormat{LogFormat: format}}
	} else {
		name = "envoy.access_loggers.file"
		logger = &filev3.FileAccessLog{Path: a.Path, AccessLogFormat: &filev3.FileAccessLog_LogFormat{LogFormat: format}}
	}
	// Deterministic: the format is a map, and unchanged configuration must give identical bytes.
	typed := &anypb.Any{}
	err = anypb.MarshalFrom(typed, logger, proto.MarshalOptions{Deterministic: true})
	if err != nil {
		return nil, err
	}
	filter, err := accessLogFilter(a)
	if err != nil {
		return nil, err
	}
	return []*accesslogv3.AccessLog{{Name: name, Filter: filter, ConfigType: &accesslogv3.AccessLog_TypedConfig{TypedConfig: typed}}}, nil
}

// accessLogFilter combines the filter's conditions and the sampling: all must hold.
func accessLogFilter(a *config.AccessLog) (*accesslogv3.AccessLogFilter, error) {
	var all []*accesslogv3.AccessLogFilter
	if f := a.Filter; f != nil {
		var classes []*accesslogv3.AccessLogFilter
		for _, c := range f.StatusClass {
			var digit uint32
			if _, err := fmt.Sscanf(c, "%1dxx", &digit); err != nil {
				return nil, fmt.Errorf("status class %q: %w", c, err)
			}
			classes = append(classes, and(
				statusFilter(accesslogv3.ComparisonFilter_GE, digit*100),
				statusFilter(accesslogv3.ComparisonFilter_LE, digit*100+99)))
		}
		if len(classes) == 1 {
			all = append(all, classes[0])
		} else if len(classes) > 1 {
			all = append(all, &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_OrFilter{
				OrFilter: &accesslogv3.OrFilter{Filters: classes}}})
		}
		if f.MinDuration != "" {
			d, err := time.ParseDuration(f.MinDuration)
			if err != nil {
				return nil, fmt.Errorf("minDuration: %w", err)
			}
			all = append(all, &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_DurationFilter{
				DurationFilter: &accesslogv3.DurationFilter{Comparison: &accesslogv3.ComparisonFilter{
					Op:    accesslogv3.ComparisonFilter_GE,
					Value: &corev3.RuntimeUInt32{DefaultValue: uint32(d.Milliseconds()), RuntimeKey: runtimeKeyDuration},
				}}}})
		}
	}
	if p := a.SamplingPercent; p != nil && *p < 100 {
		all = append(all, &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_RuntimeFilter{
			RuntimeFilter: &accesslogv3.RuntimeFilter{
				RuntimeKey: runtimeKeySampling,
				// Millionths keep fractional percentages such as 0.5 exact.
				PercentSampled: &typev3.FractionalPercent{Numerator: uint32(*p * 10000), Denominator: typev3.FractionalPercent_MILLION},
				// Independent of x-request-id, so that a client cannot choose to be logged.
				UseIndependentRandomness: true,
			}}})
	}
	switch len(all) {
	case 0:
		return nil, nil
	case 1:
		return all[0], nil
	}
	return and(all...), nil
}

func statusFilter(op accesslogv3.ComparisonFilter_Op, code uint32) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_StatusCodeFilter{
		StatusCodeFilter: &accesslogv3.StatusCodeFilter{Comparison: &accesslogv3.ComparisonFilter{
			Op: op, Value: &corev3.RuntimeUInt32{DefaultValue: code, RuntimeKey: runtimeKeyStatus},
		}}}}
}

func and(filters ...*accesslogv3.AccessLogFilter) *accesslogv3.AccessLogFilter {
	return &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_AndFilter{
		AndFilter: &accesslogv3.AndFilter{Filters: filters}}}
}
