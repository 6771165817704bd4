package navercommerce

// Adversarial review of issue 16 (README "How tokens are cached and renewed", the token
// DELETE section). Each test states the promise it breaks; they fail on the code reviewed
// (main at fab107b) and are expected to until the defects are fixed.

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// flakyStorage fails storage operations on keys with a prefix while armed.
type flakyStorage struct {
	logical.Storage
	mu     sync.Mutex
	op     string
	prefix string
	times  int // how many more operations fail; <0: all
}

func (f *flakyStorage) arm(op, prefix string, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.op, f.prefix, f.times = op, prefix, times
}

func (f *flakyStorage) fail(op, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.times == 0 || f.op != op || !strings.HasPrefix(key, f.prefix) {
		return nil
	}
	if f.times > 0 {
		f.times--
	}
	return errors.New("storage unavailable (injected)")
}

func (f *flakyStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if err := f.fail("get", key); err != nil {
		return nil, err
	}
	return f.Storage.Get(ctx, key)
}

func (f *flakyStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	if err := f.fail("put", entry.Key); err != nil {
		return err
	}
	return f.Storage.Put(ctx, entry)
}

func (f *flakyStorage) Delete(ctx context.Context, key string) error {
	if err := f.fail("delete", key); err != nil {
		return err
	}
	return f.Storage.Delete(ctx, key)
}

// probeGate holds the drop's probe (GET .../v1/seller/account) until released; every other
// request goes straight to the emulator.
type probeGate struct {
	mu      sync.Mutex
	arrived chan struct{}
	release chan struct{}
}

func (g *probeGate) arm() (arrived, release chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.arrived, g.release = make(chan struct{}), make(chan struct{})
	return g.arrived, g.release
}

