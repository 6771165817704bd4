package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	navercommerce "github.com/navercommerce/vault-plugin-secrets-navercommerce"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// The network between the plugin and the emulator: faults, latency and stalls on the way,
// and the checks of every request that reaches Naver.

// transport carries the backend's requests to the emulator's handler in process, applying
// the faults in force, and records what every key sent.
type transport struct{ a *app }

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	a, w := t.a, t.a.w
	at := attemptAt{arrived: w.now(), req: req.Context()}
	at.counted, at.stamped = navercommerce.AttemptCountedAt(req)
	if isTokenPath(req.URL.Path) {
		// Counted before anything else: the plugin counts a request before it sends it.
		w.mu.Lock()
		a.sentMinutes[at.arrived.Unix()/60]++
		w.mu.Unlock()
	}
	if err := req.Context().Err(); err != nil {
		// A real transport sends nothing for a cancelled request (an unmounted backend).
		return nil, err
	}
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	form, _ := url.ParseQuery(string(body))
	isToken := isTokenPath(req.URL.Path)
	keyID := form.Get("type") + "|" + form.Get("account_id")

	var k *keyModel
	var verification bool
	if isToken {
		w.mu.Lock()
		k = a.key(keyID)
		k.inFlight++
		if k.inFlight > 1 {
			w.violate(invOneFlight, keyID, "app%d key %s: %d token requests in flight at once", a.idx, keyID, k.inFlight)
		}
		// Judged as the plugin sends it: a restart while it is held below forgets it
		// with the rest of the old backend's counts.
		verification = a.verifying
		w.checkAttempt(a, k, keyID, form, verification, at)
		w.mu.Unlock()
		// A concurrent action may hold the request here, on its way to Naver: a second
		// read of the key must join it, not send its own.
		w.atGate("send:" + keyID)
	}
	w.netMu.Lock()
	resp, err := t.send(req, body, form, isToken, keyID)
	if isToken {
		w.mu.Lock()
		k.inFlight--
		k.answeredAt = w.now()
		if !verification {
			k.lastAt = w.now()
			k.lastOK, k.lastError = false, "no answer"
			if err == nil {
				k.lastError = resp.Status
				if resp.StatusCode == http.StatusOK {
					k.lastOK = w.servable(resp)
				}
			}
			if !k.lastOK {
				k.failedAt = k.lastAt
			}
			if err == nil {
				if ra, ok := retryAfter(resp); ok {
					// Naver asked the key to wait: the plugin's back-off honours it up to
					// its 5-minute ceiling (README, "Failures").
					k.raAt, k.raUntil = w.now(), w.now().Add(min(ra, maxBackoff))
				}
			}
		}
		a.lastAnswered = err == nil && resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500
		a.lastRequestAt = w.now()
		if !a.lastAnswered {
			a.lastFailedAt = w.now()
		}
		w.mu.Unlock()
	}
	w.netMu.Unlock()
	w.atGate("net:" + keyID)
	return resp, err
}

func isTokenPath(p string) bool { return strings.HasSuffix(p, "/v1/oauth2/token") }

// retryAfter reads a Retry-After of whole seconds.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// attemptAt is when an attempt of a token request happened, as the simulator can tell.
type attemptAt struct {
	// arrived: when it reached the transport.
	arrived time.Time
	// counted: when the plugin's budgets counted it (navercommerce.AttemptCountedAt), if
	// stamped. A concurrent action may move the shared clock between that and arrived.
	counted time.Time
	stamped bool
	// req is the plugin's request: its retries carry the same context.
	req context.Context
}

// arrivedNow is an attempt the plugin did not stamp, arriving at w's clock (tests).
func arrivedNow(w *world) attemptAt { return attemptAt{arrived: w.now()} }

