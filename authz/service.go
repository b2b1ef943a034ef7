package authz

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/portico-gw/portico/internal/grpcserve"
)

// stopTimeout bounds the graceful stop of Serve; checks are short, so it is only reached when
// a client holds its stream open after the shutdown.
const stopTimeout = 5 * time.Second

// MetadataIdentity is the key of the authenticated identity in the dynamic metadata an allowed
// check returns, where rate limit actions read it. Envoy files the metadata of every ext_authz
// instance under one namespace (MetadataNamespace), so the key is one a user's authorization
// server is unlikely to use by accident.
const MetadataIdentity = "portico_identity"

// MetadataNamespace is the dynamic metadata namespace Envoy's ext_authz filter writes a check's
// metadata to, whatever the instance's name.
const MetadataNamespace = "envoy.filters.http.ext_authz"

// Config configures a Service.
type Config struct {
	// Logger receives credential file reloads and their failures. Nil discards them.
	Logger *slog.Logger
	// Registerer receives the service's metrics. Nil leaves them unregistered.
	Registerer prometheus.Registerer
	// Settle is how long a credential file's directory must be quiet before the file is read
	// again. Default 25ms.
	Settle time.Duration
}

// Service answers Envoy's authorization checks. Check and SetSecrets are safe for concurrent
// use.
type Service struct {
	authv3.UnimplementedAuthorizationServer

	logger    *slog.Logger
	decisions *prometheus.CounterVec
	secrets   *secretTable
}

var _ authv3.AuthorizationServer = (*Service)(nil)

// New returns a service with no Secrets; SetSecrets gives it some.
func New(cfg Config) (*Service, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	decisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "portico_authz_decisions_total",
		Help: "Authentication decisions of Portico's API key and basic-auth service, by policy (VirtualService or route) and decision (allowed, denied).",
	}, []string{"policy", "decision"})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(decisions); err != nil {
			return nil, fmt.Errorf("authz service metrics: %w", err)
		}
	}
	settle := cfg.Settle
	if settle == 0 {
		settle = 25 * time.Millisecond
	}
	t, err := newSecretTable(logger, settle)
	if err != nil {
		return nil, err
	}
	return &Service{logger: logger, decisions: decisions, secrets: t}, nil
}

// SetSecrets makes secrets the Secrets in force, reading their files now (a file that did not
// change is not parsed again).
// The Secrets of the previous call stay usable until the next one, so that routes Envoy still
// has from the previous configuration keep working while it takes the new one.
func (s *Service) SetSecrets(secrets []Secret) { s.secrets.set(secrets) }

// Serve answers on l and reloads changed credential files until ctx is done, then stops
// gracefully and returns nil. The caller creates l, so that the socket's directory and
// permissions follow Portico's socket rules.
func (s *Service) Serve(ctx context.Context, l net.Listener) error {
	grpcServer := grpc.NewServer()
	authv3.RegisterAuthorizationServer(grpcServer, s)
	watched := make(chan struct{})
	wctx, stopWatching := context.WithCancel(ctx)
	go func() {
		s.secrets.watch(wctx)
		close(watched)
	}()
	s.logger.Info("authz service listening", "address", l.Addr().String())
	err := grpcserve.Serve(ctx, grpcServer, l, stopTimeout)
	stopWatching()
	<-watched
	s.secrets.close()
	if err != nil {
		return fmt.Errorf("serve authz on %s: %w", l.Addr(), err)
	}
	return nil
}

// Check authenticates one request under the policy its context extensions carry.
func (s *Service) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	attrs := req.GetAttributes()
	p, err := policyFrom(attrs.GetContextExtensions())
	if err != nil {
		// Only a translator bug gets here; deny rather than guess.
		s.logger.Error("authz check without a usable policy; denied", "error", err.Error())
		s.decisions.WithLabelValues(p.Name, "denied").Inc()
		return denied(http.StatusInternalServerError, "", "authorization is misconfigured\n"), nil
	}
	httpReq := attrs.GetRequest().GetHttp()
	identity, how, ok := s.authenticate(p, httpReq.GetHeaders(), httpReq.GetPath())
	if !ok {
		s.decisions.WithLabelValues(p.Name, "denied").Inc()
		return s.unauthorized(p), nil
	}
	s.decisions.WithLabelValues(p.Name, "allowed").Inc()
	return allowed(p, identity, how), nil
}

