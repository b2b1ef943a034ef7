package config

import (
	"fmt"
	"path/filepath"
)

// UpstreamTLS makes Envoy speak TLS to an Upstream's hosts. A relative path is relative to
// the directory of the configuration file that names it. Portico reads the files at load time,
// checks them and serves their content to Envoy over SDS, so replacing them rotates the client
// certificate and the CAs without touching the cluster.
type UpstreamTLS struct {
	// SNI is the server name sent to the hosts and checked against their certificate. Default:
	// the first host name of a dns Upstream; a static Upstream sends none unless set.
	SNI string `yaml:"sni,omitempty"`
	// CAFile is the PEM file of the certificate authorities the hosts' certificates must chain
	// to. Required unless insecureSkipVerify is true: Portico never trusts the system roots
	// implicitly, so what an Upstream trusts is always written in its configuration.
	CAFile string `yaml:"caFile,omitempty"`
	// CASecret names a Secret of type tls whose caFile holds the CAs, instead of caFile.
	CASecret string `yaml:"caSecret,omitempty"`
	// InsecureSkipVerify accepts any certificate from the hosts. For tests only.
	InsecureSkipVerify bool `yaml:"insecureSkipVerify,omitempty"`
	// CertFile is the PEM client certificate chain, for hosts that require one. Needs keyFile.
	CertFile string `yaml:"certFile,omitempty"`
	// KeyFile is the PEM private key of certFile. Needs certFile.
	KeyFile string `yaml:"keyFile,omitempty"`
	// CertSecret names a Secret of type tls whose certFile and keyFile are the client
	// certificate, instead of certFile and keyFile.
	CertSecret string `yaml:"certSecret,omitempty"`
	// ALPN are the protocols offered to the hosts, in order of preference. Default: none.
	ALPN []string `yaml:"alpn,omitempty"`

	// The CAs and the client certificate as read and checked at load time: what Envoy is served.
	CAPEM   []byte        `yaml:"-"`
	CertPEM []byte        `yaml:"-"`
	KeyPEM  PrivateKeyPEM `yaml:"-"`
}

// upstreamTLSDefaults resolves the file paths against the Upstream's own file, as tlsDefaults
// does for Gateways, and defaults the SNI of a dns Upstream to its first host name.
func upstreamTLSDefaults(u *Upstream) {
	if u.Spec.Options == nil || u.Spec.Options.TLS == nil {
		return
	}
	t := u.Spec.Options.TLS
	dir := filepath.Dir(u.Source.Doc.File)
	t.CAFile = resolvePath(dir, t.CAFile)
	t.CertFile = resolvePath(dir, t.CertFile)
	t.KeyFile = resolvePath(dir, t.KeyFile)
	if !u.Source.has("spec.options.tls.sni") && u.Spec.DNS != nil && len(u.Spec.DNS.Hosts) > 0 {
		t.SNI = u.Spec.DNS.Hosts[0].Hostname
	}
}

// checkUpstreamTLS checks that every named file loads. As for Gateways, messages name files but
// never quote their contents.
func (v *validator) checkUpstreamTLS(s subject, t *UpstreamTLS) {
	const p = "spec.options.tls"
	if t == nil || !s.src.valid(p) {
		return
	}
	if s.src.valid(p+".sni") && !validHostname(t.SNI) {
		v.errorf(s, p+".sni", "%q is not a server name; use a host name such as backend.example.com", excerpt(t.SNI))
	}
	hasCA := s.src.has(p+".caFile") || s.src.has(p+".caSecret")
	switch {
	case s.src.valid(p+".insecureSkipVerify") && !t.InsecureSkipVerify:
		v.errorf(s, p+".insecureSkipVerify", "insecureSkipVerify: false is the default; remove it")
	case hasCA && t.InsecureSkipVerify:
		v.errorf(s, p+".insecureSkipVerify", "set only one of caFile (or caSecret), insecureSkipVerify")
	case !hasCA && !t.InsecureSkipVerify:
		v.errorf(s, p, "no caFile; name the PEM file of the CAs that sign the hosts' certificates, or a tls Secret with caSecret (or, for tests only, set insecureSkipVerify: true)")
	}
	t.CAPEM = v.checkCAs(s, p+".caFile", t.CAFile, p+".caSecret", t.CASecret)
	c := TLSCertificate{CertFile: t.CertFile, KeyFile: t.KeyFile}
	v.checkKeyPair(s, p, p+".certSecret", t.CertSecret, &c, true)
	t.CertPEM, t.KeyPEM = c.CertPEM, c.KeyPEM
	if s.src.has(p+".alpn") && len(t.ALPN) == 0 {
		v.errorf(s, p+".alpn", "empty list; leave alpn out to offer none")
	}
	for i, proto := range t.ALPN {
		ap := fmt.Sprintf("%s.alpn[%d]", p, i)
		if s.src.valid(ap) && (proto == "" || len(proto) > 255) {
			v.errorf(s, ap, "an ALPN protocol name must be 1-255 bytes, such as h2 or http/1.1")
		}
	}
}
