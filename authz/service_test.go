package authz

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/portico-gw/portico/internal/credentials"
	"github.com/portico-gw/portico/internal/syncbuf"
	"github.com/portico-gw/portico/internal/unixsock"
)

const (
	keyA = "key-a-0123456789abcdef"
	keyB = "key-b-0123456789abcdef"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func bcryptLine(t *testing.T, user, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return user + ":" + string(h) + "\n"
}

// fixture is a service with an apiKeys Secret "keys" (a, b) and an htpasswd Secret "users"
// (alice/wonderland).
type fixture struct {
	svc      *Service
	reg      *prometheus.Registry
	log      *syncbuf.Buffer
	keysFile string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{reg: prometheus.NewRegistry(), log: &syncbuf.Buffer{}, keysFile: filepath.Join(dir, "keys.txt")}
	writeFile(t, f.keysFile, "a:"+keyA+"\nb:"+keyB+"\n")
	users := filepath.Join(dir, "users")
	writeFile(t, users, bcryptLine(t, "alice", "wonderland"))
	svc, err := New(Config{Logger: slog.New(slog.NewTextHandler(f.log, nil)), Registerer: f.reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.secrets.close)
	svc.SetSecrets([]Secret{
		{Name: "keys", Type: credentials.TypeAPIKeys, File: f.keysFile},
		{Name: "users", Type: credentials.TypeHtpasswd, File: users},
	})
	f.svc = svc
	return f
}

func checkRequest(p Policy, path string, headers map[string]string) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request:           &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Path: path, Headers: headers}},
		ContextExtensions: p.ContextExtensions(),
	}}
}

func basic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

var (
	headerPolicy = Policy{Name: "shop", APIKeySecrets: []string{"keys"}, APIKeyHeader: "x-api-key", IdentityHeader: "x-portico-identity"}
	queryPolicy  = Policy{Name: "feed", APIKeySecrets: []string{"keys"}, APIKeyQuery: "key", IdentityHeader: "x-portico-identity"}
	basicPolicy  = Policy{Name: "staff", BasicAuthSecret: "users", Realm: "staff area", IdentityHeader: "x-portico-identity"}
	eitherPolicy = Policy{Name: "both", APIKeySecrets: []string{"keys"}, APIKeyHeader: "x-api-key", BasicAuthSecret: "users", Realm: "r", IdentityHeader: "x-portico-identity"}
)

func TestCheck(t *testing.T) {
	f := newFixture(t)
	cases := []struct {
		name     string
		policy   Policy
		path     string
		headers  map[string]string
		identity string // "" means denied
		removed  string // header or query parameter removed when allowed
	}{
		{"header key", headerPolicy, "/", map[string]string{"x-api-key": keyB, "x-portico-identity": "admin"}, "b", "x-api-key"},
		{"wrong key", headerPolicy, "/", map[string]string{"x-api-key": "key-c-0123456789abcdef"}, "", ""},
		{"no key", headerPolicy, "/", map[string]string{"x-portico-identity": "a"}, "", ""},
		{"key in the wrong header", headerPolicy, "/", map[string]string{"x-other": keyA}, "", ""},
		{"query key", queryPolicy, "/feed?x=1&key=" + keyA, nil, "a", "key"},
		{"query key in header", queryPolicy, "/feed", map[string]string{"x-api-key": keyA}, "", ""},
		{"basic", basicPolicy, "/", map[string]string{"authorization": basic("alice", "wonderland")}, "alice", "authorization"},
		{"basic wrong password", basicPolicy, "/", map[string]string{"authorization": basic("alice", "Wonderland")}, "", ""},
		{"basic unknown user", basicPolicy, "/", map[string]string{"authorization": basic("bob", "wonderland")}, "", ""},
		{"basic garbage", basicPolicy, "/", map[string]string{"authorization": "Basic !!!"}, "", ""},
		{"bearer", basicPolicy, "/", map[string]string{"authorization": "Bearer abc"}, "", ""},
		{"either: key", eitherPolicy, "/", map[string]string{"x-api-key": keyA}, "a", "x-api-key"},
		{"either: basic", eitherPolicy, "/", map[string]string{"authorization": basic("alice", "wonderland")}, "alice", "authorization"},
		{"either: neither", eitherPolicy, "/", nil, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := f.svc.Check(context.Background(), checkRequest(c.policy, c.path, c.headers))
			if err != nil {
				t.Fatal(err)
			}
			if c.identity == "" {
				d := resp.GetDeniedResponse()
				if d == nil || d.GetStatus().GetCode() != 401 {
					t.Fatalf("want 401, got %v", resp)
				}
				challenge := ""
				for _, h := range d.GetHeaders() {
					if h.GetHeader().GetKey() == "www-authenticate" {
						challenge = h.GetHeader().GetValue()
					}
				}
				if c.policy.BasicAuthSecret != "" && challenge != `Basic realm="`+c.policy.Realm+`", charset="UTF-8"` {
					t.Errorf("www-authenticate %q", challenge)
				}
				if c.policy.BasicAuthSecret == "" && challenge != "" {
					t.Errorf("www-authenticate %q without basic auth", challenge)
				}
				if !strings.HasPrefix(d.GetBody(), "unauthorized: this resource needs ") {
					t.Errorf("body %q", d.GetBody())
				}
				return
			}
			ok := resp.GetOkResponse()
			if ok == nil {
				t.Fatalf("want allowed, got %v", resp)
			}
			if len(ok.GetHeaders()) != 1 || ok.GetHeaders()[0].GetHeader().GetKey() != "x-portico-identity" ||
				ok.GetHeaders()[0].GetHeader().GetValue() != c.identity {
				t.Errorf("headers %v, want x-portico-identity: %s", ok.GetHeaders(), c.identity)
			}
			if got := append(ok.GetHeadersToRemove(), ok.GetQueryParametersToRemove()...); len(got) != 1 || got[0] != c.removed {
				t.Errorf("removed %v, want [%s]", got, c.removed)
			}
			if id := resp.GetDynamicMetadata().GetFields()[MetadataIdentity].GetStringValue(); id != c.identity {
				t.Errorf("metadata identity %q", id)
			}
		})
	}
	if got := counter(t, f.svc.decisions.WithLabelValues("shop", "allowed")); got != 1 {
		t.Errorf("shop allowed = %v, want 1", got)
	}
	if got := counter(t, f.svc.decisions.WithLabelValues("shop", "denied")); got != 3 {
		t.Errorf("shop denied = %v, want 3", got)
	}
}

