package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/portico-gw/portico/internal/envoytest"
)

// The keys the fake Lambda endpoint accepts. They are test values, never real ones.
const (
	lambdaAccessKeyID = "AKIDPORTICOTEST"
	lambdaSecretKey   = "porticoTestSecretAccessKey0123456789abcd"
	lambdaRegion      = "eu-west-1"
	lambdaAccount     = "123456789012"
)

// invocation is what the fake Lambda endpoint saw of one request it accepted.
type invocation struct {
	function       string // the ARN in the path
	invocationType string // X-Amz-Invocation-Type
	payload        []byte
}

// fakeLambda is a Lambda endpoint on loopback: it checks each request's AWS Signature
// Version 4 against the test keys and the invoke path, answers 403 as AWS does when the
// signature does not match, and otherwise runs the function named in the path.
type fakeLambda struct {
	mu          sync.Mutex
	invocations []invocation
	rejected    []string // why each refused request was refused
}

func (f *fakeLambda) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	const prefix, suffix = "/2015-03-31/functions/", "/invocations"
	path := r.URL.Path
	if r.Method != http.MethodPost || !strings.HasPrefix(path, prefix) || !strings.HasSuffix(path, suffix) {
		f.reject(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("%s %s is not an invocation", r.Method, path))
		return
	}
	if why := verifySigV4(r, body, lambdaAccessKeyID, lambdaSecretKey, lambdaRegion, "lambda"); why != "" {
		f.reject(w, http.StatusForbidden, "InvalidSignatureException", why)
		return
	}
	inv := invocation{
		function:       strings.TrimSuffix(strings.TrimPrefix(path, prefix), suffix),
		invocationType: r.Header.Get("X-Amz-Invocation-Type"),
		payload:        body,
	}
	f.mu.Lock()
	f.invocations = append(f.invocations, inv)
	f.mu.Unlock()
	switch {
	case inv.invocationType == "Event":
		w.WriteHeader(http.StatusAccepted) // queued: AWS answers 202 with no body
	case inv.invocationType != "RequestResponse":
		f.reject(w, http.StatusBadRequest, "InvalidParameterValueException", fmt.Sprintf("invocation type %q", inv.invocationType))
	case strings.HasSuffix(inv.function, ":function:raw"):
		// Passthrough: the function gets the body as it is and its result is the response.
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `"raw:%s"`, body)
	default:
		// The JSON transform: the function gets the HTTP request as a document and returns one.
		var req struct {
			RawPath  string            `json:"raw_path"`
			Method   string            `json:"method"`
			Headers  map[string]string `json:"headers"`
			Body     string            `json:"body"`
			IsBase64 bool              `json:"is_base64_encoded"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			f.reject(w, http.StatusBadRequest, "InvalidRequestContentException", "payload is not the JSON document: "+err.Error())
			return
		}
		reqBody := req.Body
		if req.IsBase64 {
			b, err := base64.StdEncoding.DecodeString(req.Body)
			if err != nil {
				f.reject(w, http.StatusBadRequest, "InvalidRequestContentException", "body is not base64")
				return
			}
			reqBody = string(b)
		}
		json.NewEncoder(w).Encode(map[string]any{
			"statusCode": 201,
			"headers":    map[string]string{"x-function": "orders", "content-type": "text/plain"},
			"body":       fmt.Sprintf("%s %s %s client=%s", req.Method, req.RawPath, reqBody, req.Headers["x-client"]),
		})
	}
}

func (f *fakeLambda) reject(w http.ResponseWriter, status int, errType, why string) {
	f.mu.Lock()
	f.rejected = append(f.rejected, why)
	f.mu.Unlock()
	w.Header().Set("X-Amzn-ErrorType", errType)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"message": why})
}

func (f *fakeLambda) seen() ([]invocation, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.invocations), slices.Clone(f.rejected)
}

// verifySigV4 checks r's Authorization header the way AWS does: it rebuilds the canonical
// request from what arrived, signs it with the secret key, and compares. It returns why the
// request fails, or "".
func verifySigV4(r *http.Request, body []byte, accessKeyID, secretKey, region, service string) string {
	auth := r.Header.Get("Authorization")
	const algorithm = "AWS4-HMAC-SHA256"
	fields, ok := strings.CutPrefix(auth, algorithm+" ")
	if !ok {
		return fmt.Sprintf("authorization %q is not %s", auth, algorithm)
	}
	parts := map[string]string{}
	for _, f := range strings.Split(fields, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		parts[k] = v
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if len(amzDate) != len("20060102T150405Z") {
		return fmt.Sprintf("x-amz-date %q", amzDate)
	}
	scope := amzDate[:8] + "/" + region + "/" + service + "/aws4_request"
	if parts["Credential"] != accessKeyID+"/"+scope {
		return fmt.Sprintf("credential %q, want %s/%s", parts["Credential"], accessKeyID, scope)
	}
	payloadHash := sha256Hex(body)
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payloadHash {
		return "x-amz-content-sha256 does not match the body"
	}
	signed := strings.Split(parts["SignedHeaders"], ";")
	if !slices.Contains(signed, "host") || !slices.Contains(signed, "x-amz-date") {
		return fmt.Sprintf("signed headers %q leave out host or x-amz-date", parts["SignedHeaders"])
	}
	var canonicalHeaders strings.Builder
	for _, name := range signed {
		value := strings.Join(r.Header.Values(name), ",")
		if name == "host" {
			value = r.Host
		}
		canonicalHeaders.WriteString(name + ":" + strings.Join(strings.Fields(value), " ") + "\n")
	}
	canonical := strings.Join([]string{
		r.Method,
		canonicalURI(r.URL.EscapedPath()),
		canonicalQuery(r.URL.Query()),
		canonicalHeaders.String(),
		parts["SignedHeaders"],
		payloadHash,
	}, "\n")
	stringToSign := strings.Join([]string{algorithm, amzDate, scope, sha256Hex([]byte(canonical))}, "\n")
	key := []byte("AWS4" + secretKey)
	for _, s := range []string{amzDate[:8], region, service, "aws4_request"} {
		key = hmacSHA256(key, s)
	}
	want := hex.EncodeToString(hmacSHA256(key, stringToSign))
	if !hmac.Equal([]byte(want), []byte(parts["Signature"])) {
		return "the request signature does not match the one calculated with the secret key"
	}
	return ""
}

// canonicalURI URI-encodes each segment of the (decoded) path as SigV4 wants: unreserved
// characters as they are, everything else as %XX.
func canonicalURI(escaped string) string {
	segments := strings.Split(escaped, "/")
	for i, s := range segments {
		dec, err := url.PathUnescape(s)
		if err != nil {
			dec = s
		}
		segments[i] = sigV4Escape(dec)
	}
	return strings.Join(segments, "/")
}

func canonicalQuery(q url.Values) string {
	var pairs []string
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, sigV4Escape(k)+"="+sigV4Escape(v))
		}
	}
	slices.Sort(pairs)
	return strings.Join(pairs, "&")
}

func sigV4Escape(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// TestLambda invokes functions on a fake Lambda endpoint through real Envoy: synchronous with
// the JSON transform and with payload passthrough, asynchronous, with keys from a Secret and
// from the environment; the endpoint verifies every signature, so a wrong key is refused.
// The keys appear in no log, status or dump.
func TestLambda(t *testing.T) {
	fake := &fakeLambda{}
	endpoint := namedBackend(t, "lambda", fake.handle)
	dir := t.TempDir()
	port := envoytest.FreePort(t)
	wrongSecret := "wrongSecretAccessKey" + strings.Repeat("x", 20)
	writeFile(t, filepath.Join(dir, "aws.ini"), fmt.Sprintf("aws_access_key_id = %s\naws_secret_access_key = %s\n", lambdaAccessKeyID, lambdaSecretKey))
	writeFile(t, filepath.Join(dir, "wrong.ini"), fmt.Sprintf("[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n", lambdaAccessKeyID, wrongSecret))
	upstream := func(name, credentials string) string {
		return fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: %s}
spec:
  aws: {region: %s, accountId: "%s", credentials: %s, endpoint: "http://127.0.0.1:%d"}
`, name, lambdaRegion, lambdaAccount, credentials, endpoint.addr.Port)
	}
	cfg := gatewayYAML(port) + `---
apiVersion: portico.dev/v1
kind: Secret
metadata: {name: invoker}
spec: {type: awsCredentials, file: aws.ini}
---
apiVersion: portico.dev/v1
kind: Secret
metadata: {name: stale}
spec: {type: awsCredentials, file: wrong.ini}
` + upstream("functions", "{secret: invoker}") + upstream("wrong-keys", "{secret: stale}") +
		upstream("from-env", "{fromEnvironment: true}") + `---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: api}
spec:
  routes:
  - match: {prefix: /orders}
    lambda: {upstream: functions, function: orders}
  - match: {prefix: /raw}
    lambda: {upstream: functions, function: "arn:aws:lambda:eu-west-1:123456789012:function:raw", payloadPassthrough: true}
  - match: {prefix: /audit}
    lambda: {upstream: functions, function: "audit:live", invocation: async}
  - match: {prefix: /denied}
    lambda: {upstream: wrong-keys, function: orders}
  - match: {prefix: /env}
    lambda: {upstream: from-env, function: orders}
`
	cfgPath := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfgPath, cfg)
	admin, adminFlag := adminAddr(t)
	env := []string{"AWS_ACCESS_KEY_ID=" + lambdaAccessKeyID, "AWS_SECRET_ACCESS_KEY=" + lambdaSecretKey}
	p := start(t, dir, env, append([]string{"-c", cfgPath, "--envoy-path", envoytest.Binary(t)}, adminFlag...)...)
	p.waitReady()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	arn := func(fn string) string {
		return "arn:aws:lambda:" + lambdaRegion + ":" + lambdaAccount + ":function:" + fn
	}

	post := func(t *testing.T, path, body string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("x-client", "e2e")
		var resp *http.Response
		var respBody []byte
		// The listener is ready with the ready line; poll only to ride out a slow first push.
		eventually(t, 10*time.Second, "POST "+path+" answered", func() error {
			resp, err = client.Do(req.Clone(req.Context()))
			if err != nil {
				req.Body = io.NopCloser(strings.NewReader(body))
				return err
			}
			defer resp.Body.Close()
			respBody, err = io.ReadAll(resp.Body)
			return err
		})
		return resp, string(respBody)
	}
	lastInvocation := func(t *testing.T, n int) invocation {
		t.Helper()
		invs, rejected := fake.seen()
		if len(invs) != n {
			t.Fatalf("fake Lambda saw %d invocations, want %d (refused: %q)", len(invs), n, rejected)
		}
		return invs[n-1]
	}

	t.Run("sync JSON transform", func(t *testing.T) {
		resp, body := post(t, "/orders/42?expand=1", "hello")
		if resp.StatusCode != 201 || body != "POST /orders/42?expand=1 hello client=e2e" || resp.Header.Get("x-function") != "orders" {
			t.Fatalf("got %d %q x-function=%q; want the function's 201 and body", resp.StatusCode, body, resp.Header.Get("x-function"))
		}
		inv := lastInvocation(t, 1)
		if inv.function != arn("orders") || inv.invocationType != "RequestResponse" {
			t.Errorf("invoked %s as %s, want %s as RequestResponse", inv.function, inv.invocationType, arn("orders"))
		}
	})
	t.Run("sync passthrough", func(t *testing.T) {
		resp, body := post(t, "/raw", `{"n":1}`)
		if resp.StatusCode != 200 || body != `"raw:{"n":1}"` {
			t.Fatalf("got %d %q, want 200 with the function's result", resp.StatusCode, body)
		}
		inv := lastInvocation(t, 2)
		if inv.function != arn("raw") || string(inv.payload) != `{"n":1}` {
			t.Errorf("invoked %s with %q, want %s with the body unchanged", inv.function, inv.payload, arn("raw"))
		}
	})
	t.Run("async", func(t *testing.T) {
		resp, _ := post(t, "/audit", "event")
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("got %d, want 202", resp.StatusCode)
		}
		inv := lastInvocation(t, 3)
		if inv.function != arn("audit:live") || inv.invocationType != "Event" {
			t.Errorf("invoked %s as %s, want %s as Event", inv.function, inv.invocationType, arn("audit:live"))
		}
	})
	t.Run("wrong secret key", func(t *testing.T) {
		resp, body := post(t, "/denied", "x")
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("got %d %q, want the endpoint's 403", resp.StatusCode, body)
		}
		_, rejected := fake.seen()
		if len(rejected) != 1 || !strings.Contains(rejected[0], "signature does not match") {
			t.Errorf("fake refused %q, want one signature mismatch", rejected)
		}
		lastInvocation(t, 3) // nothing invoked
	})
	t.Run("keys from the environment", func(t *testing.T) {
		resp, body := post(t, "/env", "from env")
		if resp.StatusCode != 201 || !strings.HasPrefix(body, "POST /env from env") {
			t.Fatalf("got %d %q, want the function's 201", resp.StatusCode, body)
		}
		lastInvocation(t, 4)
	})
	t.Run("rotated keys", func(t *testing.T) {
		// Fixing the Secret's file is applied without a restart: the route signs with the new key.
		writeFile(t, filepath.Join(dir, "wrong.ini"), fmt.Sprintf("aws_access_key_id = %s\naws_secret_access_key = %s\n", lambdaAccessKeyID, lambdaSecretKey))
		eventually(t, 10*time.Second, "the rotated key signs /denied", func() error {
			resp, body := post(t, "/denied", "again")
			if resp.StatusCode != 201 {
				return fmt.Errorf("got %d %q", resp.StatusCode, body)
			}
			return nil
		})
	})
	t.Run("keys in no status or dump", func(t *testing.T) {
		// Envoy's own admin API, which any local process can reach, included.
		envoyAdmin, err := os.ReadFile(filepath.Join(p.stateDir, "run", "admin-address.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, url := range []string{"http://" + admin + "/status", "http://" + admin + "/config_dump", "http://" + strings.TrimSpace(string(envoyAdmin)) + "/config_dump"} {
			code, body, err := get("", url)
			if err != nil || code != 200 {
				t.Fatalf("GET %s = %d, %v", url, code, err)
			}
			for _, secret := range []string{lambdaSecretKey, wrongSecret, lambdaAccessKeyID} {
				if strings.Contains(body, secret) {
					t.Errorf("%s contains a key", url)
				}
			}
			if strings.HasSuffix(url, "/config_dump") && !strings.Contains(body, "credentials_profile") {
				t.Errorf("%s has no lambda route configuration at all; the check above proves nothing", url)
			}
		}
		info, err := os.Stat(filepath.Join(p.stateDir, "run", "aws-credentials"))
		if err != nil || info.Mode().Perm() != 0o600 {
			t.Errorf("Envoy's credentials file: %v, %v; want mode 0600", info, err)
		}
	})
	p.stop()
	logs := p.stdout.String() + p.stderr.String()
	for _, secret := range []string{lambdaSecretKey, wrongSecret} {
		if bytes.Contains([]byte(logs), []byte(secret)) {
			t.Errorf("portico's output contains a secret access key")
		}
	}
}

