package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/portico-gw/portico/internal/filelimit"
)

// ProtocolHTTPS is a Gateway that terminates TLS and then speaks HTTP/1.1 or HTTP/2.
const ProtocolHTTPS = "HTTPS"

// The TLS versions a Gateway can require at least.
const (
	TLSVersion12 = "1.2"
	TLSVersion13 = "1.3"
)

// Defaults of an HTTPS Gateway's TLS settings.
const DefaultTLSMinVersion = TLSVersion12

// DefaultALPN is offered when spec.tls.alpn is left out: HTTP/2 first, then HTTP/1.1.
var DefaultALPN = []string{"h2", "http/1.1"}

// GatewayTLS is how an HTTPS Gateway terminates TLS. Portico reads the certificate files at load
// time, checks them and serves their content to Envoy over SDS, so replacing the files rotates
// the certificates without touching the listener.
type GatewayTLS struct {
	// Certificates are the server certificates. A client's SNI name picks the certificate that
	// lists it in serverNames; the certificate without serverNames answers everything else.
	Certificates []TLSCertificate `yaml:"certificates"`
	// MinVersion is the oldest TLS version accepted: "1.2" (default) or "1.3".
	MinVersion string `yaml:"minVersion,omitempty"`
	// ALPN are the application protocols offered, in order of preference. Default [h2, http/1.1].
	ALPN []string `yaml:"alpn,omitempty"`
	// CipherSuites restricts the TLS 1.2 cipher suites accepted, by their OpenSSL names (such as
	// ECDHE-ECDSA-AES128-GCM-SHA256). Default: Envoy's. TLS 1.3 suites are not configurable.
	CipherSuites []string `yaml:"cipherSuites,omitempty"`
	// ClientValidation asks clients for a certificate and verifies it (mutual TLS).
	ClientValidation *ClientValidation `yaml:"clientValidation,omitempty"`
	// HSTS sends Strict-Transport-Security on every response; see HSTS.
	HSTS *HSTS `yaml:"hsts,omitempty"`
}

// TLSCertificate is a PEM certificate chain and its private key: each in a file, or both in a
// Secret of type tls. A relative path is relative to the directory of the configuration file
// that names it.
type TLSCertificate struct {
	// CertFile is the PEM file with the certificate, then any intermediates. Needs keyFile.
	CertFile string `yaml:"certFile,omitempty"`
	// KeyFile is the PEM file with the certificate's private key. Needs certFile.
	KeyFile string `yaml:"keyFile,omitempty"`
	// Secret names a Secret of type tls whose certFile and keyFile are the certificate, instead
	// of certFile and keyFile here.
	Secret string `yaml:"secret,omitempty"`
	// ServerNames are the SNI names (such as api.example.com or *.example.com) this certificate
	// answers. Empty: the default certificate, for every other name and for clients without SNI.
	ServerNames []string `yaml:"serverNames,omitempty"`

	// CertPEM and KeyPEM are the files' content as read and checked at load time: what Envoy is
	// served, so it never sees a file Portico did not check.
	CertPEM []byte        `yaml:"-"`
	KeyPEM  PrivateKeyPEM `yaml:"-"`
}

// PrivateKeyPEM is a private key as read from its file. It prints, logs and marshals as
// "[redacted]" whatever the verb or encoder, so a key that ends up in a log line, a %v of a
// configuration or a JSON document by mistake still does not leak.
type PrivateKeyPEM []byte

const redacted = "[redacted]"

