package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func noEnv(string) string { return "" }

func TestRunServesAndShutsDown(t *testing.T) {
	urlFile := filepath.Join(t.TempDir(), "url")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-listen", "127.0.0.1:0", "-url-file", urlFile, "-account-ids", "a, b"}, noEnv, &stdout, &stderr)
	}()

	var base string
	deadline := time.Now().Add(30 * time.Second)
	for base == "" {
		if b, err := os.ReadFile(urlFile); err == nil {
			base = strings.TrimSpace(string(b))
		} else if time.Now().After(deadline) {
			t.Fatalf("url file never appeared; stderr:\n%s", stderr.String())
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !strings.HasPrefix(base, "http://127.0.0.1:") || !strings.HasSuffix(base, "/external") {
		t.Fatalf("base URL %q", base)
	}

	res, err := http.Get(strings.TrimSuffix(base, "/external") + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	json.NewDecoder(res.Body).Decode(&st)
	res.Body.Close()
	if _, ok := st["token_requests"]; !ok {
		t.Fatalf("stats %v", st)
	}
	res, err = http.Post(base+"/v1/oauth2/token", "application/x-www-form-urlencoded", strings.NewReader("client_id=demo-client-id&type=SELF"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest {
		t.Fatalf("incomplete token request: status %d", res.StatusCode)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	if want := "navercommerce-emulator: listening on " + base + "\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
	if !strings.Contains(stderr.String(), "status=400") {
		t.Errorf("token request not logged:\n%s", stderr.String())
	}
	if _, err := os.Stat(urlFile); !os.IsNotExist(err) {
		t.Errorf("url file left behind: %v", err)
	}
}

func TestFlagsAndEnvironment(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{name: "defaults", check: func(t *testing.T, o options) {
			if o.listen != "127.0.0.1:9443" || o.clientID != "demo-client-id" || o.clientSecret != defaultSecret ||
				o.tokenLifetime != 3*time.Hour || o.reuseThreshold != 30*time.Minute || o.basePath != "/external" {
				t.Errorf("defaults %+v", o)
			}
		}},
		{name: "environment", env: map[string]string{
			"NAVER_EMULATOR_CLIENT_ID": "env-id", "NAVER_EMULATOR_CLIENT_SECRET": " $2a$04$N1Gx7cSLNGTm1gV9kLfDKe\n",
			"NAVER_EMULATOR_TOKEN_LIFETIME": "31m",
		}, check: func(t *testing.T, o options) {
			if o.clientID != "env-id" || o.clientSecret != "$2a$04$N1Gx7cSLNGTm1gV9kLfDKe" || o.tokenLifetime != 31*time.Minute {
				t.Errorf("env %+v", o)
			}
		}},
		{name: "flag beats environment", args: []string{"-client-id", "flag-id"}, env: map[string]string{"NAVER_EMULATOR_CLIENT_ID": "env-id"},
			check: func(t *testing.T, o options) {
				if o.clientID != "flag-id" {
					t.Errorf("client id %q", o.clientID)
				}
			}},
		{name: "new settings default", check: func(t *testing.T, o options) {
			p := o.penaltyConfig()
			if o.tls || o.tlsCertFile != "" || o.latency != 0 || o.latencyJitter != 0 || o.reusedTokenFullLifetime || o.jwtTokens ||
				p != (navercommercetest.PenaltyConfig{RequestsPerHour: 60, Duration: time.Hour}) {
				t.Errorf("defaults %+v, penalty %+v", o, p)
			}
		}},
		{name: "new settings by flag", args: []string{
			"-tls", "-tls-cert-file", "/tmp/x.pem", "-latency", "250ms", "-latency-jitter", "50ms",
			"-reused-token-full-lifetime", "-jwt-tokens", "-penalty=false", "-penalty-violations-allowed", "2",
			"-penalty-requests-per-hour", "-1", "-penalty-duration", "2h",
		}, check: func(t *testing.T, o options) {
			p := o.penaltyConfig()
			if !o.tls || o.tlsCertFile != "/tmp/x.pem" || o.latency != 250*time.Millisecond || o.latencyJitter != 50*time.Millisecond ||
				!o.reusedTokenFullLifetime || !o.jwtTokens ||
				p != (navercommercetest.PenaltyConfig{Disabled: true, ViolationsAllowed: 2, RequestsPerHour: -1, Duration: 2 * time.Hour}) {
				t.Errorf("flags %+v, penalty %+v", o, p)
			}
		}},
		{name: "new settings by environment", env: map[string]string{
			"NAVER_EMULATOR_TLS": "1", "NAVER_EMULATOR_TLS_CERT_FILE": "/tmp/y.pem", "NAVER_EMULATOR_LATENCY": "1s",
			"NAVER_EMULATOR_LATENCY_JITTER": "2s", "NAVER_EMULATOR_REUSED_TOKEN_FULL_LIFETIME": "true",
			"NAVER_EMULATOR_JWT_TOKENS": "true", "NAVER_EMULATOR_PENALTY": "false",
			"NAVER_EMULATOR_PENALTY_VIOLATIONS_ALLOWED": "3", "NAVER_EMULATOR_PENALTY_REQUESTS_PER_HOUR": "10",
			"NAVER_EMULATOR_PENALTY_DURATION": "90m",
		}, check: func(t *testing.T, o options) {
			p := o.penaltyConfig()
			if !o.tls || o.tlsCertFile != "/tmp/y.pem" || o.latency != time.Second || o.latencyJitter != 2*time.Second ||
				!o.reusedTokenFullLifetime || !o.jwtTokens ||
				p != (navercommercetest.PenaltyConfig{Disabled: true, ViolationsAllowed: 3, RequestsPerHour: 10, Duration: 90 * time.Minute}) {
				t.Errorf("env %+v, penalty %+v", o, p)
			}
		}},
		{name: "flag beats environment for booleans", args: []string{"-penalty=true", "-jwt-tokens=false"},
			env: map[string]string{"NAVER_EMULATOR_PENALTY": "false", "NAVER_EMULATOR_JWT_TOKENS": "true"},
			check: func(t *testing.T, o options) {
				if !o.penalty || o.jwtTokens {
					t.Errorf("penalty %v jwt %v", o.penalty, o.jwtTokens)
				}
			}},
		{name: "bad env bool", env: map[string]string{"NAVER_EMULATOR_PENALTY": "maybe"}, wantErr: "NAVER_EMULATOR_PENALTY"},
		{name: "bad env int", env: map[string]string{"NAVER_EMULATOR_PENALTY_REQUESTS_PER_HOUR": "lots"}, wantErr: "NAVER_EMULATOR_PENALTY_REQUESTS_PER_HOUR"},
		{name: "negative latency", args: []string{"-latency", "-1s"}, wantErr: "-latency"},
		{name: "negative jitter", args: []string{"-latency-jitter", "-1s"}, wantErr: "-latency-jitter"},
		{name: "zero penalty duration", args: []string{"-penalty-duration", "0s"}, wantErr: "-penalty-duration"},
		{name: "zero budget", args: []string{"-penalty-requests-per-hour", "0"}, wantErr: "-penalty-requests-per-hour"},
		{name: "cert file without tls", args: []string{"-tls-cert-file", "/tmp/z.pem"}, wantErr: "needs -tls"},
		{name: "bad secret", args: []string{"-client-secret", "hunter2"}, wantErr: "-client-secret"},
		{name: "bad env duration", env: map[string]string{"NAVER_EMULATOR_REUSE_THRESHOLD": "soon"}, wantErr: "NAVER_EMULATOR_REUSE_THRESHOLD"},
		{name: "zero lifetime", args: []string{"-token-lifetime", "0s"}, wantErr: "-token-lifetime"},
		{name: "stray argument", args: []string{"serve"}, wantErr: "unexpected arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			o, err := parseFlags(tc.args, getenv, &bytes.Buffer{})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, o)
		})
	}
}

func TestRefusesNonLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:0": true, "[::1]:0": true, "localhost:9443": true, "127.1.2.3:80": true,
		"0.0.0.0:9443": false, ":9443": false, "[::]:9443": false, "192.168.1.10:9443": false, "example.com:80": false, "127.0.0.1": false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
	err := run(context.Background(), []string{"-listen", "0.0.0.0:0"}, noEnv, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "non-loopback") {
		t.Fatalf("run with 0.0.0.0: %v", err)
	}
}

// startRun runs the command with args until the test ends and returns its
// base URL (from -url-file) and its stderr.
func startRun(t *testing.T, args ...string) (base string, stderr *syncBuffer) {
	t.Helper()
	urlFile := filepath.Join(t.TempDir(), "url")
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-listen", "127.0.0.1:0", "-url-file", urlFile}, args...), noEnv, &syncBuffer{}, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("run did not return after cancellation")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(urlFile); err == nil {
			return strings.TrimSpace(string(b)), stderr
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("url file never appeared; stderr:\n%s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRunTLS serves HTTPS with a fresh certificate written to -tls-cert-file
// (before the URL file), which is all a client needs to trust it.
func TestRunTLS(t *testing.T) {
	certFile := filepath.Join(t.TempDir(), "emulator.pem")
	base, stderr := startRun(t, "-tls", "-tls-cert-file", certFile)
	if !strings.HasPrefix(base, "https://127.0.0.1:") {
		t.Fatalf("base URL %q", base)
	}
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatalf("the certificate file is not there once the URL is: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("-tls-cert-file is not a PEM certificate:\n%s", pemBytes)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()

	app := navercommercetest.Application{ClientID: "demo-client-id", ClientSecret: defaultSecret}
	res, err := client.Do(navercommercetest.NewTokenRequest(base, app, "SELF", "", time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.TLS == nil {
		t.Fatalf("token request over TLS: status %d", res.StatusCode)
	}
	// Without the certificate, a client refuses the server.
	if _, err := http.Get(strings.TrimSuffix(base, "/external") + "/_emulator/stats"); err == nil {
		t.Fatal("a client without the certificate trusted the emulator")
	}
	if !strings.Contains(stderr.String(), "status=200") {
		t.Fatalf("token request not logged:\n%s", stderr.String())
	}
}

// TestRunSettings starts the command with the new settings and checks them
// through the admin endpoints and the answers.
func TestRunSettings(t *testing.T) {
	base, stderr := startRun(t, "-latency", "200ms", "-jwt-tokens", "-reused-token-full-lifetime",
		"-penalty-requests-per-hour", "2", "-penalty-duration", "2h")
	root := strings.TrimSuffix(base, "/external")
	app := navercommercetest.Application{ClientID: "demo-client-id", ClientSecret: defaultSecret}
	ask := func(typ, account string) (int, string) {
		t.Helper()
		start := time.Now()
		res, err := http.DefaultClient.Do(navercommercetest.NewTokenRequest(base, app, typ, account, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("answered in %v, under -latency", d)
		}
		var body struct {
			AccessToken string `json:"access_token"`
			Code        string `json:"code"`
		}
		json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body.AccessToken + body.Code
	}
	if status, tok := ask("SELF", ""); status != 200 || strings.Count(tok, ".") != 2 {
		t.Fatalf("first request: %d, token %q (want JWT-shaped)", status, tok)
	}
	ask("SELLER", "a")
	if status, code := ask("SELLER", "b"); status != http.StatusTooManyRequests || code != "GW.RATE_LIMIT" {
		t.Fatalf("third request with a budget of 2: %d %s", status, code)
	}

	res, err := http.Get(root + "/_emulator/penalty")
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	json.NewDecoder(res.Body).Decode(&p)
	res.Body.Close()
	if p["requests_per_hour"] != float64(2) || p["duration"] != "2h0m0s" || p["disabled"] != false {
		t.Fatalf("penalty settings %v", p)
	}
	res, err = http.Get(root + "/_emulator/stats")
	if err != nil {
		t.Fatal(err)
	}
	var st navercommercetest.Stats
	json.NewDecoder(res.Body).Decode(&st)
	res.Body.Close()
	if !st.Penalties["demo-client-id"].Active || !strings.Contains(st.PenaltyReason, "too many token requests") {
		t.Fatalf("stats %+v", st)
	}
	for _, want := range []string{"latency=200ms", "jwt_tokens=true", "reused_token_full_lifetime=true", "penalty: on", "PENALTY:"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
}

// TestRunOutageAimedAndEnded rehearses a seller's outage against the command,
// as the README's recipe does: a fault aimed at one account answers only its
// token requests, and DELETE /_emulator/faults ends the outage with every
// token handed out still working.
func TestRunOutageAimedAndEnded(t *testing.T) {
	base, stderr := startRun(t, "-account-ids", "ncp_a,ncp_b", "-penalty=false")
	root := strings.TrimSuffix(base, "/external")
	app := navercommercetest.Application{ClientID: "demo-client-id", ClientSecret: defaultSecret}
	ask := func(account string) (int, string) {
		t.Helper()
		res, err := http.DefaultClient.Do(navercommercetest.NewTokenRequest(base, app, "SELLER", account, time.Now()))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var body struct {
			AccessToken string `json:"access_token"`
		}
		json.NewDecoder(res.Body).Decode(&body)
		return res.StatusCode, body.AccessToken
	}
	admin := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, root+"/_emulator/"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	works := func(tok string) bool {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/v1/seller/account", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}

	_, tokA := ask("ncp_a")
	_, tokB := ask("ncp_b")
	if status, body := admin(http.MethodPost, "faults", `{"status": 503, "count": 1000, "account_id": "ncp_a"}`); status != http.StatusNoContent {
		t.Fatalf("POST faults: %d %s", status, body)
	}
	if status, _ := ask("ncp_a"); status != http.StatusServiceUnavailable {
		t.Fatalf("the aimed seller got %d during its outage, want 503", status)
	}
	if status, tok := ask("ncp_b"); status != http.StatusOK || tok != tokB {
		t.Fatalf("another seller got %d %q during ncp_a's outage, want 200 and its token", status, tok)
	}
	if status, body := admin(http.MethodDelete, "faults", ""); status != http.StatusOK || !strings.Contains(body, `"cleared":1`) {
		t.Fatalf("DELETE faults: %d %s", status, body)
	}
	if status, tok := ask("ncp_a"); status != http.StatusOK || tok != tokA {
		t.Fatalf("after the outage ncp_a got %d %q, want 200 and its token again", status, tok)
	}
	if !works(tokA) || !works(tokB) {
		t.Fatal("a token handed out before the outage died when it ended")
	}
	for _, want := range []string{`queued a fault: status=503 count=1000`, `account_id="ncp_a" only`, "cleared 1 queued faults"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, stderr.String())
		}
	}
}

// The start-up line comes first, before anything can fail, so that a log without it means the
// process never ran; a refusal follows it.
func TestRunWritesItsStartUpLineFirst(t *testing.T) {
	want := fmt.Sprintf("navercommerce-emulator: starting (pid %d)\n", os.Getpid())
	for _, args := range [][]string{{"-no-such-flag"}, {"-listen", "0.0.0.0:0"}, {"-client-secret", "x"}} {
		var stderr bytes.Buffer
		if err := run(context.Background(), args, noEnv, &bytes.Buffer{}, &stderr); err == nil {
			t.Fatalf("run %q succeeded", args)
		}
		if !strings.HasPrefix(stderr.String(), want) {
			t.Errorf("run %q: stderr %q does not start with %q", args, stderr.String(), want)
		}
	}
}
