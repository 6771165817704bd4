// Package testproxy is an authenticating HTTP CONNECT proxy for tests: what the plugin meets
// when a company sends its HTTPS traffic to Naver through a proxy (proxy_url or HTTPS_PROXY).
//
// It listens on a loopback port, requires Basic credentials (answering 407 otherwise), and
// tunnels CONNECT requests to loopback addresses only. A host name such as
// naver-emulator.test:443 can be mapped to an emulator's loopback address, so a client can
// be configured with a non-loopback URL (which Go's HTTPS_PROXY handling requires) while
// nothing resolves or leaves the machine. It never logs: its credentials are a test's
// secrets.
package testproxy

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// dialTimeout bounds a tunnel's connection to its loopback target.
const dialTimeout = 5 * time.Second

// Options configures a Proxy.
type Options struct {
	// User and Password are the Basic credentials every request must carry in
	// Proxy-Authorization. An empty User means no credentials are asked for.
	User, Password string
	// Hosts maps a CONNECT target ("host:port", as the client names it) to the loopback
	// "ip:port" to dial instead. Targets not in Hosts must be loopback IP addresses.
	Hosts map[string]string
}

// Proxy is a running CONNECT proxy. Close it when done.
type Proxy struct {
	// URL is the proxy's URL with its credentials: http://user:password@127.0.0.1:PORT.
	URL string
	// Addr is the proxy's listening address, 127.0.0.1:PORT.
	Addr string

	opts     Options
	wantAuth string
	ln       net.Listener
	srv      *http.Server

	tunnels  atomic.Int64 // CONNECT requests answered 200
	refused  atomic.Int64 // requests answered 407
	upstream atomic.Int64 // bytes sent through tunnels towards targets

	mu      sync.Mutex
	targets []string          // CONNECT targets of established tunnels, in order
	conns   map[net.Conn]bool // hijacked connections still open, closed by Close
	closed  bool
	wg      sync.WaitGroup // tunnel goroutines
}

// Start starts a proxy on 127.0.0.1 with a random port.
// StartT starts a proxy that is closed when the test ends, failing the test if it cannot
// start or close cleanly (cleanups run last-in first-out: start it before what uses it).
func StartT(t testing.TB, opts Options) *Proxy {
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

func Start(opts Options) (*Proxy, error) {
	for from, to := range opts.Hosts {
		if err := checkLoopback(to); err != nil {
			return nil, fmt.Errorf("testproxy: mapping of %s: %w", from, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testproxy: listening: %w", err)
	}
	p := &Proxy{
		Addr:  ln.Addr().String(),
		opts:  opts,
		ln:    ln,
		conns: map[net.Conn]bool{},
	}
	p.URL = p.URLWith(opts.User, opts.Password)
	if opts.User != "" {
		p.wantAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(opts.User+":"+opts.Password))
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// URLWith is the proxy's URL with other credentials (none if user is empty), e.g. a wrong
// password.
func (p *Proxy) URLWith(user, password string) string {
	u := url.URL{Scheme: "http", Host: p.Addr}
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

// Tunnels is how many CONNECT tunnels the proxy has opened.
func (p *Proxy) Tunnels() int { return int(p.tunnels.Load()) }

// Refused is how many requests the proxy answered with 407 (missing or wrong credentials).
func (p *Proxy) Refused() int { return int(p.refused.Load()) }

// BytesUpstream is how many bytes clients sent through the tunnels: it moves with every
// request sent over a tunnel, also one that reuses a kept-alive connection.
func (p *Proxy) BytesUpstream() int64 { return p.upstream.Load() }

// Targets returns the CONNECT targets of the tunnels opened so far, as clients named them.
func (p *Proxy) Targets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

// Close stops the proxy, closes every open tunnel and waits for their goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	err := p.srv.Close()
	p.wg.Wait()
	return err
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if p.wantAuth != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Proxy-Authorization")), []byte(p.wantAuth)) != 1 {
		p.refused.Add(1)
		w.Header().Set("Proxy-Authenticate", `Basic realm="testproxy"`)
		http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
		return
	}
	if r.Method != http.MethodConnect {
		// Plain-HTTP forwarding is not what an HTTPS client asks for; refusing it makes a
		// client that skipped TLS fail loudly.
		http.Error(w, "only CONNECT is supported", http.StatusMethodNotAllowed)
		return
	}
	target := r.Host
	dialAddr, ok := p.opts.Hosts[target]
	if !ok {
		dialAddr = target
	}
	if err := checkLoopback(dialAddr); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return
	}
	upstream, err := net.DialTimeout("tcp", dialAddr, dialTimeout)
	if err != nil {
		http.Error(w, "dialing the target failed", http.StatusBadGateway)
		return
	}
	client, buffered, err := http.NewResponseController(w).Hijack()
	if err != nil {
		upstream.Close()
		http.Error(w, "hijacking failed", http.StatusInternalServerError)
		return
	}
	if _, err := client.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n")); err != nil {
		client.Close()
		upstream.Close()
		return
	}
	if !p.track(client, upstream, target) {
		client.Close()
		upstream.Close()
		return
	}
	p.tunnels.Add(1)
	// Either direction ending ends the tunnel: closing both connections unblocks the other.
	var once sync.Once
	done := func() { once.Do(func() { p.untrack(client, upstream) }) }
	go func() {
		defer p.wg.Done()
		defer done()
		// buffered.Reader holds anything the client sent right after the CONNECT header.
		_, _ = io.Copy(countingWriter{upstream, &p.upstream}, buffered.Reader)
	}()
	go func() {
		defer p.wg.Done()
		defer done()
		_, _ = io.Copy(client, upstream)
	}()
}

// track records a tunnel's connections so Close can end them, and counts its two copying
// goroutines (under the lock, so Close's Wait cannot start between the check and the Add);
// it refuses after Close.
func (p *Proxy) track(client, upstream net.Conn, target string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(2)
	p.conns[client], p.conns[upstream] = true, true
	p.targets = append(p.targets, target)
	return true
}

func (p *Proxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// countingWriter counts the bytes written through it as they flow, not when a copy ends.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(b []byte) (int, error) {
	// Counted before the write: once written, the upstream may answer and the client read
	// the answer before a count after the write lands (a test would see no bytes move).
	c.n.Add(int64(len(b)))
	n, err := c.w.Write(b)
	if n < len(b) {
		c.n.Add(int64(n - len(b)))
	}
	return n, err
}

// checkLoopback refuses any address but a loopback IP and port: the proxy must never
// reach beyond the machine, whatever a test configures.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("target %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errors.New("refusing target " + addr + ": not a loopback IP address (map host names with Options.Hosts)")
	}
	return nil
}
