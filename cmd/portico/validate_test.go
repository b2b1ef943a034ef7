package main

import (
	"encoding/json"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/portico-gw/portico/admin"
	"github.com/portico-gw/portico/controller"
	"github.com/portico-gw/portico/internal/envoytest"
)

const validateGateway = "apiVersion: portico.dev/v1\nkind: Gateway\nmetadata: {name: web}\nspec: {bindAddress: 127.0.0.1, bindPort: 8080}\n"

func TestValidateJSON(t *testing.T) {
	dir := t.TempDir()
	// An error that run would isolate (one VirtualService) still fails validate.
	path := filepath.Join(dir, "c.yaml")
	cfg := validateGateway + "---\napiVersion: portico.dev/v1\nkind: VirtualService\nmetadata: {name: shop}\nspec:\n  routes:\n  - match: {prefix: /}\n    upstream: nowhere\n"
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := call(t, "validate", "-o", "json", path)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	var report validateReport
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	want := controller.Problem{File: path, Line: 12, Column: 15, Kind: "VirtualService", Name: "shop", Field: "spec.routes[0].upstream", Severity: "error"}
	if report.Valid || len(report.Problems) != 1 {
		t.Fatalf("report = %+v, want one problem", report)
	}
	got := report.Problems[0]
	got.Message = ""
	if got != want || !strings.Contains(report.Problems[0].Message, `"nowhere" is not defined`) {
		t.Errorf("problem = %+v, want %+v about the undefined upstream", report.Problems[0], want)
	}

	code, stdout, _ = call(t, "validate", "-o", "json", filepath.Join("..", "..", "examples", "quickstart.yaml"))
	if code != 0 || !strings.Contains(stdout, `"valid": true`) {
		t.Errorf("quickstart: exit %d\n%s", code, stdout)
	}
}

func TestValidateWithEnvoy(t *testing.T) {
	bin := envoytest.Binary(t)
	code, stdout, stderr := call(t, "validate", "--envoy", "--envoy-path", bin, filepath.Join("..", "..", "examples", "quickstart.yaml"))
	if code != 0 || !strings.Contains(stdout, "(envoy 1.40.0 agrees)") {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

func TestStatusCommand(t *testing.T) {
	st := controller.Status{
		Envoy:          controller.EnvoyStatus{Connected: true, Version: "1.40.0"},
		Generation:     controller.GenerationStatus{Current: 5, Served: 6, ACKed: 6},
		Source:         controller.SourceFiles,
		NotReadyReason: "envoy rejected generation 5: cannot bind",
		Resources: []controller.ResourceStatus{
			{Kind: "Gateway", Name: "busy", State: controller.StateRejected, Reasons: []string{"envoy rejected it: cannot bind"}},
			{Kind: "VirtualService", Name: "shop", State: controller.StateAccepted},
		},
	}
	srv := httptest.NewServer(admin.Handler(func() controller.Status { return st }))
	defer srv.Close()
	addr := srv.Listener.Addr().String()
	code, stdout, stderr := call(t, "status", "--admin-address", addr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"envoy:      connected, version 1.40.0",
		"ready:      no: envoy rejected generation 5: cannot bind",
		"generation: 5 wanted, 6 served, 6 acknowledged by envoy",
		"Gateway         busy  Rejected  envoy rejected it: cannot bind",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status output lacks %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = call(t, "status", "-o", "json", "--admin-address", addr)
	var got controller.Status
	if err := json.Unmarshal([]byte(stdout), &got); code != 0 || err != nil || got.Generation != st.Generation {
		t.Errorf("status -o json: exit %d, %v: %s", code, err, stdout)
	}

	// Nobody listening: a clear error, not a usage error.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	code, _, stderr = call(t, "status", "--admin-address", closed)
	if code != 1 || !strings.Contains(stderr, "is it running") {
		t.Errorf("status against nothing: exit %d, %s", code, stderr)
	}
}

// TestValidateGatewayAPI shows validate counting what Gateway API documents became, and that
// they were converted.
func TestValidateGatewayAPI(t *testing.T) {
	code, stdout, stderr := call(t, "validate", filepath.Join("..", "..", "translator", "testdata", "in", "gateway-api.yaml"))
	want := "valid: 2 gateways, 2 virtual services, 0 route tables, 3 upstreams (7 Kubernetes documents converted; see docs/gateway-api.md)\n"
	if code != 0 || stdout != want {
		t.Errorf("validate exits %d with %q%s, want %q", code, stdout, stderr, want)
	}
}
