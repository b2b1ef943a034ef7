package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/controller"
	"github.com/portico-gw/portico/internal/envoytest"
)

// adminAddr returns a free loopback admin address and the run flag that selects it.
func adminAddr(t *testing.T) (addr string, flag []string) {
	addr = fmt.Sprintf("127.0.0.1:%d", envoytest.FreePort(t))
	return addr, []string{"--admin-address", addr}
}

// porticoStatus runs `portico status -o json` against the portico at addr.
func porticoStatus(t *testing.T, addr string) (controller.Status, error) {
	t.Helper()
	out, err := exec.Command(porticoBin, "status", "-o", "json", "--admin-address", addr).Output()
	var st controller.Status
	if err != nil {
		return st, fmt.Errorf("portico status: %w", err)
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return st, fmt.Errorf("decode portico status output %q: %w", out, err)
	}
	return st, nil
}

// resourceState finds one resource's status.
func resourceState(st controller.Status, kind, name string) (controller.ResourceStatus, error) {
	for _, r := range st.Resources {
		if r.Kind == kind && r.Name == name {
			return r, nil
		}
	}
	return controller.ResourceStatus{}, fmt.Errorf("no status for %s %s", kind, name)
}

// expectState polls portico status until the resource is in state with a reason containing
// reason, and returns the status.
func expectState(t *testing.T, addr, kind, name, state, reason string) controller.Status {
	t.Helper()
	var st controller.Status
	eventually(t, 15*time.Second, fmt.Sprintf("%s %s is %s (%q)", kind, name, state, reason), func() error {
		var err error
		if st, err = porticoStatus(t, addr); err != nil {
			return err
		}
		r, err := resourceState(st, kind, name)
		if err != nil {
			return err
		}
		if r.State != state || !strings.Contains(strings.Join(r.Reasons, "\n"), reason) {
			return fmt.Errorf("%s %v", r.State, r.Reasons)
		}
		return nil
	})
	return st
}

// readyz returns the admin API's readiness answer.
func readyz(addr string) (int, string, error) {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func expectReadyz(t *testing.T, addr string, code int, contains string) {
	t.Helper()
	eventually(t, 15*time.Second, fmt.Sprintf("/readyz answers %d %q", code, contains), func() error {
		got, body, err := readyz(addr)
		if err != nil {
			return err
		}
		if got != code || !strings.Contains(body, contains) {
			return fmt.Errorf("got %d %q", got, body)
		}
		return nil
	})
}

func directVirtualService(name, domain, body string) string {
	return fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: %s}
spec:
  domains: [%s]
  routes:
  - match: {prefix: /}
    directResponse: {status: 200, body: %q}
`, name, domain, body)
}

func upstreamVirtualService(name, domain, upstream string) string {
	return fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: %s}
spec:
  domains: [%s]
  routes:
  - match: {prefix: /}
    upstream: %s
`, name, domain, upstream)
}

// TestInvalidEditShowsInStatus breaks one VirtualService while another changes: the broken one
// keeps its last good version and is Rejected in `portico status` with file and line, the other
// one's change applies, and Envoy is still ready.
func TestInvalidEditShowsInStatus(t *testing.T) {
	port := envoytest.FreePort(t)
	addr, flag := adminAddr(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	good := gatewayYAML(port) + directVirtualService("shop", "shop.example.com", "shop v1") + directVirtualService("blog", "blog.example.com", "blog v1")
	writeFile(t, cfg, good)
	p := startReady(t, cfg, flag...)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "shop.example.com", base+"/", 200, "shop v1")
	expectReadyz(t, addr, 200, "ready")

	bad := gatewayYAML(port) + upstreamVirtualService("shop", "shop.example.com", "nowhere") + directVirtualService("blog", "blog.example.com", "blog v2")
	writeFile(t, cfg, bad)
	line := 1 + strings.Count(bad[:strings.Index(bad, "upstream: nowhere")], "\n")
	st := expectState(t, addr, "VirtualService", "shop", controller.StateRejected, fmt.Sprintf("%s:%d", cfg, line))
	expectBody(t, "blog.example.com", base+"/", 200, "blog v2")
	expectBody(t, "shop.example.com", base+"/", 200, "shop v1")
	if r, _ := resourceState(st, "VirtualService", "blog"); r.State != controller.StateAccepted {
		t.Errorf("blog is %s %v, want Accepted", r.State, r.Reasons)
	}
	if st.LastReload == nil || st.LastReload.Result != controller.ResultPartial {
		t.Errorf("last reload %+v, want %s", st.LastReload, controller.ResultPartial)
	}
	expectReadyz(t, addr, 200, "ready")

	// A whole-change error (YAML syntax) changes nothing and is reported once, however often
	// the broken file is saved again.
	writeFile(t, cfg, good+"---\nkind: [\n")
	eventually(t, 10*time.Second, "the syntax error is reported", func() error {
		st, err := porticoStatus(t, addr)
		if err != nil {
			return err
		}
		if st.LastReload == nil || st.LastReload.Result != controller.ResultInvalid {
			return fmt.Errorf("last reload %+v", st.LastReload)
		}
		return nil
	})
	writeFile(t, cfg, good+"---\nkind: [\n")
	eventually(t, 10*time.Second, "the second save is counted", func() error {
		st, err := porticoStatus(t, addr)
		if err != nil {
			return err
		}
		if st.Reloads[controller.ResultInvalid] < 2 {
			return fmt.Errorf("reloads %v", st.Reloads)
		}
		return nil
	})
	if n := strings.Count(p.stderr.String(), "invalid YAML"); n != 1 {
		t.Errorf("the same syntax error was logged %d times, want once", n)
	}
	expectBody(t, "blog.example.com", base+"/", 200, "blog v2")

	// The text form names the rejected resource too.
	out, err := exec.Command(porticoBin, "status", "--admin-address", addr).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "VirtualService  shop") || !strings.Contains(string(out), "Rejected") {
		t.Errorf("portico status: %v\n%s", err, out)
	}
}

