package navercommerce

import (
	"encoding/json"
	"net/http"
	"testing"
)

// The GNCP-GW-Trace-ID header is copied unredacted into the error, the read's answer and
// status's last_error.trace_id, while the same value in the JSON body is redacted.
func TestTraceIDHeaderEchoingSignatureIsRedacted(t *testing.T) {
	gw := &echoingGateway{answer: func(sign string) (int, http.Header, string) {
		h := http.Header{}
		h.Set("GNCP-GW-Trace-ID", sign[:60])
		return http.StatusForbidden, h, `{"code":"GW.AUTHN","message":"client_secret_sign is invalid"}`
	}}
	env := echoingGatewayEnv(t, gw)
	resp, err := env.read("token/store")
	sign := gw.lastSign()
	if sign == "" {
		t.Fatal("no token request reached the gateway")
	}
	assertNoSignatureFragment(t, "the token read's error", errorText(resp, err), sign)

	status, err := env.read("status/store")
	if err != nil || status.IsError() {
		t.Fatalf("status: %v %v", err, status.Error())
	}
	out, _ := json.Marshal(status.Data)
	assertNoSignatureFragment(t, "status/store", string(out), sign)
}

// A 200 whose token_type or expires_in echoes the signature: the decode error quotes 20
// characters of it, unredacted, into the read's error and status's last_error.message.
func TestOddTokenResponseEchoingSignatureIsRedacted(t *testing.T) {
	for _, field := range []string{"token_type", "expires_in"} {
		t.Run(field, func(t *testing.T) {
			gw := &echoingGateway{answer: func(sign string) (int, http.Header, string) {
				body := map[string]any{"access_token": "tok", "token_type": "Bearer", "expires_in": 10800}
				body[field] = sign
				raw, _ := json.Marshal(body)
				return http.StatusOK, nil, string(raw)
			}}
			env := echoingGatewayEnv(t, gw)
			resp, err := env.read("token/store")
			sign := gw.lastSign()
			if sign == "" {
				t.Fatal("no token request reached the gateway")
			}
			assertNoSignatureFragment(t, "the token read's error", errorText(resp, err), sign)
			status, err := env.read("status/store")
			if err != nil || status.IsError() {
				t.Fatalf("status: %v %v", err, status.Error())
			}
			out, _ := json.Marshal(status.Data)
			assertNoSignatureFragment(t, "status/store", string(out), sign)
		})
	}
}
