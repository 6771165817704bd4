package navercommerce

// When the client retries a token request, how long it waits (Retry-After), and a proxy's
// refusal told apart from Naver's.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

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
