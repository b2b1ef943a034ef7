package config

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/portico-gw/portico/internal/credentials"
)

// KindSecret is the document that names a file of credentials, or the PEM files of a TLS
// certificate and its CAs.
const KindSecret = "Secret"

// The types of Secret.
const (
	SecretTypeAPIKeys  = credentials.TypeAPIKeys
	SecretTypeHtpasswd = credentials.TypeHtpasswd
)

// Secret names a file of credentials that security policies refer to by the Secret's name. The
// configuration holds only the file's path: the credentials stay in the file, Portico reads them
// itself, and they never appear in logs, status or dumps. Portico watches the file and applies a
// change to it without a configuration reload; a file that stops parsing keeps the credentials
// it last read.
type Secret struct {
	Metadata Metadata   `yaml:"metadata"`
	Spec     SecretSpec `yaml:"spec"`
	Source   Source     `yaml:"-"`
}

// SecretSpec is the body of a Secret.
type SecretSpec struct {
	// Type is apiKeys (lines of identity:key; an identity may have several keys, keys are at
	// least 16 characters), htpasswd (lines of user:hash with bcrypt hashes only, as
	// `htpasswd -B` writes them), tls (PEM files named by certFile, keyFile and caFile), or
	// awsCredentials (aws_access_key_id = ..., aws_secret_access_key = ... and optionally
	// aws_session_token = ... lines, as in an AWS credentials file's default profile), or
	// generic (one secret value, such as an OIDC client secret: the whole file less trailing
	// line breaks).
	// In credential files, blank lines and lines starting with # are skipped.
	Type string `yaml:"type"`
	// File is the credential file of an apiKeys, htpasswd, awsCredentials or generic Secret. A relative path is relative
	// to the directory of the configuration file that names it.
	File string `yaml:"file,omitempty"`
	// CertFile is a tls Secret's PEM certificate chain (the certificate, then any
	// intermediates). Needs keyFile.
	CertFile string `yaml:"certFile,omitempty"`
	// KeyFile is a tls Secret's PEM private key of certFile. Needs certFile.
	KeyFile string `yaml:"keyFile,omitempty"`
	// CAFile is a tls Secret's PEM certificate authorities, which verify the peer: client
	// certificates on a Gateway, the hosts' certificates on an Upstream.
	CAFile string `yaml:"caFile,omitempty"`

	// The tls files' content as read and checked at load time, as for inline certificate files.
	CertPEM []byte        `yaml:"-"`
	KeyPEM  PrivateKeyPEM `yaml:"-"`
	CAPEM   []byte        `yaml:"-"`
	// AWS is an awsCredentials Secret's keys as read and checked at load time.
	AWS *AWSKeys `yaml:"-"`
	// inline marks a tls Secret converted from a Kubernetes Secret: CertPEM and KeyPEM hold
	// its data, checked at conversion, and there are no files.
	inline bool
	// Value is a generic Secret's value as read at load time.
	Value RedactedString `yaml:"-"`
}

// SecretNamed returns the Secret of that name, nil when there is none. A validated Config has
// at most one of each name.
func (c *Config) SecretNamed(name string) *Secret {
	for _, s := range c.Secrets {
		if s.Metadata.Name == name {
			return s
		}
	}
	return nil
}

// secretDefaults resolves a relative file path against the Secret's own file, so that the
// path names the same file whatever portico's working directory is.
func secretDefaults(s *Secret) {
	dir := filepath.Dir(s.Source.Doc.File)
	s.Spec.File = resolvePath(dir, s.Spec.File)
	s.Spec.CertFile = resolvePath(dir, s.Spec.CertFile)
	s.Spec.KeyFile = resolvePath(dir, s.Spec.KeyFile)
	s.Spec.CAFile = resolvePath(dir, s.Spec.CAFile)
}

// secretIndex resolves policy references to Secrets; the first definition wins.
type secretIndex struct {
	byName map[string]*Secret
	names  []string // in definition order, for hints
}

// checkSecrets checks the Secrets' names, types and files, and indexes them. Each file is read
// and parsed now, so that a broken file is reported with its line before anything is served;
// the messages name files and lines and never quote their contents.
func (v *validator) checkSecrets(secrets []*Secret) {
	v.secrets = secretIndex{byName: map[string]*Secret{}}
	for _, sec := range secrets {
		s := subject{KindSecret, sec.Metadata.Name, &sec.Source}
		// checkNames has checked the name and labels; the first definition of a name is indexed.
		if _, dup := v.secrets.byName[sec.Metadata.Name]; sec.Source.valid("metadata.name") && !dup {
			v.secrets.byName[sec.Metadata.Name] = sec
			v.secrets.names = append(v.secrets.names, sec.Metadata.Name)
		}
		typeOK := sec.Source.valid("spec.type") && slices.Contains(secretTypes, sec.Spec.Type)
		if sec.Source.valid("spec.type") && !typeOK {
			v.errorf(s, "spec.type", "unknown secret type %q; use %s%s", excerpt(sec.Spec.Type),
				strings.Join(secretTypes, ", "), didYouMean(sec.Spec.Type, secretTypes))
		}
		switch {
		case !typeOK:
		case sec.Spec.Type == SecretTypeTLS:
			v.checkTLSSecret(s, sec)
		case sec.Spec.Type == SecretTypeAWSCredentials:
			v.checkAWSCredentialsSecret(s, sec)
		case sec.Spec.Type == SecretTypeGeneric:
			v.checkGenericSecret(s, sec)
		case v.checkCredentialFields(s, sec) && sec.Source.valid("spec.file"):
			v.checkSecretFile(s, sec)
		}
	}
}

// checkSecretFile reports a credential file that cannot be read, or each of its bad lines at
// the line itself.
func (v *validator) checkSecretFile(s subject, sec *Secret) {
	_, err := credentials.Read(sec.Spec.File, sec.Spec.Type)
	lines := credentials.LineErrors(err)
	switch {
	case err == nil:
		return
	case errors.Is(err, fs.ErrNotExist):
		v.errorf(s, "spec.file", "%s does not exist (a relative path is relative to the configuration file's directory)", sec.Spec.File)
		return
	case errors.Is(err, fs.ErrPermission):
		v.errorf(s, "spec.file", "%s is not readable by this user; fix its permissions", sec.Spec.File)
		return
	case len(lines) == 0:
		v.errorf(s, "spec.file", "%s", err.Error())
		return
	}
	for _, le := range lines {
		v.diags = append(v.diags, Diagnostic{
			Pos: Position{File: le.File, Line: le.Line}, Severity: SeverityError,
			Kind: KindSecret, Name: sec.Metadata.Name, Field: "spec.file",
			Message: fmt.Sprintf("%s (in the %s file named at %s)", le.Message, sec.Spec.Type, sec.Source.At("spec.file")),
		})
	}
}

// checkSecretRef checks a policy's reference at p to a Secret of type typ.
func (v *validator) checkSecretRef(s subject, p, name, typ string) {
	if !s.src.valid(p) {
		return
	}
	sec := v.secrets.byName[name]
	switch {
	case sec == nil:
		v.errorf(s, p, "%s", notDefined(KindSecret, name, v.secrets.names))
	case sec.Spec.Type != typ && slices.Contains(secretTypes, sec.Spec.Type):
		v.errorf(s, p, "Secret %q is of type %s (%s); this needs a Secret of type %s", name, sec.Spec.Type, sec.Source.At("spec.type"), typ)
	}
}
