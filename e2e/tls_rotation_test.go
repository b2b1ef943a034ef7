package e2e

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// rotationBound is how long a replaced certificate may take to be served: the file watcher's
// settle time, a reload and one SDS push, with a wide margin for a loaded machine.
const rotationBound = 10 * time.Second

// TestCertificateRotation replaces an HTTPS Gateway's certificate on disk, in a directory apart
// from the configuration, three ways: write-new-and-rename, plain overwrite, and a broken
// replacement. The new certificate must be served within rotationBound, Envoy must not restart,
// a keep-alive connection opened before the rotation must keep serving (without being told to
// close, as a draining listener would), and a broken replacement must leave the last good
// certificate serving with an error that names the file. No private key may appear in any log,
// status, config dump or validate output along the way.
func TestCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	confDir, certDir := filepath.Join(dir, "conf"), filepath.Join(dir, "tls")
	for _, d := range []string{confDir, certDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	var keys [][]byte
	rotate := func(install func(staged, live string)) *big.Int {
		t.Helper()
		cert, key := installSiteCert(t, certDir, install)
		keys = append(keys, key)
		return cert.SerialNumber
	}
	byRename := func(staged, live string) {
		if err := os.Rename(staged, live); err != nil {
			t.Fatal(err)
		}
	}
	byOverwrite := func(staged, live string) {
		data, err := os.ReadFile(staged)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(live, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	serial1 := rotate(byRename)

	port := envoytest.FreePort(t)
	addr, adminFlag := adminAddr(t)
	cfg := filepath.Join(confDir, "portico.yaml")
	writeFile(t, cfg, fmt.Sprintf(`apiVersion: portico.dev/v1
kind: Gateway
metadata: {name: secure}
spec:
  bindAddress: 127.0.0.1
  bindPort: %d
  protocol: HTTPS
  tls:
    certificates: [{certFile: ../tls/site.crt, keyFile: ../tls/site.key}]
---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: site}
spec:
  routes:
  - match: {prefix: /}
    directResponse: {status: 200, body: "secure\n"}
`, port))
	p := startReady(t, cfg, adminFlag...)
	target := fmt.Sprintf("127.0.0.1:%d", port)
	waitForSerial(t, target, serial1, rotationBound)
	pid := p.envoyPID()
	kept := dialKeepAlive(t, target)
	kept.expectServed(t)

	for _, step := range []struct {
		name    string
		install func(staged, live string)
	}{{"rename", byRename}, {"overwrite", byOverwrite}} {
		began := time.Now()
		serial := rotate(step.install)
		waitForSerial(t, target, serial, rotationBound)
		t.Logf("%s: new certificate served %s after the files were replaced", step.name, time.Since(began).Round(time.Millisecond))
		kept.expectServed(t)
	}
	if got := p.envoyPID(); got != pid {
		t.Errorf("envoy pid %d after the rotations, was %d: envoy restarted", got, pid)
	}
	if got := kept.conn.ConnectionState().PeerCertificates[0].SerialNumber; got.Cmp(serial1) != 0 {
		t.Errorf("the kept connection presents serial %x, want the first certificate's %x", got, serial1)
	}
	current := servedSerial(t, target)

	// A broken replacement: the certificate file no longer holds PEM.
	writeFile(t, filepath.Join(certDir, "site.crt"), "not a certificate\n")
	certPath := filepath.Join(confDir, "..", "tls", "site.crt")
	eventually(t, rotationBound, "the broken certificate is reported with its file", func() error {
		out, err := exec.Command(porticoBin, "status", "--admin-address", addr).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		for _, s := range []string{p.stderr.String(), string(out)} {
			if !strings.Contains(s, certPath) || !strings.Contains(s, "no PEM CERTIFICATE block") {
				return fmt.Errorf("%s not named as broken in logs or status:\n%s", certPath, out)
			}
		}
		return nil
	})
	if got := servedSerial(t, target); got.Cmp(current) != 0 {
		t.Errorf("after a broken replacement the gateway serves serial %x, want the last good %x", got, current)
	}
	kept.expectServed(t)

	outputs := map[string]string{"portico stdout": p.stdout.String(), "portico log": p.stderr.String()}
	for _, args := range [][]string{
		{"status", "--admin-address", addr},
		{"status", "-o", "json", "--admin-address", addr},
		{"config-dump", "--admin-address", addr},
		{"validate", "-o", "json", cfg},
	} {
		out, _ := exec.Command(porticoBin, args...).CombinedOutput()
		outputs["portico "+strings.Join(args, " ")] = string(out)
	}
	if dump := outputs["portico config-dump --admin-address "+addr]; !strings.Contains(dump, `"secure/cert-0"`) {
		t.Errorf("config dump lacks the certificate's secret, so it proves nothing:\n%.2000s", dump)
	}
	expectNoKeys(t, keys, outputs)
}

// expectNoKeys fails if any output holds a line of a PEM private key or a piece of its base64
// encoding, the form a JSON rendering of a Secret's inline bytes would take.
func expectNoKeys(t *testing.T, keys [][]byte, outputs map[string]string) {
	t.Helper()
	for i, key := range keys {
		var needles []string
		for _, line := range strings.Split(string(key), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				needles = append(needles, line)
			}
		}
		// Three aligned windows of the base64 form, so any rendering offset still matches one.
		enc := base64.StdEncoding.EncodeToString(key)
		for off := 40; off < 43; off++ {
			needles = append(needles, enc[off:off+40])
		}
		for name, out := range outputs {
			for _, n := range needles {
				if strings.Contains(out, n) {
					t.Errorf("%s contains private key %d (%q)", name, i, n)
				}
			}
		}
	}
}

// servedSerial opens one TLS connection to addr and returns the serial of the certificate the
// server presents.
func servedSerial(t *testing.T, addr string) *big.Int {
	t.Helper()
	serial, err := handshakeSerial(addr)
	if err != nil {
		t.Fatal(err)
	}
	return serial
}

func handshakeSerial(addr string) (*big.Int, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: "site", InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// waitForSerial polls new TLS handshakes with addr until the server presents serial.
func waitForSerial(t *testing.T, addr string, serial *big.Int, bound time.Duration) {
	t.Helper()
	eventually(t, bound, fmt.Sprintf("%s serves the certificate with serial %x", addr, serial), func() error {
		got, err := handshakeSerial(addr)
		if err != nil {
			return err
		}
		if got.Cmp(serial) != 0 {
			return fmt.Errorf("serial %x", got)
		}
		return nil
	})
}

// keptConn is one HTTP/1.1 keep-alive connection over TLS, used for request after request.
type keptConn struct {
	conn *tls.Conn
	r    *bufio.Reader
}

func dialKeepAlive(t *testing.T, addr string) *keptConn {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: "site", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &keptConn{conn: conn, r: bufio.NewReader(conn)}
}

// expectServed sends one request on the connection and expects the route's answer, with the
// connection kept open.
func (k *keptConn) expectServed(t *testing.T) {
	t.Helper()
	if err := k.conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(k.conn, "GET / HTTP/1.1\r\nHost: site\r\n\r\n"); err != nil {
		t.Fatalf("write on the kept connection: %v", err)
	}
	resp, err := http.ReadResponse(k.r, nil)
	if err != nil {
		t.Fatalf("read on the kept connection: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || string(body) != "secure\n" {
		t.Fatalf("kept connection answered %d %q (%v)", resp.StatusCode, body, err)
	}
	if resp.Close {
		t.Fatalf("kept connection told to close (connection: close): the listener is draining")
	}
}
