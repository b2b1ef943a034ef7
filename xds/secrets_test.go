package xds

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/portico-gw/portico/internal/envoytest"
)

// tlsGateway is gateway(port, body) terminating TLS with the certificate of Secret "web-cert",
// served over ADS, and that Secret holding certPEM and keyPEM (left out when certPEM is nil).
func tlsGateway(t *testing.T, port uint32, body string, certPEM, keyPEM []byte) Resources {
	t.Helper()
	res := gateway(t, port, body)
	l := res[resource.ListenerType][0].(*listener.Listener)
	ctx, err := anypb.New(&tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: "web-cert", SdsConfig: &core.ConfigSource{
			ResourceApiVersion:    core.ApiVersion_V3,
			ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
		}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	l.FilterChains[0].TransportSocket = &core.TransportSocket{
		Name:       "envoy.transport_sockets.tls",
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: ctx},
	}
	if certPEM != nil {
		res[resource.SecretType] = append(res[resource.SecretType], &tlsv3.Secret{
			Name: "web-cert",
			Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: certPEM}},
				PrivateKey:       &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: keyPEM}},
			}},
		})
	}
	return res
}

// selfSigned returns a fresh self-signed certificate for 127.0.0.1, its PEM and its key's PEM.
func selfSigned(t *testing.T) (serial *big.Int, certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err = rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return serial, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
}

// TestSecretReferencesChecked refuses a listener that names a Secret the push does not hold:
// Envoy would keep it warming, waiting for the Secret, for ever.
func TestSecretReferencesChecked(t *testing.T) {
	_, certPEM, keyPEM := selfSigned(t)
	_, err := Check(tlsGateway(t, 8443, "x", nil, nil))
	if err == nil || !strings.Contains(err.Error(), `names secret "web-cert", which is not served`) {
		t.Fatalf("Check without the secret = %v, want the missing secret named", err)
	}
	if _, err := Check(tlsGateway(t, 8443, "x", certPEM, keyPEM)); err != nil {
		t.Fatalf("Check with the secret: %v", err)
	}
}

// TestClusterSecretReferencesChecked refuses a cluster whose upstream TLS context names a
// Secret the push does not hold, as for listeners.
func TestClusterSecretReferencesChecked(t *testing.T) {
	_, certPEM, keyPEM := selfSigned(t)
	res := tlsGateway(t, 8443, "x", certPEM, keyPEM)
	ctx, err := anypb.New(&tlsv3.UpstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
		ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext: &tlsv3.CertificateValidationContext{},
			ValidationContextSdsSecretConfig: &tlsv3.SdsSecretConfig{Name: "backend-ca", SdsConfig: &core.ConfigSource{
				ResourceApiVersion:    core.ApiVersion_V3,
				ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
			}},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster.Cluster{
		Name:                 "backend",
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		TransportSocket:      &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: ctx}},
	}
	res[resource.ClusterType] = append(res[resource.ClusterType], c)
	if _, err := Check(res); err == nil || !strings.Contains(err.Error(), fmt.Sprintf(`cluster %q names secret "backend-ca", which is not served`, c.Name)) {
		t.Fatalf("Check without the CA secret = %v, want the missing secret named", err)
	}
	res[resource.SecretType] = append(res[resource.SecretType], &tlsv3.Secret{
		Name: "backend-ca",
		Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
			TrustedCa: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: certPEM}},
		}},
	})
	if _, err := Check(res); err != nil {
		t.Fatalf("Check with the secret: %v", err)
	}
}

// TestRealEnvoyRotatesSecret serves a TLS listener's certificate over SDS to the real Envoy,
// then pushes a generation that changes only the Secret: Envoy must ACK it (the generation
// counts as applied only with the Secret type ACKed), serve the new certificate to new
// connections, and never modify the listener.
func TestRealEnvoyRotatesSecret(t *testing.T) {
	bin := envoytest.Binary(t)
	s := New(testLogger(t), testNode)
	socketPath := startServer(t, s)
	port := uint32(envoytest.FreePort(t))
	serial1, cert1, key1 := selfSigned(t)
	mustPush(t, s, tlsGateway(t, port, "hello", cert1, key1), 1)
	envoy := startEnvoy(t, bin, socketPath)
	waitACK(t, s, envoy, 1)
	s.mu.Lock()
	required := s.gens[1].required
	s.mu.Unlock()
	if !slices.Contains(required, resource.SecretType) {
		t.Fatalf("generation 1 requires ACKs of %v, not of the secret type", required)
	}
	envoy.waitSerial(t, port, serial1)

	serial2, cert2, key2 := selfSigned(t)
	mustPush(t, s, tlsGateway(t, port, "hello", cert2, key2), 2)
	waitACK(t, s, envoy, 2)
	envoy.waitSerial(t, port, serial2)
	if got := envoy.stat(t, "listener_manager.listener_modified"); got != 0 {
		t.Errorf("envoy modified a listener %d times for a secret rotation, want 0", got)
	}
}

// waitSerial polls TLS handshakes with 127.0.0.1:port until the server presents the certificate
// with serial.
func (e *runningEnvoy) waitSerial(t *testing.T, port uint32, serial *big.Int) {
	t.Helper()
	var last string
	e.poll(t, fmt.Sprintf("port %d serves certificate %x", port, serial), func() bool {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp",
			fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			last = err.Error()
			return false
		}
		defer conn.Close()
		got := conn.ConnectionState().PeerCertificates[0].SerialNumber
		last = fmt.Sprintf("serial %x", got)
		return got.Cmp(serial) == 0
	})
	t.Logf("port %d: %s", port, last)
}
