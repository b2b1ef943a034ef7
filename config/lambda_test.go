package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestAWSKeysAreRedacted loads an awsCredentials Secret and prints, logs and marshals its keys
// every way a mistake could: the secret key and session token never show, while the loaded
// values are the file's.
func TestAWSKeysAreRedacted(t *testing.T) {
	dir := t.TempDir()
	writeTestFile(t, filepath.Join(dir, "aws.ini"), "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = SECRET-access-key\naws_session_token = SECRET-token\n")
	writeTestFile(t, filepath.Join(dir, "portico.yaml"), "apiVersion: portico.dev/v1\nkind: Secret\nmetadata: {name: k}\nspec: {type: awsCredentials, file: aws.ini}\n")
	cfg, err := Load(filepath.Join(dir, "portico.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	keys := cfg.SecretNamed("k").Spec.AWS
	if keys == nil || keys.AccessKeyID != "AKIDEXAMPLE" || string(keys.SecretAccessKey) != "SECRET-access-key" || string(keys.SessionToken) != "SECRET-token" {
		t.Fatalf("keys not loaded from the file: access key id %q", keys.AccessKeyID)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "keys", keys, "secret", keys.SecretAccessKey)
	jsonOut, _ := json.Marshal(keys)
	yamlOut, _ := yaml.Marshal(keys)
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", keys), "%+v": fmt.Sprintf("%+v", *keys), "%s": fmt.Sprintf("%s", keys.SecretAccessKey),
		"%q": fmt.Sprintf("%q", keys.SessionToken), "slog": logged.String(), "json": string(jsonOut), "yaml": string(yamlOut),
	} {
		if strings.Contains(out, "SECRET") {
			t.Errorf("%s shows a secret: %s", name, out)
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("%s does not say the value is redacted: %s", name, out)
		}
	}
}

func TestLambdaARN(t *testing.T) {
	east := &AWSUpstream{Region: "us-east-1", AccountID: "123456789012"}
	for _, tc := range []struct {
		function string
		up       *AWSUpstream
		want     string // "" when refused
	}{
		{"orders", east, "arn:aws:lambda:us-east-1:123456789012:function:orders"},
		{"orders:live", east, "arn:aws:lambda:us-east-1:123456789012:function:orders:live"},
		{"orders:$LATEST", east, "arn:aws:lambda:us-east-1:123456789012:function:orders:$LATEST"},
		{"orders", &AWSUpstream{Region: "cn-north-1", AccountID: "123456789012"}, "arn:aws-cn:lambda:cn-north-1:123456789012:function:orders"},
		{"arn:aws:lambda:us-east-1:123456789012:function:x_1-2:7", east, "arn:aws:lambda:us-east-1:123456789012:function:x_1-2:7"},
		{"orders", &AWSUpstream{Region: "us-east-1"}, ""},
		{"orders:a:b", east, ""},
		{"arn:aws-cn:lambda:us-east-1:123456789012:function:x", east, ""},
		{"arn:aws:lambda:us-east-1:123456789012:function:", east, ""},
		{"arn:aws:lambda:us-east-1:123456789012:layer:x", east, ""},
		{"arn:aws:lambda:us-west-2:123456789012:function:x", east, ""},
	} {
		t.Run(tc.function, func(t *testing.T) {
			got, msg := lambdaARN(tc.function, tc.up)
			if got != tc.want || (tc.want == "") != (msg != "") {
				t.Errorf("lambdaARN(%q) = %q, %q; want %q", tc.function, got, msg, tc.want)
			}
		})
	}
}
