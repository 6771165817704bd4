package navercommerce

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

func TestTokenReadReturnsLease(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	resp := env.readToken("store")

	tok := resp.Data["access_token"].(string)
	if !env.naver.TokenValid(tok) {
		t.Fatal("the emulator does not accept the token")
	}
	want := map[string]any{
		"token_type": "Bearer",
		"type":       "SELLER",
		"account_id": testAccount,
		"expires_in": int64(3 * 60 * 60),
		"expires_at": env.clock.Now().Add(3 * time.Hour).UTC().Format(time.RFC3339),
	}
	for k, v := range want {
		if resp.Data[k] != v {
			t.Errorf("%s = %#v, want %#v", k, resp.Data[k], v)
		}
	}
	if resp.Secret == nil {
		t.Fatal("no lease")
	}
	if resp.Secret.TTL != 3*time.Hour || resp.Secret.Renewable {
		t.Errorf("lease ttl=%s renewable=%v, want 3h, not renewable", resp.Secret.TTL, resp.Secret.Renewable)
	}
	if resp.Secret.InternalData["secret_type"] != secretTypeToken || resp.Secret.InternalData["role"] != "store" {
		t.Errorf("internal data %v", resp.Secret.InternalData)
	}

	// Revoking a lease is local: it succeeds and the token stays in use.
	rev, err := env.b.HandleRequest(context.Background(), &logical.Request{
		Operation: logical.RevokeOperation, Storage: env.storage, Secret: resp.Secret,
	})
	if errorText(rev, err) != "" {
		t.Fatalf("revoke: %s", errorText(rev, err))
	}
	if again := env.readToken("store"); again.Data["access_token"] != tok {
		t.Error("revoking a lease dropped the shared token")
	}
	env.assertCompliant()
}

func TestTokenReadErrors(t *testing.T) {
	env := newTestEnv(t)
	env.mustWrite("roles/app", map[string]any{"type": "SELF"})
	resp, err := env.read("token/app")
	if httpStatus(resp, err) != http.StatusBadRequest || !strings.Contains(errorText(resp, err), "not configured") {
		t.Errorf("unconfigured: %d %q", httpStatus(resp, err), errorText(resp, err))
	}
	env.configure()
	resp, err = env.request(env.b, logical.ReadOperation, "token/app", map[string]any{"ttl": "5m"})
	if httpStatus(resp, err) != http.StatusBadRequest || !strings.Contains(errorText(resp, err), "ttl") {
		t.Errorf("unknown field on a token read: %d %q", httpStatus(resp, err), errorText(resp, err))
	}
	resp, err = env.read("token/nope")
	if httpStatus(resp, err) != http.StatusBadRequest || !strings.Contains(errorText(resp, err), `role "nope" does not exist`) {
		t.Errorf("unknown role: %d %q", httpStatus(resp, err), errorText(resp, err))
	}
}

// The lease is the token's remaining life, capped by the role's ttl, so Vault Agent re-reads
// inside Naver's 30-minute window.
func TestTokenLeaseArithmetic(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/app", map[string]any{"type": "SELF"})
	env.mustWrite("roles/capped", map[string]any{"type": "SELF", "ttl": "1h"})

	tests := []struct {
		advance       time.Duration
		role          string
		wantTTL       time.Duration
		wantExpiresIn int64
	}{
		{0, "app", 3 * time.Hour, 10800},
		{0, "capped", time.Hour, 10800},
		{90 * time.Minute, "app", 90 * time.Minute, 5400},
		{0, "capped", time.Hour, 5400},
		{40*time.Minute + 500*time.Millisecond, "app", 49*time.Minute + 59*time.Second, 2999},
		{19 * time.Minute, "capped", 30*time.Minute + 59*time.Second, 1859},
	}
	for _, tt := range tests {
		env.clock.Advance(tt.advance)
		resp := env.readToken(tt.role)
		if resp.Secret.TTL != tt.wantTTL || resp.Data["expires_in"] != tt.wantExpiresIn {
			t.Errorf("after +%s, %s: ttl %s expires_in %v; want %s %d", tt.advance, tt.role, resp.Secret.TTL, resp.Data["expires_in"], tt.wantTTL, tt.wantExpiresIn)
		}
		if resp.Secret.TTL > resp.Secret.MaxTTL {
			t.Errorf("lease %s outlives the token (%s)", resp.Secret.TTL, resp.Secret.MaxTTL)
		}
	}
	if n := env.requestsFor("SELF", ""); n != 1 {
		t.Errorf("%d requests for one token's life, want 1", n)
	}
}

