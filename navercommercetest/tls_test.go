package navercommercetest_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

func TestTLSServer(t *testing.T) {
	clock := newFakeClock(testStart)
	app := navercommercetest.Application{ClientID: clientID, ClientSecret: secret}
	srv := navercommercetest.NewTLSServer(navercommercetest.Config{Applications: []navercommercetest.Application{app}, Now: clock.Now})
	defer srv.Close()
	if !strings.HasPrefix(srv.URL, "https://127.0.0.1:") || !strings.HasSuffix(srv.URL, "/external") || srv.RootURL+"/external" != srv.URL {
		t.Fatalf("URL %q RootURL %q", srv.URL, srv.RootURL)
	}

	// Server.Client trusts the server.
	res, err := srv.Client().Do(navercommercetest.NewTokenRequest(srv.URL, app, "SELF", "", clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.TLS == nil || !srv.TokenValid(tok.AccessToken) {
		t.Fatalf("status %d, TLS %v", res.StatusCode, res.TLS != nil)
	}

	// A client that does not trust it fails on the certificate.
	_, err = http.DefaultClient.Do(navercommercetest.NewTokenRequest(srv.URL, app, "SELLER", sellerID, clock.Now()))
	var unknownAuthority x509.UnknownAuthorityError
	if !errors.As(err, &unknownAuthority) {
		t.Fatalf("an untrusting client got %v, want an unknown-authority error", err)
	}

	// Certificate is enough to trust it: through a pool built from its PEM,
	// as another process would with SSL_CERT_FILE.
	cert := srv.Certificate()
	if cert == nil || !containsIP(cert.IPAddresses, net.ParseIP("127.0.0.1")) {
		t.Fatalf("certificate %v", cert)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})) {
		t.Fatal("the certificate's PEM did not parse")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	res, err = client.Do(navercommercetest.NewTokenRequest(srv.URL, app, "SELLER", sellerID, clock.Now()))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d through a pool of the certificate", res.StatusCode)
	}
	if st := srv.Stats(); len(st.Violations) != 0 || st.IssuedTokens != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPlainServerClientAndCertificate(t *testing.T) {
	clock := newFakeClock(testStart)
	srv := newTestServer(t, clock)
	if srv.Certificate() != nil {
		t.Fatal("a plain HTTP server has a certificate")
	}
	res, err := srv.Client().Get(srv.RootURL + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
}

func containsIP(ips []net.IP, ip net.IP) bool {
	for _, x := range ips {
		if x.Equal(ip) {
			return true
		}
	}
	return false
}
