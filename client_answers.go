package navercommerce

// Naver's answers to the client: a token checked before it is cached, an error described
// without any secret, and the redaction that keeps secrets out of both.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

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