// checkAttempt records one HTTP attempt of key k, checking the key's budget and its
// back-off after a failed request. A verification (a config write's SELF request with
// credentials not yet stored) counts against the key's budget (README), but is not the
// key's renewal: it neither waits out the live key's back-off nor sets it, as the plugin
// keeps its outcome out of the live key's state. The key's promises (its budget, back-off,
// Retry-After) are judged when the plugin counted the attempt, once checkCountedAt found
// that instant possible; the application's, whose window has a minute of slack, when it
// arrived. Under w.mu.
func (w *world) checkAttempt(a *app, k *keyModel, keyID string, form url.Values, verification bool, at attemptAt) {
	now := at.arrived
	if at.stamped {
		w.checkCountedAt(a, k, keyID, form, at)
		now = at.counted
	}
	k.sentReq = at.req
	w.stats.NaverRequests++
	w.hourly[int64(a.idx)<<40|at.arrived.Unix()/3600]++
	w.minutely[int64(at.arrived.Sub(epoch)/time.Minute)]++
	w.fragments.add(form.Get("client_secret_sign"))
	if ts := form.Get("timestamp"); ts != k.lastTS && !verification {
		// A new request, not a retry of the last one.
		if k.everFetch && !k.lastOK && k.lastAt.After(k.resetAt) && now.Sub(k.lastAt) < failureBackoff {
			w.violate(invBackoff, keyID, "app%d key %s asked Naver %s after a failed request (%s); reads must share the failure for %s",
				a.idx, keyID, now.Sub(k.lastAt), k.lastError, failureBackoff)
		}
		k.lastTS = ts
		k.everFetch = true
		if p := w.pair; p != nil && p.app == a.idx && p.key == keyID {
			p.requests++
		}
	}
	if !verification && k.raAt.After(k.raReset) && now.Before(k.raUntil) {
		w.violate(invRetryAfter, keyID, "app%d key %s asked Naver %s after a %s answer whose Retry-After asked it to wait %s",
			a.idx, keyID, now.Sub(k.raAt).Round(time.Second), k.lastError, k.raUntil.Sub(k.raAt))
	}
	if verification && now.Sub(a.lastTokenStorageFault) < time.Minute {
		w.noteKey(fmt.Sprint(a.idx)+"|"+keyID, noteVerifyAfterFault)
	}
	w.checkAppBudget(a, keyID, at.arrived)
	cut := now.Add(-time.Hour)
	i := 0
	for i < len(k.attempts) && !k.attempts[i].After(cut) {
		i++
	}
	k.attempts = insertSorted(k.attempts[i:], now)
	if len(k.attempts) > a.perHour && a.cfgWriting == 0 {
		// (While a config write runs, the budget may be the old one or the one written.)
		w.violate(invKeyBudget, keyID, "app%d key %s sent %d requests within an hour; max_token_requests_per_hour is %d",
			a.idx, keyID, len(k.attempts), a.perHour)
	}
}

// checkCountedAt checks the instant the plugin says its budgets counted an attempt against
// what the model saw, so that a plugin cannot hide an attempt from its budget by stamping
// it early: not after the attempt reached the transport; for a new request, not before the
// plugin's clock read when it signed it (its timestamp is signedBefore earlier); for a
// retry (the same request again), not before its wait after the last attempt's answer
// (the simulator's RetryWait moves the clock at least a second). Under w.mu.
func (w *world) checkCountedAt(a *app, k *keyModel, keyID string, form url.Values, at attemptAt) {
	var earliest time.Time
	if at.req != nil && at.req == k.sentReq {
		earliest = k.answeredAt.Add(time.Second)
	} else if ms, err := strconv.ParseInt(form.Get("timestamp"), 10, 64); err == nil {
		earliest = time.UnixMilli(ms).Add(signedBefore)
	}
	if at.counted.After(at.arrived) || at.counted.Before(earliest) {
		w.violate(invCountedWhenSent, keyID, "app%d key %s: the plugin counted an attempt at %s, outside when it can have left (%s to %s)",
			a.idx, keyID, at.counted.Sub(epoch), earliest.Sub(epoch), at.arrived.Sub(epoch))
	}
}

// signedBefore is how far in the past the plugin's signed timestamp is.
const signedBefore = navercommerce.SignedTimestampSkew

// insertSorted adds t to the ascending times ts, keeping them ascending (attempts judged at
// the plugin's instant may reach the model out of order).
func insertSorted(ts []time.Time, t time.Time) []time.Time {
	i := len(ts)
	for i > 0 && ts[i-1].After(t) {
		i--
	}
	ts = append(ts, time.Time{})
	copy(ts[i+1:], ts[i:])
	ts[i] = t
	return ts
}

// servable reports whether a 200 answer carries a token that can be served (10 s of life
// at Naver). It leaves the body readable.
func (w *world) servable(resp *http.Response) bool {
	body, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if json.Unmarshal(body, &tr) != nil {
		return false
	}
	info, ok := w.emu.Token(tr.AccessToken)
	return ok && info.Expires.Sub(w.naverNow()) >= minServableLife
}

