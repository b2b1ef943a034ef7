package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeCert makes a key and a certificate for name from tmpl, signed by parent's key (or
// self-signed when parent is nil), writes them as dir/name.crt and dir/name.key, and returns
// both. tmpl supplies usage and constraints; subject, names and validity are filled in here.
func writeCert(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial
	tmpl.Subject = pkix.Name{CommonName: name}
	if !tmpl.IsCA {
		tmpl.DNSNames = []string{name}
	}
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+".crt"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(dir, name+".key"), "PRIVATE KEY", keyDER)
	return cert, key
}

// writeSelfSigned writes dir/name.crt and dir/name.key, a self-signed server certificate for name.
func writeSelfSigned(t *testing.T, dir, name string) *x509.Certificate {
	t.Helper()
	cert, _ := writeCert(t, dir, name, &x509.Certificate{
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, nil, nil)
	return cert
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// installSiteCert writes a new self-signed certificate and key for "site" in a staging directory
// and moves them to site.crt and site.key in dir with install (a rename or an overwrite, as a
// user would replace them). It returns the certificate and the key as installed.
func installSiteCert(t *testing.T, dir string, install func(staged, live string)) (*x509.Certificate, []byte) {
	t.Helper()
	staged := t.TempDir()
	cert := writeSelfSigned(t, staged, "site")
	for _, ext := range []string{".key", ".crt"} {
		install(filepath.Join(staged, "site"+ext), filepath.Join(dir, "site"+ext))
	}
	key, err := os.ReadFile(filepath.Join(dir, "site.key"))
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}
