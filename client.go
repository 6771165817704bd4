package navercommerce

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-retryablehttp"
)

const (
	tokenPath = "/v1/oauth2/token"
	// accountPath is an authenticated API that every token may call; a drop asks it whether
	// Naver still accepts a token (see tokenAccepted).
	accountPath = "/v1/seller/account"
	// signingSkew is how far in the past the signed timestamp is: Naver rejects timestamps
	// from its future, so a Vault clock slightly ahead of Naver's must not fail every request.
	signingSkew = 5 * time.Second
	// maxResponseBytes bounds what is read from Naver, whatever it sends.
	maxResponseBytes = 1 << 20
	// maxTokenLifetime is the longest expires_in accepted; Naver's tokens live 3 hours.
	maxTokenLifetime = 24 * time.Hour
	retryWaitMin     = 250 * time.Millisecond
	retryWaitMax     = 2 * time.Second
	maxErrorMessage  = 300
)

// Token types Naver knows. SELF reads the application's own data; SELLER acts for a seller
// who authorised the application, named by account_id.
const (
	tokenTypeSelf   = "SELF"
	tokenTypeSeller = "SELLER"
)

// accessToken is a token as cached and served. Naver's expiry lies somewhere between
// ExpiresAt, reckoned from the moment the request was sent (so never later than Naver's),
// and LatestExpiry, reckoned from the moment the answer arrived (never earlier). Tokens are
// served by the first; the 30-minute rule is judged by the second, so that the plugin asks
// only when Naver must issue a new token, however slow the request was.
type accessToken struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	ExpiresAt    time.Time `json:"expires_at"`
	LatestExpiry time.Time `json:"latest_expiry,omitzero"`
}

// naverClient asks Naver's token endpoint for tokens of one application.
type naverClient struct {
	tokenURL string
	clientID string
	secret   clientSecret
	http     *retryablehttp.Client
	now      func() time.Time
	logger   hclog.Logger
	// digest replaces bcrypt in signatures (a simulation); nil: bcrypt.
	digest SignatureDigest

	// The signature depends only on the timestamp (the client ID and secret are the
	// client's): requests sent in the same millisecond, such as a periodic run renewing many
	// keys of the application at once, share the last one instead of each paying for bcrypt.
	signMu          sync.Mutex
	signedTimestamp string
	signature       string
	signaturesMade  int // bcrypt hashes computed, for tests
}

type naverClientConfig struct {
	baseURL    string
	clientID   string
	secret     clientSecret
	maxRetries int
	proxyURL   string              // empty: HTTP(S)_PROXY from the environment
	transport  http.RoundTripper   // tests; nil: a pooled transport from go-cleanhttp
	tlsConfig  *tls.Config         // tests: trust a test server; nil: the system's roots
	retryWait  func(time.Duration) // a simulation: takes the waits between retries; nil: sleep them
	digest     SignatureDigest     // a simulation: replaces bcrypt in signatures; nil: bcrypt
	now        func() time.Time
	logger     hclog.Logger
}

