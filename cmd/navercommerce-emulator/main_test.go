package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
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
