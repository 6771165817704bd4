package navercommercetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// adminPrefix is where the admin endpoints live, outside the base path so
// they can never be mistaken for Naver's API.
const adminPrefix = "/_emulator/"

// faultRequest is the JSON body of POST /_emulator/faults. Both snake_case
// and Go field names are accepted (JSON matching is case-insensitive).
type faultRequest struct {
	Count            int    `json:"count"`
	Status           int    `json:"status"`
	Code             string `json:"code"`
	Message          string `json:"message"`
	RetryAfter       string `json:"retry_after"`
	RetryAfterGo     string `json:"RetryAfter"`
	Delay            string `json:"delay"` // a Go duration, e.g. "2s"
	Body             string `json:"body"`
	DropConnection   bool   `json:"drop_connection"`
	DropConnectionGo bool   `json:"DropConnection"`
	AccountID        string `json:"account_id"`
	AccountIDGo      string `json:"AccountID"`
	Type             string `json:"type"`
}

func (fr faultRequest) fault() (Fault, error) {
	f := Fault{
		Count:          fr.Count,
		Status:         fr.Status,
		Code:           fr.Code,
		Message:        fr.Message,
		RetryAfter:     fr.RetryAfter,
		Body:           fr.Body,
		DropConnection: fr.DropConnection || fr.DropConnectionGo,
		AccountID:      fr.AccountID,
		Type:           fr.Type,
	}
	if f.RetryAfter == "" {
		f.RetryAfter = fr.RetryAfterGo
	}
	if f.AccountID == "" {
		f.AccountID = fr.AccountIDGo
	}
	if fr.Delay != "" {
		d, err := time.ParseDuration(fr.Delay)
		if err != nil {
			return Fault{}, fmt.Errorf("delay: %w", err)
		}
		f.Delay = d
	}
	if err := checkFault(f); err != nil {
		return Fault{}, err
	}
	return f, nil
}