func newNaverClient(cfg naverClientConfig) (*naverClient, error) {
	transport := cfg.transport
	if transport == nil {
		t := cleanhttp.DefaultPooledTransport() // honours HTTP_PROXY/HTTPS_PROXY/NO_PROXY
		if cfg.tlsConfig != nil {
			t.TLSClientConfig = cfg.tlsConfig.Clone()
		}
		if cfg.proxyURL != "" {
			u, err := url.Parse(cfg.proxyURL)
			if err != nil {
				return nil, fmt.Errorf("parsing proxy URL: %w", err)
			}
			t.Proxy = http.ProxyURL(u)
		}
		t.OnProxyConnectResponse = checkProxyConnect
		transport = t
	}
	rc := retryablehttp.NewClient()
	rc.HTTPClient = &http.Client{
		Transport: transport,
		// Naver's token endpoint does not redirect; following one could send the signed form
		// somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	rc.RetryMax = cfg.maxRetries
	rc.RetryWaitMin, rc.RetryWaitMax = retryWaitMin, retryWaitMax
	rc.CheckRetry = checkRetry
	rc.Backoff = retryBackoff
	if wait := cfg.retryWait; wait != nil {
		rc.Backoff = func(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
			wait(retryBackoff(min, max, attempt, resp))
			return 0
		}
	}
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	// Every retry, after its wait, is counted against the key's and the application's
	// budgets (in storage) before it is sent, or not sent.
	rc.PrepareRetry = func(req *http.Request) error {
		if gate := attemptGateFrom(req.Context()); gate != nil {
			return gate.retry(req.Context())
		}
		return nil
	}
	rc.Logger = nil
	if cfg.logger != nil {
		rc.Logger = cfg.logger.Named("http")
	}
	return &naverClient{
		tokenURL: strings.TrimRight(cfg.baseURL, "/") + tokenPath,
		clientID: cfg.clientID,
		secret:   cfg.secret,
		http:     rc,
		now:      cfg.now,
		logger:   cfg.logger,
		digest:   cfg.digest,
	}, nil
}

// sign returns client_secret_sign for timestamp, reusing the last one made for the same
// timestamp. The hash runs outside the lock, so concurrent requests of different
// milliseconds do not wait for each other.
func (c *naverClient) sign(timestamp string) (string, error) {
	c.signMu.Lock()
	if c.signature != "" && c.signedTimestamp == timestamp {
		sign := c.signature
		c.signMu.Unlock()
		return sign, nil
	}
	c.signMu.Unlock()
	sign, err := signClientSecretWith(c.secret, c.clientID, timestamp, c.digest)
	if err != nil {
		return "", err
	}
	c.signMu.Lock()
	c.signedTimestamp, c.signature = timestamp, sign
	c.signaturesMade++
	c.signMu.Unlock()
	return sign, nil
}

// requestToken asks Naver for a token of type typ (for accountID when typ is SELLER). The
// context bounds the whole attempt, retries included.
func (c *naverClient) requestToken(ctx context.Context, typ, accountID string) (accessToken, error) {
	sentAt := c.now()
	timestamp := strconv.FormatInt(sentAt.Add(-signingSkew).UnixMilli(), 10)
	// The application's count of this attempt is stored while it is signed; both end
	// before it is sent.
	sign, err := c.sign(timestamp)
	if err != nil {
		return accessToken{}, err
	}
	if gate := attemptGateFrom(ctx); gate != nil {
		if err := gate.first(ctx); err != nil {
			return accessToken{}, err
		}
	}
	secrets := signatureSecrets(sign)
	form := url.Values{
		"client_id":          {c.clientID},
		"timestamp":          {timestamp},
		"grant_type":         {"client_credentials"},
		"client_secret_sign": {sign},
		"type":               {typ},
	}
	if typ == tokenTypeSeller {
		// Never for SELF: Naver counts it as a non-compliant request.
		form.Set("account_id", accountID)
	}
	// The signed timestamp is sent unchanged on retries; all of them end within the request
	// timeout, far inside Naver's 5-minute window.
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return accessToken{}, fmt.Errorf("building token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")

	resp, err := c.http.Do(req)
	receivedAt := c.now()
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return accessToken{}, &upstreamError{Err: redactError(err, secrets...)}
	}
	defer resp.Body.Close()
	// The gateway's headers are its text too: a trace ID could echo the signature.
	trace := traceID(resp, secrets)
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return accessToken{}, &upstreamError{StatusCode: resp.StatusCode, TraceID: trace, Err: fmt.Errorf("reading response: %w", redactError(err, secrets...))}
	}
	if len(body) > maxResponseBytes {
		return accessToken{}, &upstreamError{StatusCode: resp.StatusCode, TraceID: trace, Err: fmt.Errorf("response larger than %d bytes", maxResponseBytes)}
	}
	c.logRateLimits(resp, typ, trace)
	if resp.StatusCode != http.StatusOK {
		return accessToken{}, decodeErrorResponse(resp, body, secrets)
	}
	tok, err := decodeTokenResponse(body, sentAt, receivedAt)
	if err != nil {
		return accessToken{}, &upstreamError{StatusCode: resp.StatusCode, TraceID: trace, Err: err}
	}
	return tok, nil
}

// checkConnection proves that Naver's gateway can be reached (through the proxy, if one is
// set) without asking for a token: any HTTP answer from the base URL will do.
func (c *naverClient) checkConnection(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, strings.TrimSuffix(c.tokenURL, tokenPath), nil)
	if err != nil {
		return fmt.Errorf("building connection check: %w", err)
	}
	resp, err := c.http.HTTPClient.Do(req)
	if err != nil {
		return &upstreamError{Err: err}
	}
	resp.Body.Close()
	return nil
}

// tokenAccepted asks Naver's gateway whether it still accepts token, with one
// authenticated API call that is not a token request: 401 means it does not; a 2xx, or a
// 403 for a call the token may not make, means it does. Anything else tells nothing, and
// is an error.
func (c *naverClient) tokenAccepted(ctx context.Context, token string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.tokenURL, tokenPath)+accountPath, nil)
	if err != nil {
		return false, fmt.Errorf("building the token check: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.HTTPClient.Do(req)
	if err != nil {
		return false, &upstreamError{Err: fmt.Errorf("checking whether Naver still accepts the token: %w", redactError(err, token))}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return false, nil
	case resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusForbidden:
		// Authenticated: the answer, or a refusal of what this token may call.
		return true, nil
	}
	// A redirect, a 404 (another base URL), a 429 or a 5xx tell nothing of the token.
	return false, fmt.Errorf("checking whether Naver still accepts the token: %w", decodeErrorResponse(resp, body, []string{token}))
}

func (c *naverClient) logRateLimits(resp *http.Response, typ, trace string) {
	if c.logger == nil || !c.logger.IsDebug() {
		return
	}
	args := []any{"type", typ, "status", resp.StatusCode, "trace_id", trace}
	for _, h := range []string{
		"GNCP-GW-RateLimit-Replenish-Rate", "GNCP-GW-RateLimit-Burst-Capacity", "GNCP-GW-RateLimit-Remaining",
		"GNCP-GW-Quota-Period", "GNCP-GW-Quota-Limit", "GNCP-GW-Quota-Remaining",
	} {
		if v := resp.Header.Get(h); v != "" {
			args = append(args, strings.ToLower(strings.TrimPrefix(h, "GNCP-GW-")), v)
		}
	}
	c.logger.Debug("naver token response", args...)
}
