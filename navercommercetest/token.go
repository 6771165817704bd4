package navercommercetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

const (
	traceHeader   = "GNCP-GW-Trace-ID"
	formMediaType = "application/x-www-form-urlencoded"
	jsonMediaType = "application/json;charset=UTF-8"
	maxBodyBytes  = 64 << 10

	// Advertised on successful token responses. Rate limiting is emulated
	// through faults (Status 429) and the penalty, so the values are fixed.
	rateReplenish = "5"
	rateBurst     = "10"
	rateRemaining = "9"
)

// tokenParams are the only parameters the token endpoint knows.
var tokenParams = []string{"client_id", "timestamp", "grant_type", "client_secret_sign", "type", "account_id"}

// naverError is the gateway's error body.
type naverError struct {
	Code          string         `json:"code"`
	Message       string         `json:"message"`
	Timestamp     string         `json:"timestamp"`
	TraceID       string         `json:"traceId"`
	InvalidInputs []invalidInput `json:"invalidInputs,omitempty"`
}

type invalidInput struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Message string `json:"message"`
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

// serveToken handles POST {BasePath}/v1/oauth2/token.
func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request, traceID string) {
	body, bodyErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	query := r.URL.Query()
	isForm := isFormContentType(r.Header.Get("Content-Type"))
	var form url.Values
	if isForm && bodyErr == nil {
		form, _ = url.ParseQuery(string(body)) // errors are reported by validation
	}
	// Attribute the request to its key even when it is malformed, so
	// per-key counters and in-flight tracking see every attempt.
	param := func(name string) string {
		if v := form.Get(name); v != "" {
			return v
		}
		return query.Get(name)
	}
	key := tokenKey{param("client_id"), param("type"), param("account_id")}
	seq, inFlight := e.arrive(key)
	defer e.leave(key)

	e.recordCompliance(r, key, seq, form, query, inFlight)

	// Everything below is judged at the emulator's clock after the hold.
	held, present := e.hold(r)
	var status int
	var outcome string
	if present {
		status, outcome = e.answerToken(w, r, traceID, key, seq, body, bodyErr, isForm)
	} else {
		outcome = "client went away during the latency"
	}
	if held > 0 {
		outcome += fmt.Sprintf(" (held %v)", held)
	}
	requests, maxInFlight := e.keyCounters(key)
	e.logf("token request: status=%d type=%q client_id=%q account_id=%q key_requests=%d key_max_in_flight=%d outcome=%s",
		status, key.typ, key.clientID, key.accountID, requests, maxInFlight, outcome)
}

// recordCompliance records violations that Naver penalises whatever the
// answer, so it runs before faults and validation.
func (e *Emulator) recordCompliance(r *http.Request, key tokenKey, seq uint64, form, query url.Values, inFlight int) {
	now := e.now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if r.URL.RawQuery != "" {
		e.violationLocked(key, seq, now, "parameters in query string: %s sent %s in the URL instead of the form body",
			key, strings.Join(sortedKeys(query), ","))
	}
	typ := form.Get("type")
	if typ == "" {
		typ = query.Get("type")
	}
	_, inForm := form["account_id"]
	_, inQuery := query["account_id"]
	if typ == "SELF" && (inForm || inQuery) {
		e.violationLocked(key, seq, now, "account_id with type=SELF: %s", key)
	}
	if inFlight > 1 {
		e.violationLocked(key, seq, now, "concurrent token requests: %d in flight for %s", inFlight, key)
	}
}