// Format implements fmt.Formatter for every verb.
func (PrivateKeyPEM) Format(f fmt.State, _ rune) { io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (PrivateKeyPEM) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText implements encoding.TextMarshaler, which JSON and YAML encoders use.
func (PrivateKeyPEM) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// tlsDefaults resolves relative certificate paths against the Gateway's own file and fills in
// the TLS version and ALPN defaults. Envoy runs in Portico's working directory, so a path joined
// to the config file's directory names the same file for both.
func tlsDefaults(g *Gateway) {
	t := g.Spec.TLS
	if t == nil {
		return
	}
	dir := filepath.Dir(g.Source.Doc.File)
	for i := range t.Certificates {
		c := &t.Certificates[i]
		c.CertFile = resolvePath(dir, c.CertFile)
		c.KeyFile = resolvePath(dir, c.KeyFile)
	}
	clientValidationDefaults(g, dir)
	if !g.Source.has("spec.tls.minVersion") {
		t.MinVersion = DefaultTLSMinVersion
	}
	if !g.Source.has("spec.tls.alpn") {
		t.ALPN = slices.Clone(DefaultALPN)
	}
}

// ServedFiles lists the files whose content Portico reads and serves to Envoy itself (certificates,
// keys and client CAs of HTTPS Gateways and Upstreams, tls and awsCredentials Secrets' files, JWKS files), sorted
// and without repeats. A change of one of them changes what Envoy must be given, so they are
// watched like the configuration files.
func (c *Config) ServedFiles() []string {
	out := c.tlsSecretFiles()
	for _, g := range c.Gateways {
		if t := g.Spec.TLS; t != nil && g.Spec.Protocol == ProtocolHTTPS {
			for _, cert := range t.Certificates {
				out = append(out, cert.CertFile, cert.KeyFile)
			}
			if cv := t.ClientValidation; cv != nil {
				out = append(out, cv.CAFile)
			}
		}
	}
	for _, u := range c.Upstreams {
		if o := u.Spec.Options; o != nil && o.TLS != nil {
			out = append(out, o.TLS.CAFile, o.TLS.CertFile, o.TLS.KeyFile)
		}
	}
	out = append(out, c.jwksFiles()...)
	out = append(out, c.awsSecretFiles()...)
	out = append(out, c.genericSecretFiles()...)
	// Certificates given by Secret leave their inline fields empty.
	out = slices.DeleteFunc(out, func(f string) bool { return f == "" })
	slices.Sort(out)
	return slices.Compact(out)
}

func resolvePath(dir, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(dir, p)
}

// checkGatewayTLS requires spec.tls exactly when the Gateway speaks HTTPS, and checks that
// every certificate loads. Error messages name files but never quote their contents: a key
// must not end up in a log.
func (v *validator) checkGatewayTLS(s subject, g *Gateway) {
	t := g.Spec.TLS
	switch {
	case g.Spec.Protocol != ProtocolHTTPS:
		if s.src.has("spec.tls") {
			v.errorf(s, "spec.tls", "tls is only for protocol %s; set protocol: %s or remove tls", ProtocolHTTPS, ProtocolHTTPS)
		}
		return
	case t == nil:
		v.errorf(s, "spec.protocol", "protocol %s needs spec.tls with at least one certificate (certFile and keyFile, or secret)", ProtocolHTTPS)
		return
	case !s.src.valid("spec.tls"):
		return
	}
	const p = "spec.tls."
	if len(t.Certificates) == 0 {
		v.errorf(s, "spec.tls", "no certificates; add one with certFile and keyFile, or secret")
	}
	sni := &sniChoice{what: "certificate", list: "certificates", verb: "served by", example: "api.example.com", owner: map[string]int{}}
	for i, c := range t.Certificates {
		cp := fmt.Sprintf("%scertificates[%d]", p, i)
		if !s.src.valid(cp) {
			continue
		}
		v.checkKeyPair(s, cp, cp+".secret", c.Secret, &t.Certificates[i], false)
		v.checkSNIChoice(s, cp, i, c.ServerNames, sni)
	}
	if s.src.valid(p+"minVersion") && t.MinVersion != TLSVersion12 && t.MinVersion != TLSVersion13 {
		v.errorf(s, p+"minVersion", "%q is not a supported TLS version; use %q or %q", excerpt(t.MinVersion), TLSVersion12, TLSVersion13)
	}
	if s.src.has(p+"alpn") && len(t.ALPN) == 0 {
		v.errorf(s, p+"alpn", "empty list; leave alpn out for the default [h2, http/1.1]")
	}
	for i, proto := range t.ALPN {
		ap := fmt.Sprintf("%salpn[%d]", p, i)
		if s.src.valid(ap) && (proto == "" || len(proto) > 255) {
			v.errorf(s, ap, "an ALPN protocol name must be 1-255 bytes, such as h2 or http/1.1")
		}
	}
	v.checkCipherSuites(s, t)
	v.checkClientValidation(s, t.ClientValidation)
	v.checkHSTS(s, t.HSTS)
}

// cipherSuites lists the TLS 1.2 cipher suites a Gateway may restrict itself to: those Envoy
// (BoringSSL) offers servers, by their OpenSSL names.
var cipherSuites = []string{
	"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
	"ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
	"AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "AES256-SHA",
}

// checkCipherSuites accepts known TLS 1.2 suite names, each once, and only where TLS 1.2 can
// be negotiated.
func (v *validator) checkCipherSuites(s subject, t *GatewayTLS) {
	const p = "spec.tls.cipherSuites"
	if !s.src.has(p) {
		return
	}
	switch {
	case len(t.CipherSuites) == 0:
		v.errorf(s, p, "empty list; leave cipherSuites out for Envoy's defaults")
		return
	case t.MinVersion == TLSVersion13 && s.src.valid("spec.tls.minVersion"):
		v.errorf(s, p, "cipherSuites choose TLS 1.2 suites, and minVersion %q rules TLS 1.2 out; remove one of them", TLSVersion13)
		return
	}
	seen := map[string]bool{}
	for i, name := range t.CipherSuites {
		cp := fmt.Sprintf("%s[%d]", p, i)
		switch {
		case !s.src.valid(cp):
		case strings.HasPrefix(name, "TLS_"):
			v.errorf(s, cp, "%q is an IANA or TLS 1.3 name; list TLS 1.2 suites by their OpenSSL names (one of %s); TLS 1.3 suites are not configurable",
				excerpt(name), strings.Join(cipherSuites, ", "))
		case !slices.Contains(cipherSuites, name):
			v.errorf(s, cp, "%q is not a cipher suite Envoy offers; use one of %s%s", excerpt(name), strings.Join(cipherSuites, ", "), didYouMean(name, cipherSuites))
		case seen[name]:
			v.errorf(s, cp, "%s is listed twice; remove the repeat", name)
		}
		seen[name] = true
	}
}

// checkCertificate reports an unreadable file or a certificate that does not parse or does not
// match its key, and keeps the content of both files in c when they load. Each file is read
// once, so the bytes checked are the bytes served. crypto/tls's own errors are not passed on as
// they are, since a parse error could quote the bytes it choked on.
func (v *validator) checkCertificate(s subject, cp string, c *TLSCertificate) {
	cert, certOK := v.readFileField(s, cp+".certFile", c.CertFile)
	key, keyOK := v.readFileField(s, cp+".keyFile", c.KeyFile)
	if !certOK || !keyOK {
		return
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		v.errorf(s, cp, "%s and %s do not form a certificate and its key: %s", c.CertFile, c.KeyFile, keyPairProblem(err))
		return
	}
	c.CertPEM, c.KeyPEM = cert, key
}

// maxPEMBytes bounds a certificate, key or CA file: a large CA bundle is a few hundred
// kilobytes.
const maxPEMBytes = 4 << 20

// readFileField reads the file that field names, reporting at field why it cannot.
func (v *validator) readFileField(s subject, field, path string) ([]byte, bool) {
	if !s.src.valid(field) {
		// The decoder has reported the field as missing or malformed.
		return nil, false
	}
	if msg := unreadable(path); msg != "" {
		v.errorf(s, field, "%s", msg)
		return nil, false
	}
	data, err := filelimit.Read(path, maxPEMBytes)
	var tl *filelimit.TooLargeError
	switch {
	case errors.As(err, &tl):
		v.errorf(s, field, "%s holds more than %d bytes, far more than certificates and keys need; is it the right file?", path, maxPEMBytes)
		return nil, false
	case err != nil:
		v.errorf(s, field, "%s cannot be read: %v", path, err)
		return nil, false
	}
	return data, true
}

// unreadable explains why a file cannot be read, or returns "" when it can.
func unreadable(path string) string {
	f, err := os.Open(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("%s does not exist (a relative path is relative to the configuration file's directory)", path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("%s is not readable by this user; fix its permissions", path)
	case err != nil:
		return fmt.Sprintf("%s cannot be opened: %v", path, err)
	}
	defer f.Close()
	if info, err := f.Stat(); err == nil && info.IsDir() {
		return fmt.Sprintf("%s is a directory; name the PEM file", path)
	}
	return ""
}

// keyPairProblem turns a crypto/tls error into a message that cannot carry key material.
func keyPairProblem(err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "private key does not match public key"):
		return "the private key does not match the certificate"
	case strings.Contains(msg, "failed to find any PEM data in certificate input"),
		strings.Contains(msg, "failed to find certificate PEM data"):
		return "the certificate file holds no PEM CERTIFICATE block"
	case strings.Contains(msg, "failed to find any PEM data in key input"),
		strings.Contains(msg, "found a certificate rather than a key"),
		strings.Contains(msg, "failed to find PEM block with type ending in \"PRIVATE KEY\""):
		return "the key file holds no PEM PRIVATE KEY block"
	case strings.Contains(msg, "failed to parse private key"), strings.Contains(msg, "unknown private key type"):
		return "the key file's private key does not parse (use PKCS#1, PKCS#8 or SEC 1 PEM)"
	case strings.Contains(msg, "x509"):
		return "the certificate does not parse as X.509"
	default:
		return "they do not load as a PEM certificate and matching private key"
	}
}