func (g *probeGate) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, accountPath) {
		g.mu.Lock()
		arrived, release := g.arrived, g.release
		g.arrived = nil
		g.mu.Unlock()
		if arrived != nil {
			close(arrived)
			<-release
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// Promise (README, Failures): "A failed renewal serves the still-valid cached token with a
// warning"; (Storage) "a restart or leader change does not cause a burst of requests"; and
// issue 16: "What we know about a token is never lost". An unservable answer (Naver issues
// a token with 5 s of life) is published as a fact into the key's only storage entry,
// overwriting the still-valid token it was renewing. After a restart that token (20 minutes
// left) is gone: the read asks Naver again at once (the back-off was in memory) and fails.
func TestReview16UnservableAnswerOverwritesStoredValidToken(t *testing.T) {
	env := newTestEnv(t)
	env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
	env.readTokenWithoutRetries() // background refresh off: the read waits for the renewal
	valid := env.cachedToken("SELLER", testAccount).AccessToken
	env.clock.Advance(2*time.Hour + 40*time.Minute) // 20 minutes left: in Naver's window
	env.naver.SetTokenLifetime(5 * time.Second)
	resp := env.readToken("store") // the renewal's answer is unservable: the cached token is served
	if resp.Data["access_token"] != valid || len(resp.Warnings) == 0 {
		t.Fatalf("before the restart: want the cached token with a warning, got warnings %q", resp.Warnings)
	}
	if stored := env.storedToken("SELLER", testAccount); stored == nil || stored.AccessToken != valid {
		t.Errorf("storage no longer holds the still-valid token (20 minutes left): %+v", stored)
	}

	env.b = env.newBackend() // restart
	requests := env.requestsFor("SELLER", testAccount)
	r, err := env.read("token/store")
	if msg := errorText(r, err); msg != "" {
		t.Errorf("after the restart the still-valid token (20 minutes left) is not served: %s", msg)
	} else if r.Data["access_token"] != valid {
		t.Errorf("after the restart a different token is served")
	}
	// Back-offs live in memory (README "Decisions"): after a restart the read may ask once,
	// and is served the stored token either way.
	if n := env.requestsFor("SELLER", testAccount) - requests; n > 1 {
		t.Errorf("the read after the restart sent %d requests", n)
	}
}

// Promise (README): "Naver is asked only when it must issue a new token" and "A handed-back
// token never gains life ... across restarts" (issue 16: "every path that learns a token
// consults [the fact]"). After a restart, one failed storage read of the token entry makes
// the read ask Naver without what is known (the stored token has 2 hours left): a needless
// request, which the emulator penalises, and in reused-token mode the handed-back token is
// served with 3 hours while it dies in 2.
func TestReview16StorageReadErrorAsksNaverWithoutTheFact(t *testing.T) {
	env := newTestEnv(t)
	fs := &flakyStorage{Storage: env.storage}
	env.storage = fs
	env.b = env.newBackend()
	env.naver.SetReusedTokenFullLifetime(true)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	first := env.readToken("store")
	env.clock.Advance(time.Hour)

	env.b = env.newBackend() // restart: the token is in storage only
	fs.arm("get", tokenStoragePrefix, 1)
	resp, err := env.read("token/store")
	if msg := errorText(resp, err); msg == "" {
		if left := expiresIn(resp); resp.Data["access_token"] == first.Data["access_token"] && left > 2*time.Hour {
			t.Errorf("the handed-back token is served with %s left; it dies in 2h", left)
		}
	}
	if n := env.requestsFor("SELLER", testAccount); n != 1 {
		t.Errorf("%d token requests, want 1: the stored token had 2 hours left", n)
	}
	env.assertCompliant()
}

// Promise (README guarantees): "A deleted role's token stops being cached and renewed at
// once when no other role names its key, even if it was only in storage (after a restart)";
// issue 16 defect 5: a deleted role's token must not come back "into memory, where status
// and metrics count it". After the role is deleted and the plugin restarts, the first status
// read loads the stored token of the deleted role into memory: status lists its key as
// cached (cached_keys 1) and keeps it there through an hour of periodic runs.
func TestReview16DeletedRolesTokenBackInStatusAfterRestart(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/gone", map[string]any{"type": "SELLER", "account_id": "ncp_gone"})
	env.readToken("gone")
	if _, err := env.request(env.b, logical.DeleteOperation, "roles/gone", nil); err != nil {
		t.Fatal(err)
	}
	env.b = env.newBackend() // restart
	for i := 0; i < 65; i++ {
		resp, err := env.read("status")
		if msg := errorText(resp, err); msg != "" {
			t.Fatal(msg)
		}
		// The verification's SELF token is cached before and after the restart alike.
		if strings.Contains(formatData(resp.Data), "ncp_gone") {
			t.Fatalf("%d minutes after the restart, status counts the deleted role's token as cached: cached_keys=%v %s", i, resp.Data["cached_keys"], formatData(resp.Data))
		}
		env.periodic(context.Background())
		env.clock.Advance(time.Minute)
	}
}

// Promise (README, token DELETE): "refused (401 GW.AUTHN): the token is dropped (204)", and
// the guarantee "A drop racing a storage load ... never brings the dropped token back". The
// drop keeps the key state it looked up before its probe; if the key is evicted and looked
// up again meanwhile (its role switched to another account and back, as issue 16 defect 1
// describes), the new state loads the token from storage, the drop retires it only in the
// old state and storage, answers 204, and every later read is served the token the
// operator dropped (dead at Naver).
func TestReview16DropDuringRoleSwitchKeepsServingTheDeadToken(t *testing.T) {
	env := newTestEnv(t)
	gate := &probeGate{}
	env.useTransport(gate)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	dead := env.readToken("store").Data["access_token"].(string)
	env.naver.KillToken(dead) // the seller re-authorised the application

	arrived, release := gate.arm()
	dropped := make(chan string, 1)
	go func() {
		resp, err := env.request(env.b, logical.DeleteOperation, "token/store", nil)
		msg := errorText(resp, err)
		if msg == "" && resp != nil && len(resp.Warnings) > 0 {
			msg = "warning: " + strings.Join(resp.Warnings, "; ")
		}
		dropped <- msg
	}()
	<-arrived // the drop is asking Naver whether it still accepts the token
	env.mustWrite("roles/store", map[string]any{"account_id": "ncp_other"})
	env.mustWrite("roles/store", map[string]any{"account_id": testAccount})
	env.readToken("store") // the token still looks good to the cache
	close(release)
	if msg := <-dropped; msg != "" {
		t.Fatalf("drop: %s", msg)
	}

	for i := 0; i < 3; i++ {
		tok := env.readToken("store").Data["access_token"].(string)
		if tok == dead || !env.naver.TokenValid(tok) {
			t.Fatalf("read %d after the drop answered 204 was served the dropped (dead) token", i+1)
		}
		env.clock.Advance(time.Minute)
	}
}

// Promise (README): "Naver is asked only when it must issue a new token"; the emulator's
// penalty makes any needless request a violation. Issue 16: "what we know about each token
// ... the credentials it came from" is kept whatever happens to the cache. Deleting the
// config and writing the same credentials again (a Terraform replacement of the config,
// or an operator undoing a mistaken delete) makes the verification and every key's next
// read ask Naver while their tokens have 2 hours left: the facts know the credentials are
// the same, but the tokens themselves were thrown away.
func TestReview16ConfigRecreatedWithSameCredentialsAsksNeedlessly(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store")
	env.clock.Advance(time.Hour)
	if resp, err := env.request(env.b, logical.DeleteOperation, "config", nil); errorText(resp, err) != "" {
		t.Fatal(errorText(resp, err))
	}
	if env.cachedToken("SELLER", testAccount) != nil {
		t.Fatal("config delete kept the token in memory")
	}
	env.configure() // the same credentials
	if resp, err := env.read("token/store"); errorText(resp, err) != "" {
		t.Errorf("read after the config was re-created: %s", errorText(resp, err))
	}
	if n := env.naver.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2 (the first verification and the first read): the tokens had 2 hours left", n)
	}
	env.assertCompliant()
}

// Issue 16 defect 7: "an unreadable entry is reported (status lists it as unreadable, with
// the reason) and never blocks other roles; an operator can always delete it". A damaged
// role entry still makes status answer 500 and cannot be deleted.
func TestReview16DamagedRoleBreaksStatusAndCannotBeDeleted(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store")
	if err := env.storage.Put(context.Background(), &logical.StorageEntry{Key: roleStoragePrefix + "bad", Value: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"status", "status/store"} {
		if resp, err := env.read(path); httpStatus(resp, err) != http.StatusOK {
			t.Errorf("read %s: %d %q, want 200: one damaged role must not break every role's status", path, httpStatus(resp, err), errorText(resp, err))
		}
	}
	if resp, err := env.request(env.b, logical.DeleteOperation, "roles/bad", nil); errorText(resp, err) != "" {
		t.Errorf("delete roles/bad: %q, want it deleted", errorText(resp, err))
	}
}

// Issue 16 defect 8: "Role writes and deletes must be serialised per role". A ttl write that
// read the role before an account switch stored its merge over the switch: both answer
// success, and the role silently keeps the old account.
func TestReview16ConcurrentRoleWritesLoseAnUpdate(t *testing.T) {
	env := newTestEnv(t)
	hs := &hookStorage{Storage: env.storage}
	env.storage = hs
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})

	// The ttl write reads the role (account A), then stops just before it stores its merge.
	blocked, release := hs.arm("put", roleStoragePrefix+"store")
	ttlDone := make(chan string, 1)
	go func() {
		resp, err := env.write("roles/store", map[string]any{"ttl": 60})
		ttlDone <- errorText(resp, err)
	}()
	<-blocked
	// The account switch reads the role too (still account A, no ttl) and waits to store.
	switched := make(chan string, 1)
	go func() {
		resp, err := env.write("roles/store", map[string]any{"account_id": "ncp_new"})
		switched <- errorText(resp, err)
	}()
	time.Sleep(100 * time.Millisecond)
	close(release)
	if msg := <-ttlDone; msg != "" {
		t.Fatalf("ttl write: %s", msg)
	}
	if msg := <-switched; msg != "" {
		t.Fatalf("account switch: %s", msg)
	}
	r, err := readRole(context.Background(), env.storage, "store")
	if err != nil {
		t.Fatal(err)
	}
	if r.AccountID != "ncp_new" || r.TTL != time.Minute {
		t.Errorf("role after both writes answered success: account %q ttl %s, want ncp_new and 1m", r.AccountID, r.TTL)
	}
}

