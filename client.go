package navercommerce

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
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

// tokenResponse is Naver's success body.
type tokenResponse struct {
	AccessToken string          `json:"access_token"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	TokenType   string          `json:"token_type"`
}

// decodeTokenResponse checks a 200 body: anything odd is an error, never a cached token.
func decodeTokenResponse(body []byte, sentAt, receivedAt time.Time) (accessToken, error) {
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return accessToken{}, fmt.Errorf("response is not the expected JSON (%s)", describeBody(body))
	}
	if tr.AccessToken == "" {
		return accessToken{}, errors.New("response has no access_token")
	}
	if strings.ContainsFunc(tr.AccessToken, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return accessToken{}, errors.New("response has an access_token with characters a bearer token cannot hold")
	}
	switch {
	case tr.TokenType == "":
		tr.TokenType = "Bearer"
	case strings.EqualFold(tr.TokenType, "Bearer"):
		tr.TokenType = "Bearer"
	default:
		// Not quoted: a gateway echoing the request could put the signature here.
		return accessToken{}, errors.New("response has a token_type other than Bearer")
	}
	seconds, err := strconv.ParseInt(string(tr.ExpiresIn), 10, 64)
	if err != nil || seconds <= 0 || seconds > int64(maxTokenLifetime/time.Second) {
		return accessToken{}, fmt.Errorf("response has an expires_in that is not a whole number of seconds from 1 to %d",
			int64(maxTokenLifetime/time.Second))
	}
	lifetime := time.Duration(seconds) * time.Second
	tok := accessToken{
		AccessToken:  tr.AccessToken,
		TokenType:    tr.TokenType,
		ExpiresAt:    sentAt.Add(lifetime),
		LatestExpiry: receivedAt.Add(lifetime),
	}
	if lifetime < tokenLifetime {
		// Less than a new token's 3 hours: a handed-back token's life in whole seconds,
		// truncated, so Naver's expiry may be up to a second later. The 30-minute rule
		// judged a second early asks while Naver still has 30m0s: a needless request.
		tok.LatestExpiry = tok.LatestExpiry.Add(time.Second)
	}
	// expires_in is an upper bound (Naver's docs do not say what a handed-back token
	// reports); a JWT's own exp is the token's real expiry, in whole seconds: Naver's
	// expiry lies in [exp, exp+1s). ExpiresAt is capped by exp, LatestExpiry by exp+1s: by
	// exp, the 30-minute rule judged up to a second early asks while Naver still has 30m0s,
	// a needless request (seed 1024, long shape).
	if exp, ok := jwtExpiry(tr.AccessToken); ok {
		if exp.Before(tok.ExpiresAt) {
			tok.ExpiresAt = exp
		}
		if latest := exp.Add(time.Second); latest.Before(tok.LatestExpiry) {
			tok.LatestExpiry = latest
		}
	}
	if tok.LatestExpiry.Before(tok.ExpiresAt) {
		tok.LatestExpiry = tok.ExpiresAt
	}
	return tok, nil
}

// jwtExpiry returns the exp claim of a token that is a JWT; Naver's tokens need not be.
func jwtExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[1]) > 4096 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == "" {
		return time.Time{}, false
	}
	exp, err := claims.Exp.Float64()
	if err != nil || exp <= 0 || exp > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(exp), 0), true
}

// naverError is the JSON body of Naver's gateway errors.
type naverError struct {
	Code          string `json:"code"`
	Message       string `json:"message"`
	TraceID       string `json:"traceId"`
	InvalidInputs []struct {
		Name    string `json:"name"`
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"invalidInputs"`
}

func decodeErrorResponse(resp *http.Response, body []byte, secrets []string) *upstreamError {
	e := &upstreamError{StatusCode: resp.StatusCode, TraceID: traceID(resp, secrets)}
	var ne naverError
	if err := json.Unmarshal(body, &ne); err != nil || (ne.Code == "" && ne.Message == "") {
		e.Message = describeBody(body)
	} else {
		// Redact before cutting: a cut could leave a fragment too short to be recognised.
		e.Code = truncate(redact(ne.Code, secrets...), 60)
		msg := ne.Message
		for _, in := range ne.InvalidInputs {
			msg += fmt.Sprintf("; %s: %s", in.Name, in.Message)
		}
		e.Message = truncate(redact(msg, secrets...), maxErrorMessage)
		if ne.TraceID != "" {
			e.TraceID = truncate(redact(ne.TraceID, secrets...), 100)
		}
	}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), nowFor(resp)); ok {
		e.RetryAfter = d
	}
	return e
}

// upstreamError is a failed token request, described without any secret: Naver support asks
// for the status, code, message and trace ID.
type upstreamError struct {
	StatusCode int // 0: no HTTP answer
	Code       string
	Message    string
	TraceID    string
	RetryAfter time.Duration
	Err        error
}

