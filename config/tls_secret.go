package config

import (
	"slices"

	"github.com/portico-gw/portico/internal/credentials"
)

// SecretTypeTLS is a Secret of PEM files for TLS: a certificate and its private key, the
// certificate authorities that verify peers, or both (Kubernetes' tls.crt, tls.key and ca.crt).
// Gateway certificates, client validation and Upstream TLS name such a Secret instead of the
// files, so several resources share one set of paths. Its files are read, checked, watched and
// served over SDS exactly like files named inline.
const SecretTypeTLS = "tls"

// secretTypes lists every type of Secret, for validation and messages.
var secretTypes = append(slices.Clone(credentials.Types), SecretTypeTLS, SecretTypeAWSCredentials, SecretTypeGeneric)

// checkTLSSecret checks a tls Secret's files and keeps their content in its spec. Each file is
// read once, so the bytes checked are the bytes served; messages name files, never content.
func (v *validator) checkTLSSecret(s subject, sec *Secret) {
	if sec.Spec.inline {
		return
	}
	if s.src.has("spec.file") {
		v.errorf(s, "spec.file", "a %s Secret names its files with certFile and keyFile, caFile, or all three; remove file", SecretTypeTLS)
	}
	hasCert, hasKey, hasCA := s.src.has("spec.certFile"), s.src.has("spec.keyFile"), s.src.has("spec.caFile")
	switch {
	case hasCert && hasKey:
		c := TLSCertificate{CertFile: sec.Spec.CertFile, KeyFile: sec.Spec.KeyFile}
		v.checkCertificate(s, "spec", &c)
		sec.Spec.CertPEM, sec.Spec.KeyPEM = c.CertPEM, c.KeyPEM
	case hasCert:
		v.errorf(s, "spec.certFile", "certFile without keyFile; set both for a certificate, or neither for a Secret of CAs only")
	case hasKey:
		v.errorf(s, "spec.keyFile", "keyFile without certFile; set both for a certificate, or neither for a Secret of CAs only")
	case !hasCA:
		v.errorf(s, "spec", "a %s Secret needs certFile and keyFile (a certificate and its key), caFile (CAs that verify peers), or all three", SecretTypeTLS)
	}
	if !hasCA {
		return
	}
	if data, ok := v.readFileField(s, "spec.caFile", sec.Spec.CAFile); ok {
		if msg := caPEMProblem(sec.Spec.CAFile, data); msg != "" {
			v.errorf(s, "spec.caFile", "%s", msg)
		} else {
			sec.Spec.CAPEM = data
		}
	}
}

// checkCredentialFields refuses the tls fields on an apiKeys or htpasswd Secret and requires
// its file; it reports whether the Secret names a file to check.
func (v *validator) checkCredentialFields(s subject, sec *Secret) bool {
	for _, f := range []string{"certFile", "keyFile", "caFile"} {
		if s.src.has("spec." + f) {
			v.errorf(s, "spec."+f, "%s is for Secrets of type %s; an %s Secret names its one file with file", f, SecretTypeTLS, sec.Spec.Type)
		}
	}
	if !s.src.has("spec.file") {
		v.errorf(s, "spec", "missing required field \"file\": the %s file this Secret holds", sec.Spec.Type)
		return false
	}
	return true
}

// tlsPart is what a reference needs of a tls Secret.
type tlsPart int

const (
	tlsPartCertificate tlsPart = iota // certFile and keyFile
	tlsPartCA                         // caFile
)

