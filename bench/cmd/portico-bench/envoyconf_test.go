package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico-gw/portico/bench/workload"
	"github.com/portico-gw/portico/internal/envoytest"
)

// TestBareEnvoyConfigValid has the real Envoy validate the bare-Envoy contender's configuration,
// hardening settings included, so that a bench run does not find out at its end.
func TestBareEnvoyConfigValid(t *testing.T) {
	envoy := envoytest.Binary(t)
	cfg := filepath.Join(t.TempDir(), "envoy.yaml")
	conf, err := envoyStaticFor(workload.Spec{Routes: 20, PerService: 10, GatewayPort: 18080, Backends: []int{9001, 9002}, UpstreamCount: 3})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(conf), "envoy.overload_actions.stop_accepting_requests") {
		t.Errorf("bare Envoy lacks Portico's overload manager:\n%s", conf)
	}
	if err := os.WriteFile(cfg, conf, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), envoy, "--mode", "validate", "-c", cfg, "--concurrency", "1", "--log-level", "error").CombinedOutput()
	if err != nil {
		t.Fatalf("envoy --mode validate: %v\n%s\nconfiguration:\n%s", err, out, conf)
	}
}