func (e *upstreamError) Error() string { return e.describe(false) }

// describe is Error, with the advice for a refused account naming the account in the path
// (a many-seller role's read) instead of the role's account_id.
func (e *upstreamError) describe(accountInPath bool) string {
	var b strings.Builder
	if e.StatusCode == 0 {
		b.WriteString("naver token endpoint did not answer")
	} else {
		fmt.Fprintf(&b, "naver answered HTTP %d", e.StatusCode)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.TraceID != "" {
		fmt.Fprintf(&b, " (trace ID %s)", e.TraceID)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; retry after %s", e.RetryAfter.Round(time.Second))
	}
	if hint := e.hint(accountInPath); hint != "" {
		b.WriteString("; ")
		b.WriteString(hint)
	}
	return b.String()
}

// answer is Naver's answer in words, without the plugin's advice.
func (e *upstreamError) answer() string {
	s := e.describe(false)
	if hint := e.hint(false); hint != "" {
		s = strings.TrimSuffix(s, "; "+hint)
	}
	return s
}

// accountRefused reports whether Naver refused the request's seller account: a refusal (not
// a 429) whose message names the account (the hint below follows the same rule).
func (e *upstreamError) accountRefused() bool {
	return e.callerFault() && strings.Contains(strings.ToLower(e.Message), "account")
}

func (e *upstreamError) Unwrap() error { return e.Err }

// callerFault reports whether the request itself was refused (a 4xx other than 429): the
// caller must fix something, and retrying cannot help.
func (e *upstreamError) callerFault() bool {
	return e.StatusCode >= 400 && e.StatusCode < 500 && e.StatusCode != http.StatusTooManyRequests
}

// hint says what to check for this refusal. Naver's message names what it refused (the
// signature, the timestamp, the client ID, the seller's account), so the hint follows it:
// a typo in a seller's account ID must not send an operator to the client secret and the
// clock. Only an unexplained refusal lists every cause.
func (e *upstreamError) hint(accountInPath bool) string {
	msg := strings.ToLower(e.Message)
	switch {
	case e.Code == "GW.IP_NOT_ALLOWED":
		return "register this Vault server's outgoing IP address for the application in the Naver Commerce API center, or set proxy_url to a proxy with a registered address"
	case e.StatusCode == http.StatusTooManyRequests:
		return "Naver is rate limiting this application; excessive token requests can get it limited to about one per hour"
	case e.StatusCode == 0 && errors.Is(e.Err, context.DeadlineExceeded):
		return "raise request_timeout, or check the network path to Naver"
	case !e.callerFault():
		return ""
	case strings.Contains(msg, "account") && accountInPath:
		return "check the account ID in the path (token/<role>/<account_id>): it must be the ID or UID (ncp_...) of a seller who has authorised this application, spelled exactly (a typo, or a seller who revoked the authorisation, gets this answer)"
	case strings.Contains(msg, "account"):
		return "check the role's account_id: it must be the ID or UID (ncp_...) of a seller who has authorised this application, spelled exactly (a typo gets this answer)"
	case strings.Contains(msg, "timestamp"):
		return "check the Vault server's clock (NTP): Naver accepts a signed timestamp only within 5 minutes of its own clock"
	case strings.Contains(msg, "client_secret") || strings.Contains(msg, "signature"):
		return "check client_secret: it must be the application's current secret (re-issuing it in the Naver Commerce API center ends the old one at once) and belong to client_id"
	case strings.Contains(msg, "client_id"):
		return "check client_id: it must be the application ID shown in the Naver Commerce API center"
	case e.StatusCode == http.StatusForbidden || e.StatusCode == http.StatusUnauthorized:
		return "check client_id and client_secret, that the Vault server's clock is right (Naver accepts a signed timestamp only within 5 minutes of its own clock), and for a SELLER role that account_id is a seller who has authorised the application"
	}
	return ""
}

// proxyRefusalError is a proxy's refusal to open a tunnel to Naver: the proxy's answer, not
// Naver's, so it names the proxy (its host, never its credentials) and its status.
type proxyRefusalError struct {
	Proxy      string
	StatusCode int
	Status     string
}

func (e *proxyRefusalError) Error() string {
	msg := fmt.Sprintf("proxy %s refused the tunnel to Naver: HTTP %s", e.Proxy, e.Status)
	if e.StatusCode == http.StatusProxyAuthRequired {
		msg += "; check the user and password in proxy_url (or HTTPS_PROXY of the Vault server)"
	}
	return msg
}

// checkProxyConnect turns a proxy's non-200 answer to CONNECT into a proxyRefusalError
// (net/http would report only the status text, without the proxy).
func checkProxyConnect(_ context.Context, proxy *url.URL, _ *http.Request, resp *http.Response) error {
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	return &proxyRefusalError{Proxy: proxy.Host, StatusCode: resp.StatusCode, Status: truncate(resp.Status, 100)}
}

// checkRetry retries network errors, 429 and 5xx; never a refusal, which would only be
// refused again and counts against the application.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	// A proxy refusing our credentials refuses them again, as Naver refuses a refused
	// request again: an attempt would only spend the budgets.
	if !retryable(resp, err) {
		return false, nil
	}
	// A Retry-After beyond the time left cannot be honoured: give up now with Naver's answer.
	if resp != nil {
		if wait, ok := parseRetryAfter(resp.Header.Get("Retry-After"), nowFor(resp)); ok {
			if deadline, has := ctx.Deadline(); has && time.Until(deadline) < wait {
				return false, nil
			}
		}
	}
	if gate := attemptGateFrom(ctx); gate != nil && !gate.mayRetry(ctx) {
		// Another attempt would go over a budget, or Naver is failing: stop with what we have.
		return false, nil
	}
	return true, nil
}

