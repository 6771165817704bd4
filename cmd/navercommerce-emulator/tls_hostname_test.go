package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestTLSHostnameFlag(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "default", args: []string{"-tls"}, want: ""},
		{name: "flag", args: []string{"-tls", "-tls-hostname", "naver-emulator.test"}, want: "naver-emulator.test"},
		{name: "env", args: []string{"-tls"}, env: map[string]string{"NAVER_EMULATOR_TLS_HOSTNAME": "api.emulator.test"}, want: "api.emulator.test"},
		{name: "needs tls", args: []string{"-tls-hostname", "naver-emulator.test"}, wantErr: "-tls-hostname needs -tls"},
		{name: "IP address", args: []string{"-tls", "-tls-hostname", "10.0.0.1"}, wantErr: "not a DNS name"},
		{name: "port", args: []string{"-tls", "-tls-hostname", "naver.test:443"}, wantErr: "not a DNS name"},
		{name: "empty label", args: []string{"-tls", "-tls-hostname", "naver..test"}, wantErr: "not a DNS name"},
		{name: "hyphen edge", args: []string{"-tls", "-tls-hostname", "-naver.test"}, wantErr: "not a DNS name"},
		{name: "space", args: []string{"-tls", "-tls-hostname", "naver test"}, wantErr: "not a DNS name"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(tc.args, func(k string) string { return tc.env[k] }, &bytes.Buffer{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.tlsHostname != tc.want {
				t.Errorf("tlsHostname %q, want %q", o.tlsHostname, tc.want)
			}
		})
	}
}

// TestRunTLSHostname: the certificate names the extra host, so a client that reaches the
// emulator under that name (through a proxy, here a dialer) trusts it; other names fail.
func TestRunTLSHostname(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		wantDNS  []string
		trustFor map[string]bool // host name in the URL → the client accepts the certificate
	}{
		{
			name:     "default names only localhost",
			wantDNS:  []string{"localhost"},
			trustFor: map[string]bool{"localhost": true, "naver-emulator.test": false},
		},
		{
			name:     "extra host name",
			args:     []string{"-tls-hostname", "naver-emulator.test"},
			wantDNS:  []string{"localhost", "naver-emulator.test"},
			trustFor: map[string]bool{"naver-emulator.test": true, "other.test": false},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			certFile := filepath.Join(t.TempDir(), "emulator.pem")
			base, _ := startRun(t, append([]string{"-tls", "-tls-cert-file", certFile}, tc.args...)...)
			pemBytes, err := os.ReadFile(certFile)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := pem.Decode(pemBytes)
			if block == nil {
				t.Fatalf("-tls-cert-file is not PEM:\n%s", pemBytes)
			}
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cert.DNSNames, tc.wantDNS) {
				t.Errorf("certificate DNS names %v, want %v", cert.DNSNames, tc.wantDNS)
			}
			u, err := url.Parse(base)
			if err != nil {
				t.Fatal(err)
			}
			if u.Hostname() != "127.0.0.1" {
				t.Errorf("base URL %s: want the loopback address, whatever the certificate names", base)
			}
			pool := x509.NewCertPool()
			pool.AddCert(cert)
			// Every connection goes to the emulator's loopback address, whatever the URL names:
			// nothing is resolved.
			tr := &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: pool},
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, network, u.Host)
				},
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			for host, trusted := range tc.trustFor {
				res, err := client.Get("https://" + host + ":" + u.Port() + "/_emulator/stats")
				if err == nil {
					res.Body.Close()
				}
				if trusted && (err != nil || res.StatusCode != http.StatusOK) {
					t.Errorf("https://%s/: %v, want a trusted answer", host, err)
				}
				if !trusted && (err == nil || !strings.Contains(err.Error(), "certificate")) {
					t.Errorf("https://%s/: %v, want a certificate error", host, err)
				}
			}
		})
	}
}
