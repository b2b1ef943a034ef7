package admin

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/portico-gw/portico/controller"
)

func TestReadyz(t *testing.T) {
	tests := []struct {
		name     string
		status   controller.Status
		wantCode int
		wantBody string
	}{
		{"ready", controller.Status{Ready: true, Generation: controller.GenerationStatus{Current: 7}}, 200, "ready: generation 7\n"},
		{"not ready", controller.Status{NotReadyReason: "envoy rejected generation 8: bad"}, 503, "not ready: envoy rejected generation 8: bad\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(Handler(func() controller.Status { return tc.status }))
			defer srv.Close()
			resp, err := http.Get(srv.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantCode || string(body) != tc.wantBody {
				t.Errorf("GET /readyz = %d %q, want %d %q", resp.StatusCode, body, tc.wantCode, tc.wantBody)
			}
		})
	}
}

func TestStatusIsJSON(t *testing.T) {
	want := controller.Status{Ready: true, Source: controller.SourceFiles, Resources: []controller.ResourceStatus{
		{Kind: "VirtualService", Name: "shop", State: controller.StateRejected, Reasons: []string{"x.yaml:3: bad"}},
	}}
	srv := httptest.NewServer(Handler(func() controller.Status { return want }))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got controller.Status
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Type") != "application/json" || len(got.Resources) != 1 || got.Resources[0].Reasons[0] != "x.yaml:3: bad" || got.Source != want.Source {
		t.Errorf("GET /status = %+v (%s)", got, resp.Header.Get("Content-Type"))
	}
}

func TestListenOnlyLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:0", ":0", "example.com:0", "no-port"} {
		if l, err := Listen(addr); err == nil {
			l.Close()
			t.Errorf("Listen(%q) succeeded, want a refusal", addr)
		}
	}
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, slog.New(slog.DiscardHandler), l, Handler(func() controller.Status { return controller.Status{Ready: true} }))
	}()
	resp, err := http.Get("http://" + l.Addr().String() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel = %v, want nil", err)
	}
	if _, err := http.Get("http://" + l.Addr().String() + "/readyz"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("the admin API still answers after Serve returned: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	st := controller.Status{
		Ready:      true,
		Generation: controller.GenerationStatus{Current: 4, Served: 4, ACKed: 4},
		Reloads:    map[string]uint64{controller.ResultInvalid: 2, controller.ResultApplied: 1},
		Resources:  []controller.ResourceStatus{{Kind: "VirtualService", Name: "shop", State: controller.StateRejected}},
	}
	srv := httptest.NewServer(Handler(func() controller.Status { return st }))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`portico_config_reloads_total{result="invalid"} 2`,
		`portico_config_reloads_total{result="applied"} 1`,
		`portico_config_reloads_total{result="partial"} 0`,
		`portico_config_generation{state="acked"} 4`,
		`portico_ready 1`,
		`portico_resources_rejected{kind="VirtualService"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s:\n%s", want, body)
		}
	}
}

func TestMetricsHandlerServesOnlyMetrics(t *testing.T) {
	srv := httptest.NewServer(MetricsHandler(Options{Status: func() controller.Status { return controller.Status{Ready: true} }}))
	defer srv.Close()
	for path, want := range map[string]int{"/metrics": 200, "/status": 404, "/readyz": 404, "/config_dump": 404} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/metrics" && !strings.Contains(string(body), "portico_ready 1\n") {
			t.Errorf("/metrics lacks portico_ready 1:\n%s", body)
		}
	}
}

func TestPageHasNoExternalAssets(t *testing.T) {
	srv := httptest.NewServer(Handler(func() controller.Status { return controller.Status{} }))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET / = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, external := range []string{"http://", "https://", "//cdn", "src=\""} {
		if strings.Contains(string(body), external) {
			t.Errorf("the page refers to %q: it must load nothing from elsewhere", external)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q, want default-src 'self'", csp)
	}
	if resp, err := http.Get(srv.URL + "/nothing-here"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /nothing-here = %v %v, want 404: only / is the page", resp.StatusCode, err)
	}
}