// tlsSecretRef resolves the reference at field p to a tls Secret that has the part needed,
// reporting at p why it cannot. It returns nil when the reference is unusable, including when the
// Secret's own files failed to load (reported at the Secret).
func (v *validator) tlsSecretRef(s subject, p, name string, need tlsPart) *Secret {
	if !s.src.valid(p) {
		return nil
	}
	sec := v.secrets.byName[name]
	switch {
	case sec == nil:
		v.errorf(s, p, "%s", notDefined(KindSecret, name, v.secrets.names))
		return nil
	case sec.Spec.Type != SecretTypeTLS:
		if slices.Contains(secretTypes, sec.Spec.Type) {
			v.errorf(s, p, "Secret %q is of type %s (%s); this needs a Secret of type %s", name, sec.Spec.Type, sec.Source.At("spec.type"), SecretTypeTLS)
		}
		return nil
	case need == tlsPartCertificate && !sec.Source.has("spec.certFile"):
		v.errorf(s, p, "Secret %q (%s) has no certFile and keyFile; add them there, or name a Secret with a certificate", name, sec.Source.At("metadata.name"))
		return nil
	case need == tlsPartCA && !sec.Source.has("spec.caFile"):
		v.errorf(s, p, "Secret %q (%s) has no caFile; add it there, or name a Secret with CAs", name, sec.Source.At("metadata.name"))
		return nil
	case need == tlsPartCertificate && len(sec.Spec.KeyPEM) == 0, need == tlsPartCA && len(sec.Spec.CAPEM) == 0:
		return nil
	}
	return sec
}

// checkKeyPair checks a certificate given either inline (certFile and keyFile at p) or by the
// tls Secret named at secretField, and keeps its content in c. optional allows neither.
func (v *validator) checkKeyPair(s subject, p, secretField string, secret string, c *TLSCertificate, optional bool) {
	hasSecret, hasCert, hasKey := s.src.has(secretField), s.src.has(p+".certFile"), s.src.has(p+".keyFile")
	switch {
	case hasSecret && (hasCert || hasKey):
		v.errorf(s, secretField, "set either %s or certFile and keyFile, not both", lastField(secretField))
	case hasSecret:
		if sec := v.tlsSecretRef(s, secretField, secret, tlsPartCertificate); sec != nil {
			c.CertPEM, c.KeyPEM = sec.Spec.CertPEM, sec.Spec.KeyPEM
		}
	case hasCert && hasKey:
		v.checkCertificate(s, p, c)
	case hasCert:
		v.errorf(s, p+".certFile", "certFile without keyFile; set both, or name a %s Secret with %s", SecretTypeTLS, lastField(secretField))
	case hasKey:
		v.errorf(s, p+".keyFile", "keyFile without certFile; set both, or name a %s Secret with %s", SecretTypeTLS, lastField(secretField))
	case !optional:
		v.errorf(s, p, "no certificate; set certFile and keyFile, or %s (a Secret of type %s)", lastField(secretField), SecretTypeTLS)
	}
}

// checkCAs checks CAs given either inline (the file at fileField) or by the tls Secret named at
// secretField, and returns their content; nil when neither is set or they do not load.
func (v *validator) checkCAs(s subject, fileField, file, secretField, secret string) []byte {
	hasFile, hasSecret := s.src.has(fileField), s.src.has(secretField)
	switch {
	case hasFile && hasSecret:
		v.errorf(s, secretField, "set only one of %s, %s", lastField(fileField), lastField(secretField))
	case hasSecret:
		if sec := v.tlsSecretRef(s, secretField, secret, tlsPartCA); sec != nil {
			return sec.Spec.CAPEM
		}
	case hasFile:
		if data, ok := v.readFileField(s, fileField, file); ok {
			if msg := caPEMProblem(file, data); msg != "" {
				v.errorf(s, fileField, "%s", msg)
				return nil
			}
			return data
		}
	}
	return nil
}

// lastField is the last element of a field path: "spec.tls.caSecret" -> "caSecret".
func lastField(p string) string {
	parent := parentPath(p)
	if parent == "" {
		return p
	}
	return p[len(parent)+1:]
}

// tlsSecretFiles lists the files of every tls Secret, which are served like inline files.
func (c *Config) tlsSecretFiles() []string {
	var out []string
	for _, s := range c.Secrets {
		if s.Spec.Type != SecretTypeTLS {
			continue
		}
		for _, f := range []string{s.Spec.CertFile, s.Spec.KeyFile, s.Spec.CAFile} {
			if f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}
