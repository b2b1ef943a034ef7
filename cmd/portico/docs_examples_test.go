package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// TestDocsExamples keeps the YAML examples of the README and docs/ valid: every fenced yaml
// block holding a Portico document (apiVersion portico.dev/v1) or a Gateway API one
// (gateway.networking.k8s.io/v1, with the v1 Services and Secrets beside it) is written to a file and checked
// by `portico validate`, the code path `portico run` takes up to the push to Envoy, and by Envoy
// itself (validate --envoy) when PORTICO_TEST_ENVOY names one, as `make test` does. An example
// must be valid as written; warnings (a VirtualService without a Gateway, say) are allowed, since
// an example may show one kind alone.
//
// An HTML comment on the line before a block's opening fence says how to take it:
//
//	<!-- example: NAME -->      the block is part of example NAME: the blocks of one Markdown
//	                            file with the same NAME are validated together, in order, as
//	                            one configuration (say, Secrets in one section and the
//	                            VirtualService that uses them in the next)
//	<!-- example: fragment -->  the block shows part of a document (placeholders such as
//	                            `...`) and is not validated
//	<!-- example: invalid -->   the block shows a mistake: validation must fail
//
// A block without a comment is validated alone. Files the examples name (certificates, keys,
// CA files, JWKS files and Secret files) are created by the test beside the configuration, at
// the relative paths the example uses, with content of the kind the field expects; in a
// kubernetes.io/tls Secret, the placeholders BASE64-PEM-CERTIFICATE and BASE64-PEM-KEY are
// replaced by a certificate and its key.
func TestDocsExamples(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{filepath.Join("..", "..", "README.md")}, docs...)
	total := 0
	for _, doc := range docs {
		examples, err := docExamples(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range examples {
			total++
			t.Run(ex.name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				for i, b := range ex.blocks {
					writeExampleFiles(t, dir, b.text)
					name := filepath.Join(dir, fmt.Sprintf("%02d-line%d.yaml", i, b.line))
					if err := os.WriteFile(name, []byte(fillKubernetesTLS(t, b.text)), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				args := []string{"validate", dir}
				if bin := os.Getenv("PORTICO_TEST_ENVOY"); bin != "" && !ex.invalid {
					args = append(args, "--envoy", "--envoy-path", bin)
				}
				code, stdout, stderr := call(t, args...)
				switch {
				case ex.invalid && code == 0:
					t.Errorf("the example is marked invalid, but validate accepts it:\n%s", stdout)
				case !ex.invalid && code != 0:
					t.Errorf("validate exits %d:\n%s%s", code, stdout, stderr)
				}
			})
		}
	}
	// The docs hold dozens of examples; finding few means the extraction broke.
	if total < 25 {
		t.Errorf("found %d examples in README.md and docs/*.md, want at least 25", total)
	}
}

// docExample is one configuration to validate: one block, or the blocks of one name.
type docExample struct {
	name    string
	blocks  []docBlock
	invalid bool
}

type docBlock struct {
	line int // of the opening fence, 1-based
	text string
}

var (
	fenceRE   = regexp.MustCompile("^```(yaml|yml)\\s*$")
	markerRE  = regexp.MustCompile(`^<!--\s*example:\s*([A-Za-z0-9_.-]+)\s*-->\s*$`)
	porticoRE = regexp.MustCompile(`(?m)^apiVersion:\s*(portico\.dev|gateway\.networking\.k8s\.io)/v1\s*$`)
)

// docExamples extracts the examples of one Markdown file, named after the file and the line of
// their first block.
func docExamples(path string) ([]docExample, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	var out []docExample
	named := map[string]int{} // example name -> index in out
	for i := 0; i < len(lines); i++ {
		if !fenceRE.MatchString(lines[i]) {
			continue
		}
		start := i
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			return nil, fmt.Errorf("%s:%d: the yaml block is not closed", path, start+1)
		}
		text := strings.Join(body, "\n") + "\n"
		if !porticoRE.MatchString(text) {
			continue
		}
		marker := ""
		if start > 0 {
			if m := markerRE.FindStringSubmatch(strings.TrimSpace(lines[start-1])); m != nil {
				marker = m[1]
			}
		}
		b := docBlock{line: start + 1, text: text}
		label := fmt.Sprintf("%s:%d", filepath.Base(path), b.line)
		switch marker {
		case "fragment":
		case "", "invalid":
			out = append(out, docExample{name: label, blocks: []docBlock{b}, invalid: marker == "invalid"})
		default:
			if j, ok := named[marker]; ok {
				out[j].blocks = append(out[j].blocks, b)
				continue
			}
			named[marker] = len(out)
			out = append(out, docExample{name: label + "/" + marker, blocks: []docBlock{b}})
		}
	}
	return out, nil
}

