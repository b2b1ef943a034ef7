package main

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/portico-gw/portico/config"
)

// awsCredentialsFileName is the AWS credentials file in the run directory that Envoy reads the
// keys of awsCredentials Secrets from (AWS_SHARED_CREDENTIALS_FILE).
const awsCredentialsFileName = "aws-credentials"

// awsCredentialsFile keeps the credentials file Envoy's aws_lambda filter reads in step with
// the configuration: one profile per awsCredentials Secret, named by config.AWSProfile, which
// the routes name. Keys reach Envoy only through this owner-only file, never through its
// configuration, whose dump Envoy's admin API shows to any local process.
type awsCredentialsFile struct {
	path string
	log  *slog.Logger

	mu sync.Mutex
	// prev are the profiles last written: they are written once more, so that routes Envoy
	// still runs until the next push finds their keys.
	prev map[string]*config.AWSKeys
}

func newAWSCredentialsFile(logger *slog.Logger, runDir string) *awsCredentialsFile {
	return &awsCredentialsFile{path: filepath.Join(runDir, awsCredentialsFileName), log: logger}
}

// env points Envoy at the file. It is set whether or not any Secret uses it, since Envoy's
// environment is fixed for its life and a reload may add the first one.
func (f *awsCredentialsFile) env() []string {
	return []string{"AWS_SHARED_CREDENTIALS_FILE=" + f.path}
}

// applying writes the profiles of cfg, a configuration about to be pushed
// (controller.Options.Applying), so that Envoy finds them when the routes arrive.
func (f *awsCredentialsFile) applying(cfg *config.Config) {
	next := map[string]*config.AWSKeys{}
	for _, s := range cfg.Secrets {
		if s.Spec.Type == config.SecretTypeAWSCredentials && s.Spec.AWS != nil {
			next[config.AWSProfile(s.Metadata.Name, s.Spec.AWS)] = s.Spec.AWS
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	all := maps.Clone(next)
	for name, k := range f.prev {
		if _, ok := all[name]; !ok {
			all[name] = k
		}
	}
	if err := writePrivateFile(f.path, awsCredentialsContent(all)); err != nil {
		// The error names the file only; routes signing with a missing profile fail with 403s.
		f.log.Error("write the AWS credentials file for Envoy; Lambda routes cannot sign with new keys", "error", err.Error())
		return
	}
	f.prev = next
}

// remove deletes the file when portico stops: the keys stay on disk only while Envoy may need them.
func (f *awsCredentialsFile) remove() {
	if err := os.Remove(f.path); err != nil && !os.IsNotExist(err) {
		f.log.Warn("remove the AWS credentials file", "error", err.Error())
	}
}

// awsCredentialsContent renders profiles in the AWS credentials file format, sorted by name.
func awsCredentialsContent(profiles map[string]*config.AWSKeys) []byte {
	var b strings.Builder
	b.WriteString("# Written by portico for Envoy; replaced on every configuration change.\n")
	for _, name := range slices.Sorted(maps.Keys(profiles)) {
		k := profiles[name]
		fmt.Fprintf(&b, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n", name, k.AccessKeyID, string(k.SecretAccessKey))
		if k.SessionToken != "" {
			fmt.Fprintf(&b, "aws_session_token = %s\n", string(k.SessionToken))
		}
	}
	return []byte(b.String())
}

// writePrivateFile replaces path with data, readable by the owner only, atomically: Envoy never
// reads half a file, and the keys are never in a file others can read, even for a moment.
func writePrivateFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	// CreateTemp makes the file 0600 before anything is written to it.
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
