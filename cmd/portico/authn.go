package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/portico-gw/portico/authz"
	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/internal/unixsock"
)

// authenticator runs the API key and basic-auth service for one portico run and keeps its
// Secrets in step with the configuration pushed to Envoy.
//
// Like the rate limit service it runs for the whole run, policies or not: the bootstrap that
// names its socket is fixed for Envoy's life, and a reload may add the first policy.
type authenticator struct {
	svc *authz.Service
}

func newAuthenticator(logger *slog.Logger, reg prometheus.Registerer) (*authenticator, error) {
	svc, err := authz.New(authz.Config{Logger: logger, Registerer: reg})
	if err != nil {
		return nil, err
	}
	return &authenticator{svc: svc}, nil
}

// listen opens the service's socket in sockDir; it returns the socket's path and the function
// that answers Envoy on it, and reloads changed credential files, until its context is done.
func (a *authenticator) listen(sockDir string) (string, func(ctx context.Context) error, error) {
	path := filepath.Join(sockDir, "authz.sock")
	l, err := unixsock.Listen(path)
	if err != nil {
		return "", nil, fmt.Errorf("authz service: %w", err)
	}
	return path, func(ctx context.Context) error { return a.svc.Serve(ctx, l) }, nil
}

// applying gives the service the Secrets of cfg, a configuration about to be pushed
// (controller.Options.Applying).
func (a *authenticator) applying(cfg *config.Config) {
	secrets := make([]authz.Secret, 0, len(cfg.Secrets))
	for _, s := range cfg.Secrets {
		// tls and generic Secrets are served to Envoy over SDS and awsCredentials Secrets with the
		// routes that invoke Lambda functions; the service has nothing to check with them.
		if s.Spec.Type == config.SecretTypeTLS || s.Spec.Type == config.SecretTypeAWSCredentials || s.Spec.Type == config.SecretTypeGeneric {
			continue
		}
		secrets = append(secrets, authz.Secret{Name: s.Metadata.Name, Type: s.Spec.Type, File: s.Spec.File})
	}
	a.svc.SetSecrets(secrets)
}
