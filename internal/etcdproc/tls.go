package etcdproc

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
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TLS is a set of PEM files made for one test by NewTLS: a CA, a server
// certificate it signed for 127.0.0.1 and localhost, a client certificate
// it signed, and an unrelated CA with a client certificate of its own
// (for "wrong CA" cases).
type TLS struct {
	CA, CAKey                       string
	ServerCert, ServerKey           string
	ClientCert, ClientKey           string
	OtherCA                         string
	OtherClientCert, OtherClientKey string
	ca                              *x509.Certificate
	caKey                           *ecdsa.PrivateKey
	dir                             string
}

// NewTLS writes a CA, a server and a client certificate (common name
// clientCN) and an unrelated CA into a temporary directory of t.
func NewTLS(t testing.TB, clientCN string) *TLS {
	t.Helper()
	x := &TLS{dir: t.TempDir()}
	var err error
	var otherCA *x509.Certificate
	var otherKey *ecdsa.PrivateKey
	otherCA, otherKey, x.OtherCA, _, err = x.newCA("other-ca", "etcdproc unrelated CA")
	if err == nil {
		// A client certificate the cluster's CA did not sign.
		x.ca, x.caKey = otherCA, otherKey
		x.OtherClientCert, x.OtherClientKey, err = x.issue("other-client", clientCN, x509.ExtKeyUsageClientAuth)
	}
	if err == nil {
		x.ca, x.caKey, x.CA, x.CAKey, err = x.newCA("ca", "etcdproc test CA")
	}
	if err == nil {
		x.ServerCert, x.ServerKey, err = x.issue("server", "127.0.0.1", x509.ExtKeyUsageServerAuth)
	}
	if err == nil {
		x.ClientCert, x.ClientKey, err = x.Issue(clientCN)
	}
	if err != nil {
		t.Fatalf("etcdproc: certificates: %v", err)
	}
	return x
}

// Issue writes a client certificate with common name cn, signed by the
// CA, and returns its certificate and key files.
func (x *TLS) Issue(cn string) (cert, key string, err error) {
	return x.issue("client-"+cn, cn, x509.ExtKeyUsageClientAuth)
}

func (x *TLS) newCA(name, cn string) (*x509.Certificate, *ecdsa.PrivateKey, string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, "", "", err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, "", "", err
	}
	certFile, keyFile, err := x.write(name, der, key)
	return cert, key, certFile, keyFile, err
}

func (x *TLS) issue(name, cn string, usage x509.ExtKeyUsage) (string, string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
		// etcd also uses the server certificate as a client of itself.
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, x.ca, &key.PublicKey, x.caKey)
	if err != nil {
		return "", "", err
	}
	return x.write(name, der, key)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

func (x *TLS) write(name string, der []byte, key *ecdsa.PrivateKey) (string, string, error) {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	certFile := filepath.Join(x.dir, name+".pem")
	keyFile := filepath.Join(x.dir, name+"-key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return "", "", err
	}
	return certFile, keyFile, nil
}

// ClientConfig returns a client TLS configuration trusting the CA, with
// the client certificate cert and key (none when both are empty).
func (x *TLS) ClientConfig(cert, key string) (*tls.Config, error) {
	pem, err := os.ReadFile(x.CA)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no certificate", x.CA)
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert != "" || key != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}