// Promise (README, token DELETE): "refused (401 GW.AUTHN): the token is dropped (204)"; "the
// next read asks Naver". A read that comes after the drop answered 204 joins the renewal
// that was in flight before it; when that renewal fails, the flight hands the joined read
// the token the operator just dropped (dead at Naver), as a still-valid token with a warning.
func TestReview16ReadAfterDropJoinsFailedRenewalAndGetsDroppedToken(t *testing.T) {
	env := newTestEnv(t)
	env.readTokenWithoutRetries() // background refresh off: reads in the window wait for Naver
	key := tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: testAccount}
	dead := env.cachedToken("SELLER", testAccount).AccessToken
	env.clock.Advance(2*time.Hour + 40*time.Minute) // 20 minutes left: the next read renews
	env.naver.KillToken(dead)                       // the seller re-authorised the application
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusServiceUnavailable, Delay: time.Second})
	go env.read("token/store") // the renewal: held by Naver for a second, then 503
	waitFor(t, func() bool { return env.b.tokens.inFlight(key) })

	if resp := env.deleteToken("store", false); resp != nil && len(resp.Warnings) > 0 {
		t.Fatalf("drop: %q", resp.Warnings)
	}
	resp, err := env.read("token/store") // after the 204
	if errorText(resp, err) == "" && resp.Data["access_token"] == dead {
		t.Errorf("the read after the drop answered 204 was served the dropped token (warnings %q)", resp.Warnings)
	}
}

