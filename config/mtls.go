package config

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// The client certificate modes of a Gateway.
const (
	ClientCertRequired = "required"
	ClientCertOptional = "optional"
)

// The kinds of subject alternative name a client certificate can be matched on.
const (
	SANTypeDNS   = "dns"
	SANTypeURI   = "uri"
	SANTypeEmail = "email"
	SANTypeIP    = "ip"
)

// ClientValidation makes an HTTPS Gateway ask clients for a certificate (mutual TLS) and verify
// it. The verified identity reaches the upstream in the x-forwarded-client-cert header; a value
// a client sends itself is always removed.
type ClientValidation struct {
	// CAFile is the PEM file of the certificate authorities client certificates must chain to.
	// A relative path is relative to the configuration file's directory. Watched and served like
	// the Gateway's certificates, so replacing it takes effect without a restart.
	CAFile string `yaml:"caFile,omitempty"`
	// CASecret names a Secret of type tls whose caFile holds the CAs, instead of caFile.
	CASecret string `yaml:"caSecret,omitempty"`
	// Mode is required (default: a client without a valid certificate cannot connect) or
	// optional (a client may connect without one; a certificate it does present must be valid).
	Mode string `yaml:"mode,omitempty"`
	// SubjectAltNames, when set, accept only certificates with a subject alternative name that
	// one of them matches. Empty: any certificate the CAs signed.
	SubjectAltNames []SANMatch `yaml:"subjectAltNames,omitempty"`

	// CAPEM is the CA file's content as read and checked at load time.
	CAPEM []byte `yaml:"-"`
}

// SANMatch matches one subject alternative name of a client certificate: exactly one of Exact,
// Prefix and Suffix.
type SANMatch struct {
	// Type is the kind of name: dns (default), uri (such as a SPIFFE id), email or ip.
	Type   string `yaml:"type,omitempty"`
	Exact  string `yaml:"exact,omitempty"`
	Prefix string `yaml:"prefix,omitempty"`
	Suffix string `yaml:"suffix,omitempty"`
}

func clientValidationDefaults(g *Gateway, dir string) {
	cv := g.Spec.TLS.ClientValidation
	if cv == nil {
		return
	}
	cv.CAFile = resolvePath(dir, cv.CAFile)
	if !g.Source.has("spec.tls.clientValidation.mode") {
		cv.Mode = ClientCertRequired
	}
	for i := range cv.SubjectAltNames {
		if !g.Source.has(fmt.Sprintf("spec.tls.clientValidation.subjectAltNames[%d].type", i)) {
			cv.SubjectAltNames[i].Type = SANTypeDNS
		}
	}
}

// checkClientValidation checks the CAs (and keeps their content), the mode and the SAN
// matchers.
func (v *validator) checkClientValidation(s subject, cv *ClientValidation) {
	const p = "spec.tls.clientValidation"
	if cv == nil || !s.src.valid(p) {
		return
	}
	if !s.src.has(p+".caFile") && !s.src.has(p+".caSecret") {
		v.errorf(s, p, "no CAs to verify clients with; set caFile, or caSecret (a Secret of type %s with caFile)", SecretTypeTLS)
	}
	cv.CAPEM = v.checkCAs(s, p+".caFile", cv.CAFile, p+".caSecret", cv.CASecret)
	if s.src.valid(p+".mode") && cv.Mode != ClientCertRequired && cv.Mode != ClientCertOptional {
		v.errorf(s, p+".mode", "%q is not a mode; use %s (clients must present a certificate) or %s",
			excerpt(cv.Mode), ClientCertRequired, ClientCertOptional)
	}
	if s.src.has(p+".subjectAltNames") && len(cv.SubjectAltNames) == 0 {
		v.errorf(s, p+".subjectAltNames", "empty list; leave subjectAltNames out to accept any certificate the CAs signed")
	}
	for i, m := range cv.SubjectAltNames {
		mp := fmt.Sprintf("%s.subjectAltNames[%d]", p, i)
		if !s.src.valid(mp) {
			continue
		}
		switch m.Type {
		case SANTypeDNS, SANTypeURI, SANTypeEmail, SANTypeIP:
		default:
			if s.src.valid(mp + ".type") {
				v.errorf(s, mp+".type", "%q is not a name type; use %s, %s, %s or %s", excerpt(m.Type), SANTypeDNS, SANTypeURI, SANTypeEmail, SANTypeIP)
			}
		}
		set := 0
		for _, f := range []struct{ name, value string }{{"exact", m.Exact}, {"prefix", m.Prefix}, {"suffix", m.Suffix}} {
			if !s.src.has(mp + "." + f.name) {
				continue
			}
			set++
			if f.value == "" && s.src.valid(mp+"."+f.name) {
				v.errorf(s, mp+"."+f.name, "empty %s matches every name; remove the entry instead", f.name)
			}
		}
		if set != 1 {
			v.errorf(s, mp, "set exactly one of exact, prefix and suffix (found %d)", set)
		}
	}
}

// caPEMProblem explains why data, read from path, holds no usable CA certificate, or returns ""
// when it does. Like the other certificate checks, it names the file but never quotes it.
func caPEMProblem(path string, data []byte) string {
	found := false
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Sprintf("%s has a CERTIFICATE block that does not parse as X.509", path)
		}
		found = true
	}
	if !found {
		return fmt.Sprintf("%s holds no PEM CERTIFICATE block", path)
	}
	return ""
}