// send applies the faults in force and hands the request to the emulator.
func (t *transport) send(req *http.Request, body []byte, form url.Values, isToken bool, keyID string) (*http.Response, error) {
	a, w := t.a, t.a.w
	now := w.now()
	w.mu.Lock()
	var latency time.Duration
	var outage string
	for _, f := range w.faults {
		if !now.Before(f.until) {
			continue
		}
		switch f.kind {
		case faultLatency:
			latency = time.Duration(f.a.N) * time.Millisecond
			if f.a.B {
				latency = time.Duration(hash(w.seed, uint64(now.UnixNano()), uint64(len(keyID)))%uint64(f.a.N+1)) * time.Millisecond
			}
		case faultOutage:
			outage = f.a.S
		}
	}
	var burst string
	if isToken && outage == "" && len(w.burst) > 0 {
		burst, w.burst = w.burst[0], w.burst[1:]
		w.lastBurst = now
	}
	w.mu.Unlock()

	if !reachable(req.URL) {
		// base_url names an address where nothing listens.
		w.count("net-unreachable")
		return nil, fmt.Errorf("sim: dial tcp %s: connect: connection refused", req.URL.Host)
	}
	timeout := a.timeout
	if outage == "stall" || latency >= timeout {
		// No answer within request_timeout: the client gives up.
		w.clock.Advance(timeout)
		w.count("net-stall")
		return nil, fmt.Errorf("sim: no answer within %s: %w", timeout, context.DeadlineExceeded)
	}
	if latency > 0 {
		w.clock.Advance(latency)
		w.count("net-latency")
	}
	switch answer := outage + burst; {
	case !isToken || answer == "":
	case strings.HasPrefix(answer, "5xx"):
		w.emu.InjectFault(navercommercetest.Fault{Status: []int{500, 502, 503, 504}[hash(w.seed, uint64(now.UnixNano()))%4]})
		w.count("naver-5xx")
	case strings.HasPrefix(answer, "429-retry-after"):
		ra := 1 + int(hash(w.seed, uint64(now.UnixNano()))%120)
		if _, secs, ok := strings.Cut(answer, "="); ok {
			ra, _ = strconv.Atoi(secs)
		}
		w.emu.InjectFault(navercommercetest.Fault{Status: 429, RetryAfter: strconv.Itoa(ra)})
		w.count("naver-429-retry-after")
	case strings.HasPrefix(answer, "429"):
		w.emu.InjectFault(navercommercetest.Fault{Status: 429})
		w.count("naver-429")
	default:
		status, _ := strconv.Atoi(answer)
		w.emu.InjectFault(navercommercetest.Fault{Status: status})
		w.count("naver-" + answer)
	}
	// The request as a server receives it (httptest.NewRequest's, without parsing it again).
	r := req.Clone(req.Context())
	r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.Host, r.RequestURI, r.RemoteAddr = req.URL.Host, req.URL.RequestURI(), "192.0.2.1:1234"
	rec := httptest.NewRecorder()
	since := w.naverNow()
	w.emu.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = req
	if isToken && resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusTooManyRequests && strings.HasPrefix(keyID, "SELLER|") {
		// Naver refused the account: the plugin counts it against the bound of its
		// many-seller roles on new accounts (max_new_accounts_per_hour).
		w.mu.Lock()
		a.noteAccountRefused(strings.TrimPrefix(keyID, "SELLER|"), w.now())
		w.mu.Unlock()
	}
	if isToken && resp.StatusCode == http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body = io.NopCloser(bytes.NewReader(b))
		var tr struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(b, &tr) == nil && tr.AccessToken != "" {
			info, ok := w.emu.Token(tr.AccessToken)
			id := fmt.Sprint(a.idx) + "|" + keyID
			w.mu.Lock()
			_, handedBack := w.issued[tr.AccessToken]
			var expires time.Time
			if !handedBack && ok {
				cred := a.credGen
				if a.verifying {
					cred = a.verifyCred
				}
				iss := &issuedToken{app: a.idx, gen: a.gen, cred: cred, key: keyID, at: now, verification: a.verifying,
					expires: info.Expires.Add(-time.Duration(w.skew.Load()))}
				w.issued[tr.AccessToken] = iss
				w.latest[id] = tr.AccessToken
				expires = iss.expires
			}
			if ok {
				a.tokenIssued(a.key(keyID), expires, w.now())
			}
			if w.pendingLoss[id] {
				// Answered to a backend that was shut down meanwhile: the new one never
				// learns of this token.
				delete(w.pendingLoss, id)
				w.lostAtRestart[id] = tr.AccessToken
				w.lostTokens[tr.AccessToken] = true
			}
			w.mu.Unlock()
			if handedBack {
				w.excuseNeedless(a, id, keyID, tr.AccessToken, since)
			}
		}
	}
	return resp, nil
}

func (w *world) count(kind string) {
	w.mu.Lock()
	w.stats.Faults[kind]++
	w.mu.Unlock()
}