// TestLambdaHTTPS invokes a function on a fake endpoint over TLS, by name: the endpoint's
// certificate must chain to the system CA bundle (SSL_CERT_FILE here) and name the endpoint's
// host, and the signature covers host:port. An endpoint whose certificate names another host
// is never sent the request.
func TestLambdaHTTPS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, dir, "ca")
	serve := func(cert tls.Certificate, f *fakeLambda) int {
		l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(f.handle), ErrorLog: log.New(io.Discard, "", 0)}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		return l.Addr().(*net.TCPAddr).Port
	}
	good, impostor := &fakeLambda{}, &fakeLambda{}
	goodPort := serve(ca.issue(t, dir, "localhost", x509.ExtKeyUsageServerAuth), good)
	impostorPort := serve(ca.issue(t, dir, "impostor.example", x509.ExtKeyUsageServerAuth), impostor)
	port := envoytest.FreePort(t)
	upstream := func(name string, endpointPort int) string {
		return fmt.Sprintf(`---
apiVersion: portico.dev/v1
kind: Upstream
metadata: {name: %s}
spec:
  aws: {region: %s, accountId: "%s", credentials: {fromEnvironment: true}, endpoint: "https://localhost:%d"}
`, name, lambdaRegion, lambdaAccount, endpointPort)
	}
	cfgPath := filepath.Join(dir, "portico.yaml")
	writeFile(t, cfgPath, gatewayYAML(port)+upstream("good", goodPort)+upstream("impostor", impostorPort)+`---
apiVersion: portico.dev/v1
kind: VirtualService
metadata: {name: api}
spec:
  routes:
  - match: {prefix: /good}
    lambda: {upstream: good, function: orders}
  - match: {prefix: /impostor}
    lambda: {upstream: impostor, function: orders}
`)
	env := []string{"SSL_CERT_FILE=" + filepath.Join(dir, "ca.crt"),
		"AWS_ACCESS_KEY_ID=" + lambdaAccessKeyID, "AWS_SECRET_ACCESS_KEY=" + lambdaSecretKey}
	p := start(t, dir, env, "-c", cfgPath, "--envoy-path", envoytest.Binary(t))
	p.waitReady()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	eventually(t, 10*time.Second, "the function's result over TLS", func() error {
		code, body, err := get("", base+"/good")
		if err != nil || code != 201 || body != "GET /good  client=" {
			return fmt.Errorf("got %d %q %v", code, body, err)
		}
		return nil
	})
	invs, rejected := good.seen()
	if len(invs) != 1 || invs[0].function != "arn:aws:lambda:"+lambdaRegion+":"+lambdaAccount+":function:orders" || len(rejected) != 0 {
		t.Errorf("endpoint saw %d invocations (%v), refused %q; want one signed invocation of orders", len(invs), invs, rejected)
	}
	code, body, err := get("", base+"/impostor")
	if err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("impostor endpoint: got %d %q %v, want 503", code, body, err)
	}
	if invs, rejected := impostor.seen(); len(invs)+len(rejected) != 0 {
		t.Errorf("an endpoint with another host's certificate was sent %d requests", len(invs)+len(rejected))
	}
}