// validServerName accepts a host name or a wildcard of one leading label, as Envoy's
// filter_chain_match.server_names does.
func validServerName(name string) bool {
	return validHostname(strings.TrimPrefix(name, "*."))
}

// sniChoice tracks, across one list whose entries are picked by TLS server name (certificates
// of an HTTPS Gateway, routes of a passthrough Gateway), which entry owns each name and how
// many entries are the default (no serverNames).
type sniChoice struct {
	what, list, verb, example string
	owner                     map[string]int // lower-cased name -> index of the entry that has it
	defaults                  int
}

// checkSNIChoice checks the serverNames of entry i at path p: valid names, none taken by an
// earlier entry (names compare without case), at most one default entry.
func (v *validator) checkSNIChoice(s subject, p string, i int, names []string, c *sniChoice) {
	if len(names) == 0 {
		c.defaults++
		if c.defaults == 2 {
			v.errorf(s, p, "a second %s without serverNames; only one can be the default, so give this one serverNames", c.what)
		}
	}
	for j, name := range names {
		np := fmt.Sprintf("%s.serverNames[%d]", p, j)
		if !s.src.valid(np) {
			continue
		}
		if !validServerName(name) {
			v.errorf(s, np, "%q is not a server name; use a host name such as %s or a wildcard such as *.example.com", excerpt(name), c.example)
			continue
		}
		key := strings.ToLower(name)
		if prev, ok := c.owner[key]; ok {
			v.errorf(s, np, "server name %q is already %s %s[%d]; a name can select only one %s", name, c.verb, c.list, prev, c.what)
			continue
		}
		c.owner[key] = i
	}
}
