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
	}
	if f.RetryAfter == "" {
		f.RetryAfter = fr.RetryAfterGo
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
		if !allowMethod(w, r, http.MethodPost) {
			return
		}
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
		w.WriteHeader(http.StatusNoContent)
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
	case adminPrefix + "verify":
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
