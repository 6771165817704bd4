package navercommercetest

import (
	"net/http/httptest"
	"strings"
)

// Server is an Emulator listening on a loopback port, like
// httptest.Server.
type Server struct {
	*Emulator
	// URL is the API base URL including the base path, e.g.
	// http://127.0.0.1:PORT/external: what the plugin is configured with.
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
	ts := httptest.NewServer(e)
	return &Server{
		Emulator: e,
		URL:      ts.URL + e.basePath,
		RootURL:  strings.TrimSuffix(ts.URL, "/"),
		ts:       ts,
	}
}

// Close aborts requests held by fault delays, shuts the server down and
// waits for outstanding requests to finish.
func (s *Server) Close() {
	s.Emulator.close()
	s.ts.Close()
}