// TestEnvoyRejectionShowsInStatus adds a route whose regex is valid RE2 but too large for
// Envoy's program size limit: portico's validation does not know the limit, Envoy rejects the
// route configuration, and its Gateway is Rejected with Envoy's reason while the existing routes
// keep serving and /readyz says why it is not ready.
func TestEnvoyRejectionShowsInStatus(t *testing.T) {
	port := envoytest.FreePort(t)
	addr, flag := adminAddr(t)
	cfg := filepath.Join(t.TempDir(), "portico.yaml")
	good := gatewayYAML(port) + directVirtualService("shop", `"*"`, "shop v1")
	writeFile(t, cfg, good)
	startReady(t, cfg, flag...)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "", base+"/", 200, "shop v1")

	// A taken port is caught before the push (TestNewGatewayPortInUse); a regex whose RE2
	// program exceeds Envoy's size limit is valid to portico and rejected by Envoy alone. The
	// rejection of the route configuration is pinned on the Gateway that serves it.
	heavy := `---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: heavy}
spec:
  domains: [heavy.example]
  routes:
  - match: {regex: "/[a-z]{200}"}
    directResponse: {status: 200, body: heavy}
`
	writeFile(t, cfg, good+heavy)
	st := expectState(t, addr, "Gateway", "web", controller.StateRejected, "envoy rejected it: ")
	r, _ := resourceState(st, "Gateway", "web")
	if !strings.Contains(strings.Join(r.Reasons, " "), "RE2 program size") {
		t.Errorf("the reason does not carry Envoy's words: %v", r.Reasons)
	}
	expectReadyz(t, addr, 503, "envoy rejected generation")
	expectBody(t, "", base+"/", 200, "shop v1")

	// Removing the Gateway again makes Envoy's configuration current and portico ready.
	writeFile(t, cfg, good)
	expectReadyz(t, addr, 200, "ready")
	expectState(t, addr, "Gateway", "web", controller.StateAccepted, "")
}

// TestRestartServesLastKnownGood stops portico, breaks the file and starts again: the last
// configuration Envoy accepted is served, loudly, and --strict refuses to start instead.
func TestRestartServesLastKnownGood(t *testing.T) {
	port := envoytest.FreePort(t)
	addr, flag := adminAddr(t)
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	cfg := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfg, gatewayYAML(port)+directVirtualService("shop", `"*"`, "known good"))
	p := startReady(t, cfg, append(flag, "--state-dir", state)...)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	expectBody(t, "", base+"/", 200, "known good")
	eventually(t, 10*time.Second, "the last known good configuration is saved", func() error {
		_, err := os.Stat(filepath.Join(state, "last-known-good.json"))
		return err
	})
	first, err := porticoStatus(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	p.stop()

	writeFile(t, cfg, gatewayYAML(port)+"---\nkind: [\n")
	t.Run("strict refuses", func(t *testing.T) {
		s := start(t, dir, nil, "-c", cfg, "--envoy-path", envoytest.Binary(t), "--state-dir", state, "--strict", "--admin-address", addr)
		select {
		case <-s.done:
		case <-time.After(30 * time.Second):
			t.Fatal("portico --strict did not exit on an invalid configuration")
		}
		if s.exitErr == nil || !strings.Contains(s.stderr.String(), "invalid YAML") {
			t.Errorf("exit %v, stderr:\n%s", s.exitErr, s.stderr)
		}
	})

	p2 := startReady(t, cfg, append(flag, "--state-dir", state)...)
	expectBody(t, "", base+"/", 200, "known good")
	log := p2.stderr.String()
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "serving the last known good configuration") || !strings.Contains(log, cfg+":") {
		t.Errorf("the log does not warn loudly, with the file's errors, that the last known good is served:\n%s", log)
	}
	st, err := porticoStatus(t, addr)
	if err != nil {
		t.Fatal(err)
	}
	if st.Source != controller.SourceLastGood {
		t.Errorf("status source %q, want %q", st.Source, controller.SourceLastGood)
	}
	if st.Generation.Current <= first.Generation.Current {
		t.Errorf("generation %d after restart, want numbering to continue past %d", st.Generation.Current, first.Generation.Current)
	}
}
