package navercommerce

import (
	"strings"
	"testing"
	"time"
)

// "What is known of a token is never lost": a config write's verification asks Naver for a
// SELF token; when the write then fails (storing the config failed), the token Naver issued
// is still known, and bounds what the key is served next. Its base URL was another, so its
// credentials are: it is not served under the config still in force, whose renewal then gets
// it back from Naver (one request Naver counts as needless, documented in
// docs/decisions.md) — served, bounded by what is known of it, and asked for once.
func TestFailedConfigWriteKeepsTheTokenItsVerificationGot(t *testing.T) {
	env := newTestEnv(t)
	fs := &prefixFailingStorage{Storage: env.storage}
	env.storage = fs
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/self", map[string]any{"type": "SELF"})
	env.readToken("self")
	// The SELF token enters Naver's window: a new token is what Naver issues now.
	env.clock.Advance(2*time.Hour + 40*time.Minute)

	fs.set(func(f *prefixFailingStorage) { f.failPut = "config" })
	other := strings.Replace(env.naver.URL, "127.0.0.1", "localhost", 1) // the same Naver, another base_url
	resp, err := env.write("config", map[string]any{"base_url": other, "client_secret": testSecret})
	if err == nil && !resp.IsError() {
		t.Fatal("the config write succeeded though storing the config failed")
	}
	fs.set(func(f *prefixFailingStorage) { f.failPut = "" })
	if n := env.requestsFor("SELF", ""); n != 2 {
		t.Fatalf("%d SELF requests so far, want 2 (the first config's verification, the failed write's)", n)
	}

	got := env.readToken("self")
	env.b.WaitIdle()
	env.periodic(t.Context())
	env.b.WaitIdle()
	if n := env.requestsFor("SELF", ""); n > 3 {
		t.Errorf("%d SELF requests, want at most 3: the verification's token was asked for more than once", n)
	}
	if v := env.naver.Violations(); len(v) > 1 {
		t.Errorf("%d needless requests, want at most the one the failed write's base URL costs: %v", len(v), v)
	}
	if exp, _ := time.Parse(time.RFC3339, got.Data["expires_at"].(string)); exp.After(env.clock.Now().Add(3 * time.Hour)) {
		t.Errorf("the handed-back token is served until %s, past its life", exp)
	}
}
