package navercommerce

import (
	"strings"
	"testing"
	"time"
)

// "What is known of a token is never lost": a config write's verification asks Naver for a
// SELF token; when the write then fails (storing the config failed), the token Naver issued
// must still bound what the key asks next. Lost, the SELF key's renewal asks Naver, which
// hands the verification's token back: a needless request, which Naver penalises.
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

	env.readToken("self")
	env.b.WaitIdle()
	env.periodic(t.Context())
	env.b.WaitIdle()
	env.assertCompliant()
}