func TestTokenThirtyMinuteRule(t *testing.T) {
	for _, background := range []bool{false, true} {
		t.Run(fmt.Sprintf("background_refresh=%v", background), func(t *testing.T) {
			env := newTestEnv(t)
			env.configure()
			env.mustWrite("config", map[string]any{"background_refresh": background})
			env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
			first := env.readToken("store").Data["access_token"]

			env.clock.Advance(3*time.Hour - 30*time.Minute) // exactly 30 minutes left: Naver would hand it back
			if got := env.readToken("store").Data["access_token"]; got != first {
				t.Fatal("a token with 30 minutes left was replaced")
			}
			if n := env.requestsFor("SELLER", testAccount); n != 1 {
				t.Fatalf("asked Naver with 30 minutes left: %d requests", n)
			}

			env.clock.Advance(time.Second) // now under 30 minutes: Naver issues a new token
			resp := env.readToken("store")
			if background {
				// The read is not held up: it gets the cached token while the new one is fetched.
				if resp.Data["access_token"] != first {
					t.Fatal("with background refresh the read waited for Naver")
				}
				waitFor(t, func() bool { return env.requestsFor("SELLER", testAccount) == 2 })
				waitFor(t, func() bool { return env.readToken("store").Data["access_token"] != first })
				resp = env.readToken("store")
			}
			second := resp.Data["access_token"]
			if second == first {
				t.Fatal("no new token with less than 30 minutes left")
			}
			if n := env.requestsFor("SELLER", testAccount); n != 2 {
				t.Fatalf("%d requests, want 2", n)
			}
			if resp.Secret.TTL != 3*time.Hour {
				t.Errorf("new token's lease %s, want 3h", resp.Secret.TTL)
			}
			if !env.naver.TokenValid(first.(string)) {
				t.Error("Naver keeps the old token valid until its expiry; it should still work")
			}
			env.assertCompliant()
		})
	}
}

// waitFor polls cond for up to 5 seconds: for work a read started in the background.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBackgroundRefreshRenewsOnlyTokensInUse(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/used", map[string]any{"type": "SELLER", "account_id": "ncp_used"})
	env.mustWrite("roles/idle", map[string]any{"type": "SELLER", "account_id": "ncp_idle"})
	env.readToken("used")
	env.readToken("idle")
	periodic := func() {
		t.Helper()
		if _, err := env.b.HandleRequest(context.Background(), &logical.Request{Operation: logical.RollbackOperation, Storage: env.storage}); err != nil {
			t.Fatal(err)
		}
	}

	env.clock.Advance(2*time.Hour + 31*time.Minute) // 29 minutes left
	periodic()
	if env.requestsFor("SELLER", "ncp_used") != 2 || env.requestsFor("SELLER", "ncp_idle") != 2 {
		t.Fatalf("tokens read since they were fetched should be renewed once: used %d idle %d",
			env.requestsFor("SELLER", "ncp_used"), env.requestsFor("SELLER", "ncp_idle"))
	}
	// Only "used" is read again; the new "idle" token is never renewed.
	env.readToken("used")
	env.clock.Advance(2*time.Hour + 31*time.Minute)
	periodic()
	periodic()
	if got := env.requestsFor("SELLER", "ncp_used"); got != 3 {
		t.Errorf("used: %d requests, want 3", got)
	}
	if got := env.requestsFor("SELLER", "ncp_idle"); got != 2 {
		t.Errorf("idle token was renewed though nobody read it: %d requests, want 2", got)
	}
	// A read after a background renewal never waits and gets the new token.
	before := env.requestsFor("SELLER", "ncp_used")
	if resp := env.readToken("used"); resp.Secret.TTL != 3*time.Hour {
		t.Errorf("lease %s, want the renewed token's 3h", resp.Secret.TTL)
	}
	if env.requestsFor("SELLER", "ncp_used") != before {
		t.Error("the read asked Naver after a background renewal")
	}
	env.assertCompliant()
}

