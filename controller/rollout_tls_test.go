package controller

import (
	"path/filepath"
	"testing"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/portico-gw/portico/config"
	"github.com/portico-gw/portico/xds"
)

// TestBridgeStepsKeepSecrets moves an HTTPS Gateway's route to a new Upstream: every
// make-before-break step must carry the certificate's Secret, or Envoy would get a listener
// naming a Secret it is never sent (and xds.Check refuses such a step).
func TestBridgeStepsKeepSecrets(t *testing.T) {
	certs, err := filepath.Abs(filepath.Join("..", "config", "testdata", "certs"))
	if err != nil {
		t.Fatal(err)
	}
	https := `apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: secure}
spec:
  bindPort: 8443
  protocol: HTTPS
  tls:
    certificates: [{certFile: ` + filepath.Join(certs, "a.example.com.crt") + `, keyFile: ` + filepath.Join(certs, "a.example.com.key") + `}]
---
`
	build := func(cfg string) xds.Resources {
		t.Helper()
		p, err := Build(nil, []config.SourceFile{{Name: "c.yaml", Data: cfg}})
		if err != nil {
			t.Fatal(err)
		}
		return p.Resources
	}
	steps := bridgeSteps(build(https+upstreamYAML("a", 9001)+vsYAML("shop", `"*"`, "a")),
		build(https+upstreamYAML("b", 9002)+vsYAML("shop", `"*"`, "b")))
	if len(steps) != 2 {
		t.Fatalf("%d steps, want 2", len(steps))
	}
	for i, s := range steps {
		if _, err := xds.Check(s); err != nil {
			t.Errorf("step %d is not servable: %v", i, err)
		}
		if len(s[resource.SecretType]) != 1 {
			t.Errorf("step %d carries %d secrets, want the certificate's", i, len(s[resource.SecretType]))
		}
	}
}

// TestBridgeStepsCarryUpstreamSecrets moves a route from a plain Upstream to one that speaks
// TLS with a client certificate, and back: the TLS cluster is in both steps of each move, so
// every step must carry its CA and certificate Secrets (on the way in, before the routing that
// names the cluster has them; on the way out, after it has dropped them).
func TestBridgeStepsCarryUpstreamSecrets(t *testing.T) {
	certs, err := filepath.Abs(filepath.Join("..", "config", "testdata", "certs"))
	if err != nil {
		t.Fatal(err)
	}
	tlsUpstream := `---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: secure}
spec:
  static: {hosts: [{address: 127.0.0.1, port: 9443}]}
  options:
    tls: {caFile: ` + filepath.Join(certs, "b.example.com.crt") + `, certFile: ` + filepath.Join(certs, "a.example.com.crt") + `, keyFile: ` + filepath.Join(certs, "a.example.com.key") + `}
`
	build := func(cfg string) xds.Resources {
		t.Helper()
		p, err := Build(nil, []config.SourceFile{{Name: "c.yaml", Data: cfg}})
		if err != nil {
			t.Fatal(err)
		}
		return p.Resources
	}
	plain := build(gatewayYAML + upstreamYAML("plain", 9001) + vsYAML("shop", `"*"`, "plain"))
	secure := build(gatewayYAML + tlsUpstream + vsYAML("shop", `"*"`, "secure"))
	for name, move := range map[string][2]xds.Resources{"to tls": {plain, secure}, "from tls": {secure, plain}} {
		t.Run(name, func(t *testing.T) {
			steps := bridgeSteps(move[0], move[1])
			if len(steps) != 2 {
				t.Fatalf("%d steps, want 2", len(steps))
			}
			for i, s := range steps {
				if _, err := xds.Check(s); err != nil {
					t.Errorf("step %d is not servable: %v", i, err)
				}
				if len(s[resource.SecretType]) != 2 {
					t.Errorf("step %d carries %d secrets, want the TLS Upstream's CA and client certificate", i, len(s[resource.SecretType]))
				}
			}
		})
	}
}
