package harness

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// EmulatorOptions says how to run the Naver emulator (cmd/navercommerce-emulator).
type EmulatorOptions struct {
	Bin            string // the emulator binary
	Dir            string // created if missing; gets the log (emulator.log) and the URL file
	ClientID       string // default: a random one
	ClientSecret   string // default: NewClientSecret()
	AccountIDs     []string
	TokenLifetime  time.Duration // default: the emulator's (3h)
	ReuseThreshold time.Duration // default: the emulator's (30m)
	ExtraArgs      []string      // more flags, e.g. "-penalty-requests-per-hour=-1"
	// TLS serves HTTPS with a fresh self-signed certificate (-tls), whose PEM the emulator
	// writes to Dir/emulator.pem (Emulator.CertFile); the admin client trusts it.
	TLS bool
	// TLSHostname is one more DNS name in the certificate (-tls-hostname; needs TLS), for a
	// client that reaches the emulator by a name through a proxy.
	TLSHostname string
}

// Emulator is a running Naver emulator process.
type Emulator struct {
	ClientID, ClientSecret string
	URL                    string // the base URL the plugin is configured with (…/external)
	Root                   string // scheme://host:port, where /_emulator/ lives
	CertFile               string // with TLS: the certificate's PEM (for SSL_CERT_FILE); removed when the emulator exits
	Proc                   *Proc
	HTTP                   *http.Client // for the admin API: no proxy, a few kept-alive connections
}

// StartEmulator starts the emulator on a free loopback port and waits until it has written
// its URL. On an error nothing is left running.
func StartEmulator(g *Group, opts EmulatorOptions) (*Emulator, error) {
	if opts.ClientID == "" {
		opts.ClientID = "acc" + RandomHex(8)
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = NewClientSecret()
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("starting the emulator: %w", err)
	}
	urlFile := filepath.Join(opts.Dir, "url")
	args := []string{
		"-listen", "127.0.0.1:0",
		"-client-id", opts.ClientID,
		"-client-secret", opts.ClientSecret,
		"-url-file", urlFile,
	}
	scheme, certFile := "http", ""
	if opts.TLS {
		scheme, certFile = "https", filepath.Join(opts.Dir, "emulator.pem")
		args = append(args, "-tls", "-tls-cert-file", certFile)
	}
	if opts.TLSHostname != "" {
		args = append(args, "-tls-hostname", opts.TLSHostname)
	}
	if len(opts.AccountIDs) > 0 {
		args = append(args, "-account-ids", strings.Join(opts.AccountIDs, ","))
	}
	if opts.TokenLifetime > 0 {
		args = append(args, "-token-lifetime", opts.TokenLifetime.String())
	}
	if opts.ReuseThreshold > 0 {
		args = append(args, "-reuse-threshold", opts.ReuseThreshold.String())
	}
	args = append(args, opts.ExtraArgs...)
	p, err := g.Start("emulator", filepath.Join(opts.Dir, "emulator.log"), ChildEnv(), opts.Bin, args...)
	if err != nil {
		return nil, err
	}
	em := &Emulator{ClientID: opts.ClientID, ClientSecret: opts.ClientSecret, CertFile: certFile, Proc: p}
	err = WaitFor(15*time.Second, 20*time.Millisecond, "the emulator's URL file", func() (bool, error) {
		if p.Exited() {
			return false, Permanent(fmt.Errorf("the emulator exited: %v\n%s", p.Err(), p.Tail(20)))
		}
		data, err := os.ReadFile(urlFile)
		if err != nil {
			return false, err
		}
		em.URL = strings.TrimSpace(string(data))
		// The file is written once the listener is up; a partial write shows as no path.
		u, err := url.Parse(em.URL)
		if err != nil {
			return false, err
		}
		if (u.Scheme == "http" || u.Scheme == "https") && u.Scheme != scheme {
			// Not a partial write: no prefix of one scheme's URL is the other's.
			return false, Permanent(fmt.Errorf("the emulator serves %s, want %s", em.URL, scheme))
		}
		if u.Scheme != scheme || !strings.HasPrefix(u.Host, "127.0.0.1:") || len(u.Path) < 2 {
			return false, fmt.Errorf("URL file holds %q", em.URL)
		}
		em.Root = u.Scheme + "://" + u.Host
		return true, nil
	})
	if err == nil {
		em.HTTP, err = adminClient(certFile) // the certificate is written before the URL file
	}
	if err != nil {
		_ = p.Stop(DefaultStopTimeout)
		return nil, err
	}
	return em, nil
}

// adminClient is the client for the emulator's admin API: no proxy, a few kept-alive
// connections, and trusting the certificate in certFile if there is one.
func adminClient(certFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 8
	if certFile != "" {
		pemBytes, err := os.ReadFile(certFile)
		if err != nil {
			return nil, fmt.Errorf("reading the emulator's certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return nil, fmt.Errorf("%s holds no PEM certificate", certFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// Admin calls the emulator's admin API (/_emulator/path). A body is sent with contentType;
// a 2xx answer is decoded as JSON into out unless out is nil.
func (em *Emulator) Admin(method, path, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequest(method, em.Root+"/_emulator/"+path, body)
	if err != nil {
		return fmt.Errorf("emulator %s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := em.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("emulator %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("emulator %s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("emulator %s %s: HTTP %d: %s", method, path, resp.StatusCode, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("emulator %s %s: %w: %.200s", method, path, err, data)
		}
	}
	return nil
}

// AdminJSON is Admin with a JSON body (v marshalled; nil sends none).
func (em *Emulator) AdminJSON(method, path string, v, out any) error {
	if v == nil {
		return em.Admin(method, path, "", nil, out)
	}
	body, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("emulator %s %s: %w", method, path, err)
	}
	return em.Admin(method, path, "application/json", strings.NewReader(string(body)), out)
}

// Key names a token key the way the emulator's stats do.
func (em *Emulator) Key(typ, accountID string) string {
	return em.ClientID + "|" + typ + "|" + accountID
}

// Stats returns the emulator's counters (GET /_emulator/stats).
func (em *Emulator) Stats() (navercommercetest.Stats, error) {
	var st navercommercetest.Stats
	err := em.Admin(http.MethodGet, "stats", "", nil, &st)
	return st, err
}