func TestTokenSingleFlight(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.mustWrite("roles/store-too", map[string]any{"type": "SELLER", "account_id": testAccount})
	// Hold the one request in flight long enough for every reader to pile up behind it.
	env.naver.InjectFault(navercommercetest.Fault{Delay: 300 * time.Millisecond})

	const readers = 100
	tokens := make(chan string, readers)
	var wg sync.WaitGroup
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			role := "store"
			if i%2 == 1 {
				role = "store-too"
			}
			resp, err := env.request(env.b, logical.ReadOperation, "token/"+role, nil)
			if msg := errorText(resp, err); msg != "" {
				t.Error(msg)
				return
			}
			tokens <- resp.Data["access_token"].(string)
		}()
	}
	wg.Wait()
	close(tokens)
	seen := map[string]int{}
	for tok := range tokens {
		seen[tok]++
	}
	if len(seen) != 1 {
		t.Errorf("readers got %d different tokens, want 1", len(seen))
	}
	if n := env.requestsFor("SELLER", testAccount); n != 1 {
		t.Errorf("%d concurrent readers caused %d requests, want 1", readers, n)
	}
	if m := env.naver.MaxInFlight(testClientID, "SELLER", testAccount); m != 1 {
		t.Errorf("max in flight %d, want 1", m)
	}
	env.assertCompliant()
}

func TestTokenSingleFlightSharesErrors(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("config", map[string]any{"max_retries": 0})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusForbidden, Code: "GW.AUTHN", Message: "denied", Delay: 200 * time.Millisecond})

	var wg sync.WaitGroup
	errs := make(chan string, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := env.request(env.b, logical.ReadOperation, "token/store", nil)
			errs <- errorText(resp, err)
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		if !strings.Contains(msg, "GW.AUTHN") {
			t.Errorf("reader did not share the error: %q", msg)
		}
	}
	if n := env.requestsFor("SELLER", testAccount); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestTokenSharedByRolesOfOneAccount(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/a", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.mustWrite("roles/b", map[string]any{"type": "SELLER", "account_id": testAccount, "ttl": "10m"})
	env.mustWrite("roles/c", map[string]any{"type": "SELLER", "account_id": "ncp_other"})
	a, b, c := env.readToken("a"), env.readToken("b"), env.readToken("c")
	if a.Data["access_token"] != b.Data["access_token"] {
		t.Error("roles of one account got different tokens")
	}
	if a.Data["access_token"] == c.Data["access_token"] {
		t.Error("roles of different accounts share a token")
	}
	if n := env.requestsFor("SELLER", testAccount); n != 1 {
		t.Errorf("%d requests for a shared account, want 1", n)
	}
}

func TestSelfNeverSendsAccountID(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/app", map[string]any{"type": "SELF"})
	env.clock.Advance(3 * time.Hour) // force a second request for the key
	env.readToken("app")
	if n := env.requestsFor("SELF", ""); n != 2 {
		t.Fatalf("%d SELF requests, want 2", n)
	}
	env.assertCompliant()
}

func TestTokenSurvivesRestart(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	first := env.readToken("store").Data["access_token"]

	env.b = env.newBackend() // a restart: nothing in memory
	env.clock.Advance(time.Hour)
	resp := env.readToken("store")
	if resp.Data["access_token"] != first {
		t.Error("restart lost the cached token")
	}
	if n := env.requestsFor("SELLER", testAccount); n != 1 {
		t.Errorf("restart caused a new request: %d", n)
	}
	if resp.Secret.TTL != 2*time.Hour {
		t.Errorf("lease after restart %s, want 2h", resp.Secret.TTL)
	}
}

func TestExpiredTokenIsNeverServed(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	first := env.readToken("store").Data["access_token"]

	env.b = env.newBackend()
	env.clock.Advance(3*time.Hour + time.Second)
	// Naver is down: the stored token has expired, so there is nothing to serve.
	env.naver.InjectFault(navercommercetest.Fault{Status: 503, Count: 10})
	env.mustWrite("config", map[string]any{"max_retries": 0})
	resp, err := env.read("token/store")
	if httpStatus(resp, err) != http.StatusBadGateway {
		t.Fatalf("want 502 with an expired token and Naver down, got %d", httpStatus(resp, err))
	}
	if resp != nil && resp.Data["access_token"] == first {
		t.Fatal("served an expired token")
	}
}

func TestStoredTokenOfOtherCredentialsIsIgnored(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store")

	// Another node changed the secret and its purge of storage failed: the stored token
	// remains but belongs to other credentials.
	cfg, _ := readConfig(context.Background(), env.storage)
	cfg.ClientSecret = otherSecret
	entry, _ := logical.StorageEntryJSON(configStorageKey, cfg)
	if err := env.storage.Put(context.Background(), entry); err != nil {
		t.Fatal(err)
	}
	env.naver.SetClientSecret(testClientID, otherSecret)
	env.b = env.newBackend()
	env.readToken("store")
	if n := env.requestsFor("SELLER", testAccount); n != 2 {
		t.Errorf("a token stored under other credentials was served: %d requests, want 2", n)
	}
}