// credential says which credential authenticated a request, so that just it is removed.
type credential int

const (
	byAPIKey credential = iota + 1
	byBasicAuth
)

// authenticate finds the identity the request's credentials prove under p.
func (s *Service) authenticate(p Policy, headers map[string]string, path string) (string, credential, bool) {
	if len(p.APIKeySecrets) > 0 {
		if key := apiKey(p, headers, path); key != "" {
			for _, name := range p.APIKeySecrets {
				if f := s.secrets.file(name); f != nil {
					if id, ok := f.IdentifyKey(key); ok {
						return id, byAPIKey, true
					}
				}
			}
		}
	}
	if p.BasicAuthSecret != "" {
		if user, password, ok := basicCredentials(headers["authorization"]); ok {
			if f := s.secrets.file(p.BasicAuthSecret); f != nil && f.CheckPassword(user, password) {
				return user, byBasicAuth, true
			}
		}
	}
	return "", 0, false
}

// apiKey reads the key from where the policy says.
func apiKey(p Policy, headers map[string]string, path string) string {
	if p.APIKeyHeader != "" {
		return headers[p.APIKeyHeader]
	}
	_, rawQuery, _ := strings.Cut(path, "?")
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return ""
	}
	return q.Get(p.APIKeyQuery)
}

// basicCredentials decodes an Authorization: Basic header.
func basicCredentials(h string) (user, password string, ok bool) {
	scheme, encoded, found := strings.Cut(h, " ")
	if !found || !strings.EqualFold(scheme, "basic") {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(encoded))
	if err != nil {
		return "", "", false
	}
	return strings.Cut(string(raw), ":")
}

// allowed lets the request through with its identity, replacing whatever the client sent in
// the identity header, and without the credential that proved it.
func allowed(p Policy, identity string, how credential) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{
		Headers: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: p.IdentityHeader, Value: identity},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}
	switch {
	case how == byBasicAuth:
		ok.HeadersToRemove = []string{"authorization"}
	case p.APIKeyHeader != "":
		ok.HeadersToRemove = []string{p.APIKeyHeader}
	default:
		ok.QueryParametersToRemove = []string{p.APIKeyQuery}
	}
	return &authv3.CheckResponse{
		Status:       &status.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
		DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{
			MetadataIdentity: structpb.NewStringValue(identity),
		}},
	}
}

// unauthorized is the 401 for a request without valid credentials under p.
func (s *Service) unauthorized(p Policy) *authv3.CheckResponse {
	var want []string
	if len(p.APIKeySecrets) > 0 {
		if p.APIKeyHeader != "" {
			want = append(want, "a valid API key in the "+p.APIKeyHeader+" header")
		} else {
			want = append(want, "a valid API key in the "+p.APIKeyQuery+" query parameter")
		}
	}
	challenge := ""
	if p.BasicAuthSecret != "" {
		want = append(want, "valid basic credentials")
		challenge = fmt.Sprintf(`Basic realm="%s", charset="UTF-8"`, p.Realm)
	}
	return denied(http.StatusUnauthorized, challenge, "unauthorized: this resource needs "+strings.Join(want, " or ")+"\n")
}

func denied(code int, challenge, body string) *authv3.CheckResponse {
	headers := []*corev3.HeaderValueOption{{
		Header:       &corev3.HeaderValue{Key: "content-type", Value: "text/plain; charset=utf-8"},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}}
	if challenge != "" {
		headers = append(headers, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: "www-authenticate", Value: challenge},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		})
	}
	rpc := codes.Unauthenticated
	if code != http.StatusUnauthorized {
		rpc = codes.Internal
	}
	return &authv3.CheckResponse{
		Status: &status.Status{Code: int32(rpc)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(code)},
			Headers: headers,
			Body:    body,
		}},
	}
}
