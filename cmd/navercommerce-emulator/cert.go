package main

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
	"strings"
	"time"
)

// certLifetime is long enough for any demo or test run, short enough that a
// leaked PEM file is soon worthless (the key never leaves the process).
const certLifetime = 30 * 24 * time.Hour

// selfSignedCertificate makes a fresh key and a self-signed certificate for
// localhost, 127.0.0.1, ::1, listenIP (another loopback address the emulator
// listens on, or nil) and hostname (a DNS name, or empty), so a client can
// trust exactly this process (unlike httptest's certificate, whose key is
// public). It returns the certificate for the server and its PEM for clients.
func selfSignedCertificate(now time.Time, listenIP net.IP, hostname string) (tls.Certificate, []byte, error) {
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if listenIP != nil && !listenIP.Equal(ips[0]) && !listenIP.Equal(ips[1]) {
		ips = append(ips, listenIP)
	}
	dnsNames := []string{"localhost"}
	if hostname != "" && hostname != "localhost" {
		dnsNames = append(dnsNames, hostname)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("generating the TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("generating a serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"navercommerce-emulator"}, CommonName: "navercommerce-emulator"},
		// A little in the past, so a client whose clock lags a bit still
		// accepts it.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(certLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		// It is its own root: a client trusts it by adding it to its pool.
		IsCA:        true,
		DNSNames:    dnsNames,
		IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("creating the TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("parsing the TLS certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// checkDNSName accepts a host name a certificate can name and a client can put
// in a URL: dot-separated labels of letters, digits and hyphens, no IP address
// (those are the listen address's), no port.
func checkDNSName(name string) error {
	if len(name) > 253 || net.ParseIP(name) != nil {
		return fmt.Errorf("%q is not a DNS name", name)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q is not a DNS name", name)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q is not a DNS name", name)
			}
		}
	}
	return nil
}