// answerToken writes the answer and returns its status and a log note.
func (e *Emulator) answerToken(w http.ResponseWriter, r *http.Request, traceID string, key tokenKey, seq uint64, body []byte, bodyErr error, isForm bool) (int, string) {
	// The request has reached the gateway: it counts against the
	// application's budget whatever the answer.
	e.countRequest(key.clientID)
	if f, ok := e.nextFault(key); ok {
		if status, note, done := e.applyFault(w, r, traceID, f); done {
			return status, note
		}
	}
	if v := e.judgePenalty(key.clientID, seq); v.refused {
		if e.PenaltySettings().RetryAfter {
			w.Header().Set("Retry-After", strconv.FormatInt(int64((v.retryAfter+time.Second-1)/time.Second), 10))
		}
		msg := fmt.Sprintf("token requests of this application are limited to about one per hour until %s: %s",
			naverTimestamp(v.until), v.reason)
		return e.writeError(w, traceID, http.StatusTooManyRequests, "GW.RATE_LIMIT", msg, nil), "penalised until " + naverTimestamp(v.until)
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return e.writeError(w, traceID, http.StatusMethodNotAllowed, "MethodNotAllowed", "only POST is allowed", nil), "wrong method " + r.Method
	}
	if r.URL.RawQuery != "" {
		var inputs []invalidInput
		for _, name := range sortedKeys(r.URL.Query()) {
			inputs = append(inputs, invalidInput{Name: name, Type: "NotAllowed", Message: "must be sent in the form body, not in the query string"})
		}
		return e.writeError(w, traceID, http.StatusBadRequest, "BadRequest",
			"parameters must be sent in the form body, not in the query string", inputs), "parameters in query string"
	}
	if !isForm {
		return e.writeError(w, traceID, http.StatusUnsupportedMediaType, "UnsupportedMediaType",
			"Content-Type must be "+formMediaType, nil), fmt.Sprintf("content type %q", r.Header.Get("Content-Type"))
	}
	if bodyErr != nil {
		return e.writeError(w, traceID, http.StatusBadRequest, "BadRequest", "the request body could not be read", nil), "body: " + bodyErr.Error()
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return e.writeError(w, traceID, http.StatusBadRequest, "BadRequest", "the request body is not valid "+formMediaType, nil), "form: " + err.Error()
	}
	if inputs := validateTokenForm(form); len(inputs) > 0 {
		names := make([]string, len(inputs))
		for i, in := range inputs {
			names[i] = in.Name + ":" + in.Type
		}
		return e.writeError(w, traceID, http.StatusBadRequest, "BadRequest", "invalid request parameters", inputs),
			"invalid " + strings.Join(names, ",")
	}

	e.mu.Lock()
	app := e.apps[key.clientID]
	var sec clientSecret
	var generation int
	var accountAllowed bool
	if app != nil {
		sec, generation = app.secret, app.generation
		accountAllowed = app.accounts == nil || key.typ != "SELLER" || app.accounts[key.accountID]
	}
	now := e.now()
	e.mu.Unlock()

	if app == nil {
		return e.writeError(w, traceID, http.StatusForbidden, "GW.AUTHN", "client_id is invalid", nil), "unknown client"
	}
	ts := form.Get("timestamp")
	tsMillis, _ := strconv.ParseInt(ts, 10, 64) // validated above
	age := time.Duration(now.UnixMilli()-tsMillis) * time.Millisecond
	if age < 0 || age > e.window {
		msg := fmt.Sprintf("timestamp is out of the allowed range (%s)", describeWindow(e.window))
		note := fmt.Sprintf("timestamp %v old", age)
		if age < 0 {
			note = fmt.Sprintf("timestamp %v in the future", -age)
		}
		return e.writeError(w, traceID, http.StatusForbidden, "GW.AUTHN", msg, nil), note
	}
	if reason := e.verifySignature(sec, key.clientID, ts, form.Get("client_secret_sign")); reason != "" {
		return e.writeError(w, traceID, http.StatusForbidden, "GW.AUTHN", "client_secret_sign is invalid", nil), "bad signature: " + reason
	}
	if !accountAllowed {
		return e.writeError(w, traceID, http.StatusForbidden, "GW.AUTHN",
			fmt.Sprintf("account_id %q has not authorised this application", key.accountID), nil), "account not authorised"
	}

	token, expiresIn, reused, err := e.issue(key, generation, seq)
	if err != nil {
		if errors.Is(err, errSecretRotated) {
			return e.writeError(w, traceID, http.StatusForbidden, "GW.AUTHN", "client_secret_sign is invalid", nil), err.Error()
		}
		return e.writeError(w, traceID, http.StatusInternalServerError, "GW.INTERNAL_SERVER_ERROR", "internal error", nil), err.Error()
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("GNCP-GW-RateLimit-Replenish-Rate", rateReplenish)
	h.Set("GNCP-GW-RateLimit-Burst-Capacity", rateBurst)
	h.Set("GNCP-GW-RateLimit-Remaining", rateRemaining)
	writeJSON(w, http.StatusOK, tokenResponse{AccessToken: token, ExpiresIn: expiresIn, TokenType: "Bearer"})
	if reused {
		return http.StatusOK, fmt.Sprintf("reused token (expires_in=%d)", expiresIn)
	}
	return http.StatusOK, fmt.Sprintf("issued new token (expires_in=%d)", expiresIn)
}

// validateTokenForm checks presence and shape of every parameter and returns
// all problems at once, as Naver's invalidInputs does.
func validateTokenForm(form url.Values) []invalidInput {
	var inputs []invalidInput
	bad := func(name, typ, msg string) {
		inputs = append(inputs, invalidInput{Name: name, Type: typ, Message: msg})
	}
	known := make(map[string]bool, len(tokenParams))
	for _, name := range tokenParams {
		known[name] = true
	}
	for _, name := range sortedKeys(form) {
		switch {
		case !known[name]:
			bad(name, "NotAllowed", "unknown parameter")
		case len(form[name]) > 1:
			bad(name, "Duplicate", "must be sent once")
		}
	}
	required := func(name string) (string, bool) {
		v := form.Get(name)
		if v == "" {
			bad(name, "NotBlank", "must not be blank")
			return "", false
		}
		return v, true
	}
	required("client_id")
	if ts, ok := required("timestamp"); ok && !isMillis(ts) {
		bad("timestamp", "Pattern", "must be the current time in milliseconds since the Unix epoch, in decimal")
	}
	if gt, ok := required("grant_type"); ok && gt != "client_credentials" {
		bad("grant_type", "Pattern", "must be client_credentials")
	}
	required("client_secret_sign")
	typ, ok := required("type")
	if ok && typ != "SELF" && typ != "SELLER" {
		bad("type", "Pattern", "must be SELF or SELLER")
	}
	_, hasAccount := form["account_id"]
	switch {
	case typ == "SELLER" && form.Get("account_id") == "":
		bad("account_id", "NotBlank", "is required when type=SELLER")
	case typ == "SELF" && hasAccount:
		bad("account_id", "NotAllowed", "must not be sent when type=SELF")
	}
	return inputs
}

// isMillis reports whether s is a canonical decimal int64 (no sign, no
// leading zeros), since the signature covers the exact string sent.
func isMillis(s string) bool {
	if s == "" || len(s) > 19 || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

func describeWindow(d time.Duration) string {
	if d%time.Minute == 0 {
		if d == time.Minute {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

func isFormContentType(ct string) bool {
	switch ct {
	case "":
		return false
	case formMediaType: // what clients send: no need to parse it
		return true
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != formMediaType {
		return false
	}
	for k, v := range params {
		if k != "charset" || !strings.EqualFold(v, "utf-8") {
			return false
		}
	}
	return true
}

// applyFault answers r according to f. done is false for a delay-only fault,
// after which the request is answered normally.
func (e *Emulator) applyFault(w http.ResponseWriter, r *http.Request, traceID string, f Fault) (status int, note string, done bool) {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return 0, fmt.Sprintf("fault delay %v aborted: client went away", f.Delay), true
		case <-e.closing:
			// The server is shutting down; do not make Close wait.
			panic(http.ErrAbortHandler)
		}
	}
	switch {
	case f.DropConnection:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic(http.ErrAbortHandler)
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		conn.Close()
		return 0, "fault: connection dropped", true
	case f.Body != "":
		status := f.Status
		if status == 0 {
			status = http.StatusOK
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		w.Header().Set("Content-Type", sniffFaultBody(f.Body))
		w.WriteHeader(status)
		io.WriteString(w, f.Body)
		return status, "fault: raw body", true
	case f.Status != 0:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Status < 300 {
			// A success status with nothing to say: an empty body.
			w.WriteHeader(f.Status)
			return f.Status, "fault: empty body", true
		}
		code, msg := defaultFaultError(f.Status)
		if f.Code != "" {
			code = f.Code
		}
		if f.Message != "" {
			msg = f.Message
		}
		return e.writeError(w, traceID, f.Status, code, msg, nil), "fault: " + code, true
	}
	return 0, "", false
}

// sniffFaultBody picks a plausible Content-Type for a raw fault body: an HTML
// error page from a proxy, broken JSON, or plain garbage.
func sniffFaultBody(body string) string {
	b := strings.TrimSpace(body)
	switch {
	case strings.HasPrefix(b, "<"):
		return "text/html; charset=utf-8"
	case strings.HasPrefix(b, "{"), strings.HasPrefix(b, "["):
		return jsonMediaType
	}
	return "text/plain; charset=utf-8"
}

// defaultFaultError gives the gateway's code and message for a status.
func defaultFaultError(status int) (code, message string) {
	switch status {
	case http.StatusBadRequest:
		return "BadRequest", "bad request"
	case http.StatusUnauthorized, http.StatusForbidden:
		return "GW.AUTHN", "authentication failed"
	case http.StatusNotFound:
		return "GW.NOT_FOUND", "not found"
	case http.StatusTooManyRequests:
		return "GW.RATE_LIMIT", "rate limit exceeded"
	case http.StatusInternalServerError:
		return "GW.INTERNAL_SERVER_ERROR", "internal server error"
	case http.StatusBadGateway:
		return "GW.PROXY", "bad gateway"
	case http.StatusServiceUnavailable:
		return "GW.BLOCK", "service unavailable"
	case http.StatusGatewayTimeout:
		return "GW.TIMEOUT", "gateway timeout"
	}
	return "GW.ERROR", strings.ToLower(http.StatusText(status))
}

// serveAccount handles GET {BasePath}/v1/seller/account, a protected API
// that answers only with a valid token.
func (e *Emulator) serveAccount(w http.ResponseWriter, r *http.Request, traceID string) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		e.writeError(w, traceID, http.StatusMethodNotAllowed, "MethodNotAllowed", "only GET is allowed", nil)
		return
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	key, ok := tokenKey{}, false
	if strings.EqualFold(scheme, "Bearer") && token != "" {
		key, ok = e.lookupToken(token)
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="naver-commerce"`)
		e.writeError(w, traceID, http.StatusUnauthorized, "GW.AUTHN", "the access token is missing, invalid or expired", nil)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		AccountID string `json:"accountId"`
		Type      string `json:"type"`
		ClientID  string `json:"clientId"`
	}{key.accountID, key.typ, key.clientID})
}

// writeError writes Naver's error JSON and returns the status.
func (e *Emulator) writeError(w http.ResponseWriter, traceID string, status int, code, message string, inputs []invalidInput) int {
	writeJSON(w, status, naverError{
		Code:          code,
		Message:       message,
		Timestamp:     naverTimestamp(e.now()),
		TraceID:       traceID,
		InvalidInputs: inputs,
	})
	return status
}

// naverTimestamp formats t like the gateway: RFC 3339, milliseconds, KST.
func naverTimestamp(t time.Time) string {
	return t.In(time.FixedZone("KST", 9*60*60)).Format("2006-01-02T15:04:05.000-07:00")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own fixed types are encoded; this cannot happen.
		http.Error(w, "encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", jsonMediaType)
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// errSecretRotated means the secret changed between verifying the signature
// and issuing the token; the old secret must not buy a token.
var errSecretRotated = errors.New("client secret rotated during the request")