// Promise (README, Failures): "After a failure the key backs off (5 s; 30 s after a 429;
// ... longer when Naver's Retry-After asks for more ...) and reads in that time share the error instead of
// asking again." A drop clears the back-off: Naver said to wait 2 minutes (429,
// Retry-After 120), the operator drops the dead token, and the next read asks Naver 10
// seconds later.
func TestReview16DropIgnoresNaversRetryAfter(t *testing.T) {
	env := newTestEnv(t)
	env.readTokenWithoutRetries()
	dead := env.cachedToken("SELLER", testAccount).AccessToken
	env.clock.Advance(2*time.Hour + 40*time.Minute)
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "120"})
	env.readToken("store") // the renewal is rate limited: the cached token is served with a warning
	env.naver.KillToken(dead)
	env.deleteToken("store", false)
	requests := env.requestsFor("SELLER", testAccount)
	env.clock.Advance(10 * time.Second)
	env.read("token/store")
	if n := env.requestsFor("SELLER", testAccount) - requests; n != 0 {
		t.Errorf("%d token requests 10 s after Naver answered 429 with Retry-After 120", n)
	}
}

// Promise (issue 16 defect 10): "Say what is true, in the read's warnings, in metrics and in
// status" — status was fixed to say reads share the failure until the back-off ends, but a
// drop with no token cached still answers "the next read asks Naver" while the back-off is
// ahead, and the next read indeed asks nothing.
func TestReview16DropWarningSaysNextReadAsksDuringBackoff(t *testing.T) {
	env := newTestEnv(t)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_retries": 0})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusTooManyRequests})
	env.read("token/store") // 429: a 30 s back-off, no token
	resp := env.deleteToken("store", false)
	requests := env.requestsFor("SELLER", testAccount)
	env.read("token/store")
	asked := env.requestsFor("SELLER", testAccount) - requests
	if resp != nil && len(resp.Warnings) > 0 && strings.Contains(resp.Warnings[0], "the next read asks Naver") && asked == 0 {
		t.Errorf("the drop's warning %q is untrue: the next read asked nothing (back-off)", resp.Warnings[0])
	}
}

// Promise (README, Failures): "After a failure the key backs off (... longer when Naver's
// Retry-After asks for more ...) and reads in that time share the error instead of asking again." When the
// token expires during the back-off, the periodic run evicts the key's state, back-off and
// last error with it: the next read asks Naver at once, 2 minutes into a 5-minute
// Retry-After.
func TestReview16ExpiryEvictionForgetsRetryAfter(t *testing.T) {
	env := newTestEnv(t)
	env.readTokenWithoutRetries()
	env.clock.Advance(3*time.Hour - time.Minute) // a minute left
	env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusTooManyRequests, RetryAfter: "300"})
	env.readToken("store") // rate limited: the cached token is served with a warning
	env.clock.Advance(2 * time.Minute)
	env.periodic(context.Background()) // the token expired: the key is evicted
	requests := env.requestsFor("SELLER", testAccount)
	env.read("token/store")
	if n := env.requestsFor("SELLER", testAccount) - requests; n != 0 {
		t.Errorf("%d token requests 2 minutes into Naver's Retry-After of 5 minutes", n)
	}
}

// Promise (README): "Tokens are kept in Vault storage ... so a restart or leader change does
// not cause a burst of requests"; "Naver is asked only when it must issue a new token". One
// failed storage write when a renewal publishes the new token is only logged ("cached in
// memory only") and never retried, not even by the periodic runs of the next hour: storage
// keeps the old token, in Naver's window, so after a restart the read asks Naver while the
// new token has hours left — a needless request, which Naver penalises.
func TestReview16FailedTokenWriteIsNeverRetried(t *testing.T) {
	env := newTestEnv(t)
	fs := &flakyStorage{Storage: env.storage}
	env.storage = fs
	env.b = env.newBackend()
	env.readTokenWithoutRetries()
	env.clock.Advance(2*time.Hour + 40*time.Minute) // in the window: the next read renews
	fs.arm("put", tokenStoragePrefix, 1)
	renewed := env.readToken("store").Data["access_token"]
	for i := 0; i < 60; i++ { // an hour of periodic runs
		env.clock.Advance(time.Minute)
		env.periodic(context.Background())
	}
	env.b = env.newBackend() // restart
	resp, err := env.read("token/store")
	if msg := errorText(resp, err); msg != "" || resp.Data["access_token"] != renewed {
		t.Errorf("after the restart the renewed token (2 hours left) is not served: %q", msg)
	}
	if n := env.requestsFor("SELLER", testAccount); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
	env.assertCompliant()
}
