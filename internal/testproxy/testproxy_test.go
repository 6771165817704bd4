package testproxy

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const (
	testUser     = "proxyuser"
	testPassword = "s3cret-proxy-pa55"
)

// tlsTarget is an HTTPS server (httptest's certificate: 127.0.0.1, ::1, example.com) and a
// client that trusts it and sends everything through proxyURL.
func tlsTarget(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello from "+r.Host)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func clientVia(t *testing.T, srv *httptest.Server, proxyURL string) *http.Client {
	t.Helper()
	u, err := url.Parse(proxyURL)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	tr := &http.Transport{Proxy: http.ProxyURL(u), TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func startProxy(t *testing.T, opts Options) *Proxy {
	t.Helper()
	p, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
	})
	return p
}

func TestProxyTunnelsHTTPS(t *testing.T) {
	srv := tlsTarget(t)
	srvAddr := strings.TrimPrefix(srv.URL, "https://")
	tests := []struct {
		name       string
		hosts      map[string]string
		url        string // what the client asks for
		proxyURL   func(p *Proxy) string
		wantBody   string
		wantErr    string // substring of the client's error; empty: success
		wantTarget string
		refused    int
	}{
		{
			name:       "loopback target",
			url:        srv.URL + "/x",
			proxyURL:   func(p *Proxy) string { return p.URL },
			wantBody:   "hello from " + srvAddr,
			wantTarget: srvAddr,
		},
		{
			name:       "host name mapped to the loopback server",
			hosts:      map[string]string{"example.com:443": srvAddr},
			url:        "https://example.com/x",
			proxyURL:   func(p *Proxy) string { return p.URL },
			wantBody:   "hello from example.com",
			wantTarget: "example.com:443",
		},
		{
			name:     "wrong password",
			url:      srv.URL,
			proxyURL: func(p *Proxy) string { return p.URLWith(testUser, "wrong-password") },
			wantErr:  "Proxy Authentication Required",
			refused:  1,
		},
		{
			name:     "no credentials",
			url:      srv.URL,
			proxyURL: func(p *Proxy) string { return p.URLWith("", "") },
			wantErr:  "Proxy Authentication Required",
			refused:  1,
		},
		{
			name:     "unmapped non-loopback target is refused",
			url:      "https://192.0.2.1/x", // TEST-NET-1: never dialled
			proxyURL: func(p *Proxy) string { return p.URL },
			wantErr:  "Forbidden",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, Options{User: testUser, Password: testPassword, Hosts: tc.hosts})
			client := clientVia(t, srv, tc.proxyURL(p))
			resp, err := client.Get(tc.url)
			if tc.wantErr != "" {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("got HTTP %d, want an error with %q", resp.StatusCode, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %q does not contain %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "wrong-password") || strings.Contains(err.Error(), testPassword) {
					t.Errorf("error %q shows a password", err)
				}
				if p.Tunnels() != 0 {
					t.Errorf("%d tunnels opened, want 0", p.Tunnels())
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(body) != tc.wantBody {
					t.Errorf("body %q, want %q", body, tc.wantBody)
				}
				if p.Tunnels() != 1 || p.BytesUpstream() == 0 {
					t.Errorf("%d tunnels, %d bytes upstream; want 1 and some", p.Tunnels(), p.BytesUpstream())
				}
				if got := p.Targets(); len(got) != 1 || got[0] != tc.wantTarget {
					t.Errorf("targets %v, want [%s]", got, tc.wantTarget)
				}
			}
			if p.Refused() != tc.refused {
				t.Errorf("refused %d, want %d", p.Refused(), tc.refused)
			}
		})
	}
}

// A request over a kept-alive tunnel opens no new tunnel but moves BytesUpstream.
func TestProxyBytesMoveOnAReusedTunnel(t *testing.T) {
	srv := tlsTarget(t)
	p := startProxy(t, Options{User: testUser, Password: testPassword})
	client := clientVia(t, srv, p.URL)
	var before int64
	for i := range 2 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := p.BytesUpstream(); got <= before {
			t.Errorf("request %d: bytes upstream %d, was %d", i+1, got, before)
		}
		before = p.BytesUpstream()
	}
	if p.Tunnels() != 1 {
		t.Errorf("%d tunnels, want 1 (kept alive)", p.Tunnels())
	}
}

func TestProxyRefusesNonCONNECT(t *testing.T) {
	p := startProxy(t, Options{User: testUser, Password: testPassword})
	req, _ := http.NewRequest(http.MethodGet, "http://"+p.Addr+"/", nil)
	req.SetBasicAuth(testUser, testPassword)
	req.Header.Set("Proxy-Authorization", req.Header.Get("Authorization"))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET answered %d, want 405", resp.StatusCode)
	}
}

func TestProxyRefusesNonLoopbackMapping(t *testing.T) {
	for _, to := range []string{"192.0.2.1:443", "example.com:443", "no-port"} {
		if p, err := Start(Options{Hosts: map[string]string{"naver.test:443": to}}); err == nil {
			p.Close()
			t.Errorf("mapping to %q accepted", to)
		}
	}
}

// Close ends tunnels that are still open, so a test never leaks a goroutine or a connection.
func TestProxyCloseEndsOpenTunnels(t *testing.T) {
	target, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	go func() {
		// Accept and hold connections open without answering.
		for {
			c, err := target.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	p, err := Start(Options{}) // no credentials asked
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", p.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "CONNECT "+target.Addr().String()+" HTTP/1.1\r\nHost: "+target.Addr().String()+"\r\n\r\n")
	br := bufio.NewReader(conn)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("CONNECT answered %q, %v", status, err)
	}
	_, _ = br.ReadString('\n') // the empty line ending the header

	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with a tunnel open")
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Error("the tunnel is still open after Close")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the tunnel was not closed by Close")
	}
}