// retryable reports whether an answer is one retries are for (no answer but a proxy's
// refusal of our credentials, a 429, a 5xx), before any budget is asked.
func retryable(resp *http.Response, err error) bool {
	if err != nil {
		var refusal *proxyRefusalError
		return !errors.As(err, &refusal) || refusal.StatusCode != http.StatusProxyAuthRequired
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
}

// retryBackoff is exponential with full jitter, or Retry-After when Naver sends one that
// asks for a wait (a Retry-After of 0, or a date already past, asks for none: the usual
// back-off still applies, or a retry would go at once).
func retryBackoff(min, max time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if wait, ok := parseRetryAfter(resp.Header.Get("Retry-After"), nowFor(resp)); ok && wait > 0 {
			return wait
		}
	}
	ceiling := min << uint(min2(attempt, 16))
	if ceiling <= 0 || ceiling > max {
		ceiling = max
	}
	return min/2 + rand.N(ceiling-min/2+1)
}

func min2(a, b int) int {
	if a < b {
		return a
	}
	return b
}

// nowFor is the time by the clock of the request resp answers (the plugin's, which a test
// or a simulation may move), or the wall clock.
func nowFor(resp *http.Response) time.Time {
	if resp != nil && resp.Request != nil {
		if gate := attemptGateFrom(resp.Request.Context()); gate != nil {
			return gate.c.now()
		}
	}
	return time.Now()
}

// parseRetryAfter reads a Retry-After header (seconds, or an HTTP date reckoned from now).
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && s >= 0 && s < 86400 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 && d < 24*time.Hour {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

func traceID(resp *http.Response, secrets []string) string {
	return truncate(redact(resp.Header.Get("GNCP-GW-Trace-ID"), secrets...), 100)
}

// describeBody says what an unexpected body was without echoing much of it.
func describeBody(body []byte) string {
	trimmed := strings.TrimSpace(string(body))
	switch {
	case trimmed == "":
		return "empty body"
	case strings.HasPrefix(trimmed, "<"):
		return fmt.Sprintf("an HTML or XML body of %d bytes", len(body))
	default:
		return fmt.Sprintf("an unexpected body of %d bytes", len(body))
	}
}

func truncate(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// minSecretFragment is the shortest run of a secret's characters that is redacted. The
// first 40 characters of a signature decode to the client secret itself, so any fragment of
// a signature could carry part of it; 8 characters never occur by chance in Naver's text.
const minSecretFragment = 8

// signatureSecrets are the forms in which a request's secret material could come back: the
// signature as sent and the bcrypt string it encodes (which starts with the client secret).
func signatureSecrets(sign string) []string {
	secrets := []string{sign}
	if raw, err := base64.StdEncoding.DecodeString(sign); err == nil {
		secrets = append(secrets, string(raw))
	}
	return secrets
}

// redact removes secrets, and every fragment of them of minSecretFragment characters or
// more, from text that came from elsewhere (a gateway could echo input, whole or in part).
func redact(s string, secrets ...string) string {
	var hidden []bool
	for _, secret := range secrets {
		if len(secret) < minSecretFragment {
			continue
		}
		for i := 0; i+minSecretFragment <= len(secret); i++ {
			frag := secret[i : i+minSecretFragment]
			for from := 0; ; {
				j := strings.Index(s[from:], frag)
				if j < 0 {
					break
				}
				if hidden == nil {
					hidden = make([]bool, len(s))
				}
				for k := from + j; k < from+j+minSecretFragment; k++ {
					hidden[k] = true
				}
				from += j + 1
			}
		}
	}
	if hidden == nil {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if !hidden[i] {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString("[redacted]")
		for i < len(s) && hidden[i] {
			i++
		}
	}
	return b.String()
}

func redactError(err error, secrets ...string) error {
	msg := err.Error()
	if red := redact(msg, secrets...); red != msg {
		return errors.New(red)
	}
	return err
}
