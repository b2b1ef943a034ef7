package main

import (
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/portico-gw/portico/config"
)

// TestAWSCredentialsFile: every awsCredentials Secret of a configuration becomes a profile of
// an owner-only file under the name the routes use; a replaced key's profile stays for one
// more configuration (Envoy may still run routes naming it) and then goes.
func TestAWSCredentialsFile(t *testing.T) {
	f := newAWSCredentialsFile(slog.New(slog.DiscardHandler), t.TempDir())
	secret := func(name, id, key string) *config.Secret {
		s := &config.Secret{Metadata: config.Metadata{Name: name}}
		s.Spec.Type = config.SecretTypeAWSCredentials
		s.Spec.AWS = &config.AWSKeys{AccessKeyID: id, SecretAccessKey: config.RedactedString(key)}
		return s
	}
	first := secret("invoker", "AKID1", "key-one")
	rotated := secret("invoker", "AKID1", "key-two")
	other := &config.Secret{Metadata: config.Metadata{Name: "partners"}}
	other.Spec.Type = config.SecretTypeAPIKeys

	read := func() string {
		t.Helper()
		info, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", info.Mode().Perm())
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	profile := func(s *config.Secret) string { return "[" + config.AWSProfile(s.Metadata.Name, s.Spec.AWS) + "]" }

	f.applying(&config.Config{Secrets: []*config.Secret{first, other}})
	got := read()
	if !strings.Contains(got, profile(first)+"\naws_access_key_id = AKID1\naws_secret_access_key = key-one\n") || strings.Count(got, "[") != 1 {
		t.Fatalf("first file:\n%s", got)
	}
	f.applying(&config.Config{Secrets: []*config.Secret{rotated}})
	got = read()
	if profile(first) == profile(rotated) || !strings.Contains(got, profile(first)) || !strings.Contains(got, profile(rotated)+"\naws_access_key_id = AKID1\naws_secret_access_key = key-two\n") {
		t.Fatalf("after rotation, want both profiles under different names:\n%s", got)
	}
	f.applying(&config.Config{Secrets: []*config.Secret{rotated}})
	if got = read(); strings.Contains(got, profile(first)) || strings.Contains(got, "key-one") {
		t.Fatalf("the replaced key outlived a second configuration:\n%s", got)
	}
	if env := f.env(); len(env) != 1 || env[0] != "AWS_SHARED_CREDENTIALS_FILE="+f.path {
		t.Errorf("env = %q", env)
	}
	f.remove()
	if _, err := os.Stat(f.path); !os.IsNotExist(err) {
		t.Errorf("file still there after remove: %v", err)
	}
}
