package navercommercetest

import (
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"strings"
)

// Server is an Emulator listening on a loopback port, like
// httptest.Server.
type Server struct {
	*Emulator
	// URL is the API base URL including the base path, e.g.
	// http://127.0.0.1:PORT/external (https:// for NewTLSServer): what the
	// plugin is configured with.
	URL string
	// RootURL is URL without the base path; the admin endpoints
	// (/_emulator/...) live under it.
	RootURL string

	ts *httptest.Server
}

// NewServer starts an Emulator for cfg on 127.0.0.1 with a random port. It
// panics like httptest.NewServer if it cannot listen, and like New on a bad
// Config. Close it when done.
func NewServer(cfg Config) *Server {
	e := New(cfg)
	return newServer(e, httptest.NewServer(e))
}

// NewTLSServer is NewServer over HTTPS, like httptest.NewTLSServer: the
// certificate is httptest's self-signed one for 127.0.0.1, ::1 and
// example.com. Use Client for an http.Client that trusts it, or Certificate
// to build a pool or write a PEM file (SSL_CERT_FILE) for another process.
func NewTLSServer(cfg Config) *Server {
	e := New(cfg)
	return newServer(e, httptest.NewTLSServer(e))
}

func newServer(e *Emulator, ts *httptest.Server) *Server {
	return &Server{
		Emulator: e,
		URL:      ts.URL + e.basePath,
		RootURL:  strings.TrimSuffix(ts.URL, "/"),
		ts:       ts,
	}
}

// Client returns an HTTP client for the server, like httptest.Server.Client:
// for a TLS server it trusts the server's certificate. Its connections are
// closed by Close.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// Certificate returns the TLS server's certificate, or nil for a plain HTTP
// server.
func (s *Server) Certificate() *x509.Certificate { return s.ts.Certificate() }

// Close aborts requests held by latency or fault delays, shuts the server
// down and waits for outstanding requests to finish.
func (s *Server) Close() {
	s.Emulator.close()
	s.ts.Close()
}