// writeExampleFiles creates, under dir, the files that the documents of one example block name.
// It does not judge the example: a document that does not parse is left to validate to report.
func writeExampleFiles(t *testing.T, dir, text string) {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(text))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			return
		}
		if doc["kind"] == "Secret" {
			spec, _ := doc["spec"].(map[string]any)
			file, _ := spec["file"].(string)
			typ, _ := spec["type"].(string)
			switch typ {
			case "apiKeys":
				writeExampleFile(t, dir, file, []byte("demo:demo-key-0123456789abcdef\n"))
			case "htpasswd":
				hash, err := bcrypt.GenerateFromPassword([]byte("demo"), bcrypt.MinCost)
				if err != nil {
					t.Fatal(err)
				}
				writeExampleFile(t, dir, file, []byte("demo:"+string(hash)+"\n"))
			case "awsCredentials":
				writeExampleFile(t, dir, file, []byte("aws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = example-secret-access-key\n"))
			case "generic":
				writeExampleFile(t, dir, file, []byte("example-client-secret\n"))
			}
		}
		walkExampleFields(t, dir, doc)
	}
}

// walkExampleFields creates the files of the certFile/keyFile pairs, caFiles and JWKS files in v.
func walkExampleFields(t *testing.T, dir string, v any) {
	switch v := v.(type) {
	case map[string]any:
		cert, _ := v["certFile"].(string)
		key, _ := v["keyFile"].(string)
		if cert != "" && key != "" {
			var names []string
			if sn, ok := v["serverNames"].([]any); ok {
				for _, n := range sn {
					if s, ok := n.(string); ok {
						names = append(names, s)
					}
				}
			}
			certPEM, keyPEM := exampleCertificate(t, names)
			writeExampleFile(t, dir, cert, certPEM)
			writeExampleFile(t, dir, key, keyPEM)
		}
		if ca, ok := v["caFile"].(string); ok {
			writeExampleFile(t, dir, ca, exampleCA(t))
		}
		if jwks, ok := v["jwks"].(map[string]any); ok {
			if file, ok := jwks["file"].(string); ok {
				writeExampleFile(t, dir, file, exampleJWKS(t))
			}
		}
		for _, child := range v {
			walkExampleFields(t, dir, child)
		}
	case []any:
		for _, child := range v {
			walkExampleFields(t, dir, child)
		}
	}
}

// writeExampleFile writes content at path, relative to dir: the examples must use relative
// paths, which resolve against the configuration file's directory wherever it is copied.
func writeExampleFile(t *testing.T, dir, path string, content []byte) {
	t.Helper()
	if path == "" {
		return
	}
	if filepath.IsAbs(path) || !filepath.IsLocal(path) {
		t.Fatalf("the example names %s; use a path relative to the configuration file", path)
	}
	full := filepath.Join(dir, path)
	if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, content, 0o600); err != nil {
		t.Fatal(err)
	}
}

// exampleCA is a self-signed CA certificate.
func exampleCA(t *testing.T) []byte {
	t.Helper()
	der, _ := exampleCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: "example CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign,
	})
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// exampleCertificate is a self-signed server certificate for names (localhost when none) and
// its key.
func exampleCertificate(t *testing.T, names []string) (certPEM, keyPEM []byte) {
	t.Helper()
	if len(names) == 0 {
		names = []string{"localhost"}
	}
	der, key := exampleCert(t, &x509.Certificate{
		Subject: pkix.Name{CommonName: names[0]}, DNSNames: names, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	})
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

func exampleCert(t *testing.T, tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = big.NewInt(time.Now().UnixNano())
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

// exampleJWKS is a key set with one EC P-256 public key.
func exampleJWKS(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	point, err := key.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "example",
		"x": enc(point[1:33]), "y": enc(point[33:]),
	}}}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fillKubernetesTLS replaces the placeholders of a kubernetes.io/tls Secret's data with a
// certificate and its key, base64-encoded as Kubernetes stores them.
func fillKubernetesTLS(t *testing.T, text string) string {
	if !strings.Contains(text, "BASE64-PEM-CERTIFICATE") {
		return text
	}
	certPEM, keyPEM := exampleCertificate(t, nil)
	return strings.NewReplacer(
		"BASE64-PEM-CERTIFICATE", base64.StdEncoding.EncodeToString(certPEM),
		"BASE64-PEM-KEY", base64.StdEncoding.EncodeToString(keyPEM),
	).Replace(text)
}