// serveAdmin handles the /_emulator/ endpoints used by tests and demos that
// drive a separate emulator process.
func (e *Emulator) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case adminPrefix + "stats":
		if !allowMethod(w, r, http.MethodGet) {
			return
		}
		writeJSON(w, http.StatusOK, e.Stats())
	case adminPrefix + "faults":
		switch r.Method {
		case http.MethodPost:
			var fr faultRequest
			if err := decodeJSON(r, &fr); err != nil {
				adminError(w, http.StatusBadRequest, err)
				return
			}
			f, err := fr.fault()
			if err != nil {
				adminError(w, http.StatusBadRequest, fmt.Errorf("invalid fault: %w", err))
				return
			}
			e.InjectFault(f)
			e.logf("admin: queued a fault: %s", f.describe())
			w.WriteHeader(http.StatusNoContent)
		case http.MethodDelete:
			// The end of an outage: unlike reset, tokens handed out stay valid.
			n := e.clearFaults()
			e.logf("admin: cleared %d queued faults; tokens are kept", n)
			writeJSON(w, http.StatusOK, struct {
				Cleared int `json:"cleared"`
			}{n})
		default:
			w.Header().Set("Allow", "POST, DELETE")
			adminError(w, http.StatusMethodNotAllowed, fmt.Errorf("use POST to queue a fault or DELETE to clear the queued faults"))
		}
	case adminPrefix + "token-lifetime":
		if !allowMethod(w, r, http.MethodPost) {
			return
		}
		var req struct {
			TokenLifetime string `json:"token_lifetime"`
		}
		if err := decodeJSON(r, &req); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		d, err := time.ParseDuration(req.TokenLifetime)
		if err != nil || d <= 0 {
			adminError(w, http.StatusBadRequest, fmt.Errorf("token_lifetime %q must be a positive Go duration such as \"31m\"", req.TokenLifetime))
			return
		}
		e.SetTokenLifetime(d)
		w.WriteHeader(http.StatusNoContent)
	case adminPrefix + "latency":
		if !allowMethod(w, r, http.MethodPost) {
			return
		}
		var req struct {
			Latency string `json:"latency"`
			Jitter  string `json:"jitter"`
		}
		if err := decodeJSON(r, &req); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		fixed, err := parseOptionalDuration("latency", req.Latency)
		if err == nil {
			var jitter time.Duration
			if jitter, err = parseOptionalDuration("jitter", req.Jitter); err == nil {
				err = e.setLatency(fixed, jitter)
			}
		}
		if err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case adminPrefix + "reused-token-full-lifetime", adminPrefix + "jwt-tokens":
		if !allowMethod(w, r, http.MethodPost) {
			return
		}
		var req struct {
			Enabled *bool `json:"enabled"`
		}
		if err := decodeJSON(r, &req); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		if req.Enabled == nil {
			adminError(w, http.StatusBadRequest, fmt.Errorf(`the field "enabled" (true or false) is required`))
			return
		}
		if r.URL.Path == adminPrefix+"jwt-tokens" {
			e.SetJWTTokens(*req.Enabled)
		} else {
			e.SetReusedTokenFullLifetime(*req.Enabled)
		}
		w.WriteHeader(http.StatusNoContent)
	case adminPrefix + "penalty":
		switch r.Method {
		case http.MethodGet:
			writeJSON(w, http.StatusOK, penaltyJSON(e.PenaltySettings()))
		case http.MethodPost:
			var req penaltyRequest
			if err := decodeJSON(r, &req); err != nil {
				adminError(w, http.StatusBadRequest, err)
				return
			}
			p, err := req.config()
			if err == nil {
				err = e.setPenalty(p)
			}
			if err != nil {
				adminError(w, http.StatusBadRequest, fmt.Errorf("invalid penalty: %w", err))
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Allow", "GET, POST")
			adminError(w, http.StatusMethodNotAllowed, fmt.Errorf("use GET or POST"))
		}
	case adminPrefix + "client-secret":
		if !allowMethod(w, r, http.MethodPost) {
			return
		}
		var req struct {
			ClientID     string `json:"client_id"`
			ClientSecret string `json:"client_secret"`
		}
		if err := decodeJSON(r, &req); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		if err := e.setClientSecret(req.ClientID, req.ClientSecret); err != nil {
			adminError(w, http.StatusBadRequest, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case adminPrefix + "reset":
		if !allowMethod(w, r, http.MethodPost) {
			return
		}
		e.Reset()
		w.WriteHeader(http.StatusNoContent)
	case adminPrefix + "verify", adminPrefix + "kill-token":
		if !allowMethod(w, r, http.MethodPost) {
			return
		}
		// Tokens belong in the body: URLs end up in logs.
		if r.URL.RawQuery != "" {
			adminError(w, http.StatusBadRequest, fmt.Errorf("send the token as the form field \"token\" in the body, not in the URL"))
			return
		}
		if !isFormContentType(r.Header.Get("Content-Type")) {
			adminError(w, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type must be %s", formMediaType))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
		if err != nil {
			adminError(w, http.StatusBadRequest, fmt.Errorf("reading body: %w", err))
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("token") == "" {
			adminError(w, http.StatusBadRequest, fmt.Errorf("the form field \"token\" is required"))
			return
		}
		if r.URL.Path == adminPrefix+"kill-token" {
			writeJSON(w, http.StatusOK, struct {
				Killed bool `json:"killed"`
			}{e.KillToken(form.Get("token"))})
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Valid bool `json:"valid"`
		}{e.TokenValid(form.Get("token"))})
	default:
		adminError(w, http.StatusNotFound, fmt.Errorf("no admin endpoint %s", r.URL.Path))
	}
}

func allowMethod(w http.ResponseWriter, r *http.Request, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	adminError(w, http.StatusMethodNotAllowed, fmt.Errorf("use %s", method))
	return false
}

// decodeJSON decodes exactly one JSON object with no unknown fields, so a
// typo in a test's fault does not silently do nothing.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decoding JSON body: %w", err)
	}
	if dec.More() {
		return fmt.Errorf("decoding JSON body: trailing data after the object")
	}
	return nil
}

func adminError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, struct {
		Error string `json:"error"`
	}{err.Error()})
}

// parseOptionalDuration parses a Go duration; empty means 0.
func parseOptionalDuration(name, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s %q must be a Go duration such as \"250ms\"", name, v)
	}
	return d, nil
}

// penaltyRequest is the JSON body of POST /_emulator/penalty and of its GET
// answer. It replaces all settings: an omitted field takes its default.
type penaltyRequest struct {
	Disabled          bool   `json:"disabled"`
	ViolationsAllowed int    `json:"violations_allowed"`
	RequestsPerHour   int    `json:"requests_per_hour"`
	Duration          string `json:"duration"` // a Go duration; empty = 1h
	RetryAfter        bool   `json:"retry_after"`
}

func (pr penaltyRequest) config() (PenaltyConfig, error) {
	d, err := parseOptionalDuration("duration", pr.Duration)
	if err != nil {
		return PenaltyConfig{}, err
	}
	return PenaltyConfig{
		Disabled:          pr.Disabled,
		ViolationsAllowed: pr.ViolationsAllowed,
		RequestsPerHour:   pr.RequestsPerHour,
		Duration:          d,
		RetryAfter:        pr.RetryAfter,
	}, nil
}

func penaltyJSON(p PenaltyConfig) penaltyRequest {
	return penaltyRequest{
		Disabled:          p.Disabled,
		ViolationsAllowed: p.ViolationsAllowed,
		RequestsPerHour:   p.RequestsPerHour,
		Duration:          p.Duration.String(),
		RetryAfter:        p.RetryAfter,
	}
}