func TestCheckWithoutPolicyDenies(t *testing.T) {
	f := newFixture(t)
	resp, err := f.svc.Check(context.Background(), &authv3.CheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetDeniedResponse().GetStatus().GetCode() != 500 {
		t.Errorf("got %v, want a 500 denial", resp)
	}
}

// TestReloadOverGRPC serves on a Unix socket, changes the key file, breaks it, and fixes it:
// the change applies without SetSecrets, the broken file keeps the last good keys, and the log
// names the line but no key.
func TestReloadOverGRPC(t *testing.T) {
	f := newFixture(t)
	sockDir, err := os.MkdirTemp("", "p")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "authz.sock")
	l, err := unixsock.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.svc.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := authv3.NewAuthorizationClient(conn)
	identityOf := func(key string) string {
		resp, err := client.Check(context.Background(), checkRequest(headerPolicy, "/", map[string]string{"x-api-key": key}))
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetDynamicMetadata().GetFields()[MetadataIdentity].GetStringValue()
	}
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 5s\nlog:\n%s", what, f.log)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if got := identityOf(keyA); got != "a" {
		t.Fatalf("key a: identity %q", got)
	}
	const keyC = "key-c-0123456789abcdef"
	writeFile(t, f.keysFile, "c:"+keyC+"\n")
	eventually("the new key is accepted", func() bool { return identityOf(keyC) == "c" })
	if got := identityOf(keyA); got != "" {
		t.Errorf("removed key a still accepted as %q", got)
	}
	const leaked = "LEAKED-0123456789abcdef"
	writeFile(t, f.keysFile, "c:"+keyC+"\nnot a line "+leaked+"\n")
	eventually("the broken file is logged", func() bool { return strings.Contains(f.log.String(), "does not parse") })
	if got := identityOf(keyC); got != "c" {
		t.Errorf("after a broken save: identity %q, want the last good key c", got)
	}
	if !strings.Contains(f.log.String(), "keys.txt:2: expected identity:key") {
		t.Errorf("log does not name the line:\n%s", f.log)
	}
	if bytes.Contains([]byte(f.log.String()), []byte("LEAKED")) || strings.Contains(f.log.String(), keyC) {
		t.Errorf("log quotes a key:\n%s", f.log)
	}
	writeFile(t, f.keysFile, "d:"+keyA+"\n")
	eventually("the fixed file is taken", func() bool { return identityOf(keyA) == "d" })
}

// TestSetSecretsKeepsThePreviousSetForOneGeneration: routes Envoy still has from the previous
// configuration keep their Secrets until the configuration after the next.
func TestSetSecretsKeepsThePreviousSetForOneGeneration(t *testing.T) {
	f := newFixture(t)
	f.svc.SetSecrets([]Secret{{Name: "renamed", Type: credentials.TypeAPIKeys, File: f.keysFile}})
	if f.svc.secrets.file("keys") == nil || f.svc.secrets.file("renamed") == nil {
		t.Fatal("after one change both the old and the new Secret must be usable")
	}
	f.svc.SetSecrets([]Secret{{Name: "renamed", Type: credentials.TypeAPIKeys, File: f.keysFile}})
	if f.svc.secrets.file("keys") != nil {
		t.Error("the Secret of two configurations ago is still usable")
	}
}

func counter(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestSetSecretsRereadsUnwatchedFiles: when a file's directory cannot be watched (the inotify
// limit reached, say), the log promises that changes apply on the next configuration reload;
// SetSecrets, which every reload calls, must then read the file again even though the Secret
// itself did not change.
func TestSetSecretsRereadsUnwatchedFiles(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys.txt")
	writeFile(t, keys, "a:"+keyA+"\n")
	log := &syncbuf.Buffer{}
	svc, err := New(Config{Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	svc.secrets.close() // every Add now fails
	secrets := []Secret{{Name: "keys", Type: credentials.TypeAPIKeys, File: keys}}
	svc.SetSecrets(secrets)
	if !strings.Contains(log.String(), "changes apply on the next configuration reload") {
		t.Fatalf("no warning about the unwatched directory:\n%s", log)
	}
	writeFile(t, keys, "b:"+keyB+"\n")
	svc.SetSecrets(secrets)
	if id, ok := svc.secrets.file("keys").IdentifyKey(keyB); !ok || id != "b" {
		t.Errorf("after the reload the changed file's key is not accepted (identity %q)", id)
	}
}
