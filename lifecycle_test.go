package navercommerce

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// slowNetwork carries requests to Naver while moving the fake clock: the time a request
// spends on the way to Naver (before) and back (after), as a slow network or gateway would.
type slowNetwork struct {
	clock   *fakeClock
	before  func(n int) time.Duration // n counts requests from 1
	after   time.Duration
	count   atomic.Int32
	flying  atomic.Int32
	maxFly  atomic.Int32
	release chan struct{} // when set, requests wait for it (in real time) before they go
}

func (s *slowNetwork) RoundTrip(req *http.Request) (*http.Response, error) {
	n := int(s.count.Add(1))
	fly := s.flying.Add(1)
	defer s.flying.Add(-1)
	for {
		m := s.maxFly.Load()
		if fly <= m || s.maxFly.CompareAndSwap(m, fly) {
			break
		}
	}
	if s.release != nil {
		select {
		case <-s.release:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	if s.before != nil {
		s.clock.Advance(s.before(n))
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	s.clock.Advance(s.after)
	return resp, err
}

// useTransport restarts the backend with its requests to Naver carried by rt.
func (e *testEnv) useTransport(rt http.RoundTripper) {
	e.transport = rt
	e.b = e.newBackend()
}

// readTokenWithoutRetries configures no retries and no background refresh, and reads the
// token of a SELLER role "store": the start of the tests of a renewal that fails.
func (e *testEnv) readTokenWithoutRetries() {
	e.t.Helper()
	e.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": e.naver.URL,
		"verify_connection": false, "max_retries": 0, "background_refresh": false})
	e.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	e.readToken("store")
}

func (e *testEnv) periodic(ctx context.Context) {
	e.t.Helper()
	if _, err := e.b.HandleRequest(ctx, &logical.Request{Operation: logical.RollbackOperation, Storage: e.storage}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *testEnv) storedToken(typ, account string) *cachedToken {
	e.t.Helper()
	e.b.WaitIdle() // a read's token is stored after its answer
	tok, err := loadToken(context.Background(), e.storage, tokenKey{ClientID: testClientID, Type: typ, AccountID: account})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// Defect: a renewal that failed slowly served the token it had judged servable before the
// request, with no life left; Vault then leased it for the mount default (768 h).
func TestSlowFailedRenewalNeverServesADeadToken(t *testing.T) {
	tests := []struct {
		name       string
		stall      time.Duration // how long the failing renewal takes, in fake time
		wantStatus int
	}{
		{"token expires during the request", 25 * time.Second, http.StatusBadGateway},
		{"token is left with seconds", 15 * time.Second, http.StatusBadGateway},
		{"token still has life", 5 * time.Second, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			net := &slowNetwork{clock: env.clock}
			env.useTransport(net)
			env.readTokenWithoutRetries()

			env.clock.Advance(3*time.Hour - 20*time.Second)
			net.before = func(int) time.Duration { return tt.stall }
			env.naver.InjectFault(navercommercetest.Fault{Status: 500})
			resp, err := env.read("token/store")
			if got := httpStatus(resp, err); got != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", got, errorText(resp, err), tt.wantStatus)
			}
			if tt.wantStatus != http.StatusOK {
				if !strings.Contains(errorText(resp, err), "HTTP 500") {
					t.Errorf("error %q does not say why", errorText(resp, err))
				}
				return
			}
			assertLeaseWithinLife(t, resp)
			if len(resp.Warnings) == 0 {
				t.Error("a stale token was served without a warning")
			}
		})
	}
}

// assertLeaseWithinLife checks the promise every leased read keeps: 1 s ≤ lease ≤ life.
func assertLeaseWithinLife(t *testing.T, resp *logical.Response) {
	t.Helper()
	left := time.Duration(resp.Data["expires_in"].(int64)) * time.Second
	if left < minServableLife {
		t.Errorf("served a token with %s left", left)
	}
	if resp.Secret == nil {
		return
	}
	if ttl := resp.Secret.TTL; ttl < time.Second || ttl > left {
		t.Errorf("lease %s for a token with %s left", ttl, left)
	}
}

// A read that joins a slow request late judges the token when the request ends.
func TestJoinedReadJudgesTokenAfterTheWait(t *testing.T) {
	env := newTestEnv(t)
	net := &slowNetwork{clock: env.clock}
	env.useTransport(net)
	env.readTokenWithoutRetries()
	env.clock.Advance(3*time.Hour - 30*time.Second)
	net.release = make(chan struct{})
	net.before = func(int) time.Duration { return 25 * time.Second }
	env.naver.InjectFault(navercommercetest.Fault{Status: 503})

	var wg sync.WaitGroup
	results := make([]int, 8)
	for i := range results {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			resp, err := env.read("token/store")
			results[i] = httpStatus(resp, err)
			if err == nil && !resp.IsError() {
				assertLeaseWithinLife(t, resp)
			}
		}(i)
	}
	waitFor(t, func() bool { return net.flying.Load() == 1 })
	close(net.release)
	wg.Wait()
	for i, status := range results {
		if status != http.StatusBadGateway {
			t.Errorf("read %d: status %d, want 502 (the token had 5s left when the request ended)", i, status)
		}
	}
}

// Defect: after failures the periodic function asked Naver every minute, forever, for keys
// nobody read, even for deleted roles.
func TestBackgroundRenewalBacksOffAndStops(t *testing.T) {
	t.Run("deleted role", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure()
		env.mustWrite("roles/gone", map[string]any{"type": "SELLER", "account_id": "ncp_gone"})
		env.readToken("gone")
		if _, err := env.request(env.b, logical.DeleteOperation, "roles/gone", nil); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 6*60; i++ {
			env.periodic(context.Background())
			env.clock.Advance(time.Minute)
		}
		if n := env.requestsFor("SELLER", "ncp_gone"); n != 1 {
			t.Errorf("%d requests for a deleted role's token, want only the first", n)
		}
		if env.cachedToken("SELLER", "ncp_gone") != nil || env.storedToken("SELLER", "ncp_gone") != nil {
			t.Error("the deleted role's token was not evicted from memory and storage")
		}
	})
	t.Run("another role still names the key", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure()
		env.mustWrite("roles/a", map[string]any{"type": "SELLER", "account_id": testAccount})
		env.mustWrite("roles/b", map[string]any{"type": "SELLER", "account_id": testAccount})
		env.readToken("a")
		if _, err := env.request(env.b, logical.DeleteOperation, "roles/a", nil); err != nil {
			t.Fatal(err)
		}
		env.periodic(context.Background())
		if env.cachedToken("SELLER", testAccount) == nil || env.storedToken("SELLER", testAccount) == nil {
			t.Fatal("a token another role names was evicted")
		}
	})
	t.Run("refused renewals of an unread key", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure()
		env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
		env.readToken("store")
		// The seller withdrew consent: every request is refused from now on.
		env.naver.InjectFault(navercommercetest.Fault{Status: 403, Code: "GW.AUTHN", Count: 1000})
		for i := 0; i < 6*60; i++ {
			env.periodic(context.Background())
			env.clock.Advance(time.Minute)
		}
		// Renewal starts at 2h30; retries after 1, 2, 4, 8 and 16 minutes; at 3h the token has
		// expired and nobody read it within its life: no more requests.
		if n := env.requestsFor("SELLER", testAccount); n > 1+6 {
			t.Errorf("%d requests in 6 hours for a key nobody reads, want at most 7", n)
		}
		if env.cachedToken("SELLER", testAccount) != nil || env.storedToken("SELLER", testAccount) != nil {
			t.Error("the expired token was not evicted")
		}
	})
	t.Run("failing Naver under constant reads", func(t *testing.T) {
		env := newTestEnv(t)
		env.configure()
		env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
		env.readToken("store")
		env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
		env.naver.InjectFault(navercommercetest.Fault{Status: 500, Count: 100000})
		perHour := map[int]int{}
		last := env.requestsFor("SELLER", testAccount)
		start := env.clock.Now()
		for i := 0; i < 6*60*2; i++ {
			env.read("token/store")
			if i%2 == 0 {
				env.periodic(context.Background())
			}
			waitForFlights(env.b, tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: testAccount})
			n := env.requestsFor("SELLER", testAccount)
			perHour[int(env.clock.Now().Sub(start)/time.Hour)] += n - last
			last = n
			env.clock.Advance(30 * time.Second)
		}
		for hour, n := range perHour {
			if n > defaultMaxRequestsHour {
				t.Errorf("hour %d: %d requests to Naver, over the budget of %d", hour, n, defaultMaxRequestsHour)
			}
		}
	})
}

// waitForFlights returns once nothing the core started is running (requests behind reads
// included).
func waitForFlights(be *backend, _ tokenKey) { be.WaitIdle() }

// staleStorage hands out what storage held when a Get began, but only after release: a
// config load that read storage just before a write.
type staleStorage struct {
	logical.Storage
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (s *staleStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	entry, err := s.Storage.Get(ctx, key)
	if key == configStorageKey {
		s.once.Do(func() { close(s.started) })
		<-s.release
	}
	return entry, err
}

// Defect: a config load racing a write, delete or invalidation published the old config.
func TestConfigLoadNeverPublishesOverNewerChange(t *testing.T) {
	changes := map[string]func(env *testEnv, node *backend){
		"write": func(env *testEnv, node *backend) {
			resp, err := env.request(node, logical.UpdateOperation, "config", map[string]any{"client_secret": otherSecret, "verify_connection": false})
			if err != nil || resp.IsError() {
				t.Fatal(errorText(resp, err))
			}
		},
		"delete": func(env *testEnv, node *backend) {
			if _, err := env.request(node, logical.DeleteOperation, "config", nil); err != nil {
				t.Fatal(err)
			}
		},
		"invalidate": func(env *testEnv, node *backend) {
			// Another node wrote the new config; this one is told.
			entry, _ := logical.StorageEntryJSON(configStorageKey, &naverConfig{ClientID: testClientID, ClientSecret: otherSecret,
				BaseURL: env.naver.URL, RequestTimeout: defaultRequestTimeout, MaxRetries: defaultMaxRetries})
			if err := env.storage.Put(context.Background(), entry); err != nil {
				t.Fatal(err)
			}
			node.invalidate(context.Background(), configStorageKey)
		},
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			env := newTestEnv(t)
			env.configure()
			node := env.newBackend() // cold: loads the config on first use
			stale := &staleStorage{Storage: env.storage, started: make(chan struct{}), release: make(chan struct{})}
			done := make(chan struct{})
			go func() {
				defer close(done)
				node.getConfig(context.Background(), stale)
			}()
			<-stale.started
			change(env, node)
			close(stale.release)
			<-done
			st, err := node.getConfig(context.Background(), env.storage)
			if err != nil {
				t.Fatal(err)
			}
			switch name {
			case "delete":
				if st != nil {
					t.Error("the node kept a config after it was deleted")
				}
			default:
				if st == nil || st.config.ClientSecret != otherSecret {
					t.Error("the node published the old config over the new one")
				}
			}
		})
	}
}

// Defect: Naver's message was cut before the signature was redacted, so half a signature
// (which starts with the client secret) survived.
func TestEchoedSignatureIsRedactedWholeOrInPart(t *testing.T) {
	var mu sync.Mutex
	var signs []string
	for _, pad := range []int{0, 250, 280, 290, 299} {
		echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			sign := r.PostForm.Get("client_secret_sign")
			raw, _ := base64.StdEncoding.DecodeString(sign)
			mu.Lock()
			signs = append(signs, sign, string(raw))
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]any{
				"code":    "GW.AUTHN",
				"message": strings.Repeat("x", pad) + "client_secret_sign " + sign + " / " + string(raw),
				"traceId": sign[:30],
				"invalidInputs": []map[string]string{
					{"name": "client_secret_sign", "type": "Invalid", "message": sign[10:60]},
				},
			})
		}))
		env := newTestEnv(t)
		env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": echo.URL, "verify_connection": false, "max_retries": 0})
		env.mustWrite("roles/store", map[string]any{"type": "SELF"})
		resp, err := env.read("token/store")
		msg := errorText(resp, err)
		echo.Close()
		if !strings.Contains(msg, "GW.AUTHN") {
			t.Fatalf("pad %d: error %q", pad, msg)
		}
		mu.Lock()
		for _, secret := range append([]string{testSecret}, signs...) {
			for i := 0; i+minSecretFragment <= len(secret); i++ {
				if frag := secret[i : i+minSecretFragment]; strings.Contains(msg, frag) {
					t.Errorf("pad %d: error carries %q of a signature or the secret: %s", pad, frag, msg)
					break
				}
			}
		}
		mu.Unlock()
	}
}

// Defect: the periodic function renewed due keys one after another, each up to
// request_timeout, while Vault waited on it.
func TestPeriodicHonoursItsDeadline(t *testing.T) {
	env := newTestEnv(t)
	net := &slowNetwork{clock: env.clock}
	env.useTransport(net)
	env.configure()
	const keys = 12
	for i := 0; i < keys; i++ {
		name := "r" + string(rune('a'+i))
		env.mustWrite("roles/"+name, map[string]any{"type": "SELLER", "account_id": "ncp_" + name})
		env.readToken(name)
	}
	env.clock.Advance(2*time.Hour + 35*time.Minute)
	net.release = make(chan struct{}) // Naver does not answer
	defer close(net.release)
	before := net.count.Load()

	ctx, cancel := context.WithTimeout(context.Background(), periodicMargin+time.Second)
	defer cancel()
	start := time.Now()
	env.periodic(ctx)
	if took := time.Since(start); took > periodicMargin {
		t.Errorf("the periodic function took %s with a deadline %s away", took, periodicMargin+time.Second)
	}
	if n := net.count.Load() - before; n == 0 || n > renewConcurrency {
		t.Errorf("%d renewals started, want 1 to %d at once", n, renewConcurrency)
	}
	if m := net.maxFly.Load(); m > renewConcurrency {
		t.Errorf("%d requests in flight at once, want at most %d", m, renewConcurrency)
	}
	// Unmounting stops what is still waiting for Naver.
	env.b.Clean(context.Background())
	waitFor(t, func() bool { return net.flying.Load() == 0 })
}

// Defect: a request made with the old credentials that failed after a credential change set
// a back-off the new credentials obeyed. A read that waited on that request is not answered
// with its failure: it asks again with the credentials now in force.
func TestBackoffBelongsToCredentials(t *testing.T) {
	env := newTestEnv(t)
	net := &slowNetwork{clock: env.clock, release: make(chan struct{})}
	env.useTransport(net)
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL, "verify_connection": false, "max_retries": 0})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.naver.InjectFault(navercommercetest.Fault{Status: 500})
	done := make(chan int)
	go func() {
		resp, err := env.read("token/store")
		done <- httpStatus(resp, err)
	}()
	waitFor(t, func() bool { return net.flying.Load() == 1 })
	env.naver.SetClientSecret(testClientID, otherSecret)
	env.mustWrite("config", map[string]any{"client_secret": otherSecret, "verify_connection": false})
	close(net.release)
	if status := <-done; status != http.StatusOK {
		t.Fatalf("the read that waited on the old request answered %d, want 200 (a token of the new credentials)", status)
	}
	resp, err := env.read("token/store")
	if errorText(resp, err) != "" {
		t.Fatalf("the new credentials inherited the old ones' back-off: %s", errorText(resp, err))
	}
}

// Defect: expiry reckoned from the send time made the plugin ask while Naver still saw 30
// minutes or more (a needless request, which Naver penalises) whenever the first request
// was slower than the renewal.
func TestRenewalAsksOnlyWhenNaverIssuesANewToken(t *testing.T) {
	for _, background := range []bool{false, true} {
		t.Run(map[bool]string{false: "reads", true: "background"}[background], func(t *testing.T) {
			env := newTestEnv(t)
			net := &slowNetwork{clock: env.clock, after: 500 * time.Millisecond}
			// The first request is slow on the way in, later ones are quick.
			net.before = func(n int) time.Duration {
				if n == 1 {
					return 4 * time.Second
				}
				return 0
			}
			env.useTransport(net)
			env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
				"verify_connection": false, "background_refresh": background})
			env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
			key := tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: testAccount}
			end := env.clock.Now().Add(8 * time.Hour)
			for env.clock.Now().Before(end) {
				resp := env.readToken("store")
				assertLeaseWithinLife(t, resp)
				env.periodic(context.Background())
				waitForFlights(env.b, key)
				env.clock.Advance(time.Second)
			}
			env.assertCompliant()
			if req, issued := env.requestsFor("SELLER", testAccount), env.naver.IssuedTokens(); req != issued {
				t.Errorf("%d requests for %d new tokens: every request should get a new token", req, issued)
			}
		})
	}
}

// Naver may hand a token back with a fresh expires_in: its answer never extends what the
// cache knows of the token, and a JWT's exp caps it.
func TestHandedBackTokenNeverExtendsItsLife(t *testing.T) {
	t.Run("dropped token handed back", func(t *testing.T) {
		env := newTestEnv(t)
		env.naver.SetReusedTokenFullLifetime(true)
		env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
		env.configure()
		env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
		first := env.readToken("store")
		env.clock.Advance(time.Hour)
		// Forced: Naver still accepts the token, so an unforced drop would keep it.
		if resp, err := env.request(env.b, logical.DeleteOperation, "token/store", map[string]any{"force": true}); errorText(resp, err) != "" {
			t.Fatal(errorText(resp, err))
		}
		second := env.readToken("store")
		if second.Data["access_token"] != first.Data["access_token"] {
			t.Fatal("the emulator minted a new token while the old had 2 hours left")
		}
		if left := time.Duration(second.Data["expires_in"].(int64)) * time.Second; left > 2*time.Hour {
			t.Errorf("the handed-back token is said to have %s left, it has 2h", left)
		}
	})
	t.Run("JWT exp after the cache was lost", func(t *testing.T) {
		env := newTestEnv(t)
		env.naver.SetReusedTokenFullLifetime(true)
		env.naver.SetJWTTokens(true)
		env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
		env.configure()
		env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
		env.readToken("store")
		env.clock.Advance(2 * time.Hour)
		// A new mount on empty storage: nothing is known of the token Naver hands back.
		env.storage = &logical.InmemStorage{}
		env.b = env.newBackend()
		env.configure()
		env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
		resp := env.readToken("store")
		if left := time.Duration(resp.Data["expires_in"].(int64)) * time.Second; left > time.Hour {
			t.Errorf("the token is said to have %s left; its exp says 1h", left)
		}
	})
}

func TestRequestBudget(t *testing.T) {
	env := newTestEnv(t)
	env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_retries": 2, "max_token_requests_per_hour": 3, "background_refresh": false})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.readToken("store") // 1 request
	env.clock.Advance(2*time.Hour + 31*time.Minute)

	// Naver fails: 3 attempts (1 + 2 retries), the whole budget of the hour. With a budget
	// of 3 the pace after that burst is one request an hour: reads share the failure.
	env.naver.InjectFault(navercommercetest.Fault{Status: 500, Count: 1000})
	resp := env.readToken("store")
	if len(resp.Warnings) == 0 {
		t.Error("no warning with a stale token")
	}
	if n := env.requestsFor("SELLER", testAccount); n != 4 {
		t.Fatalf("%d requests, want 1 + 3 (the budget)", n)
	}
	env.clock.Advance(10 * time.Minute)
	resp = env.readToken("store")
	if len(resp.Warnings) == 0 || !strings.Contains(resp.Warnings[0], "is not asked again before 2026-11-24T15:31:00Z") {
		t.Errorf("warnings %q do not say when Naver is asked again (an hour after the failed attempts)", resp.Warnings)
	}
	// Once the token is gone, reads fail fast with Naver's failure and the same time.
	env.clock.Advance(19*time.Minute + 55*time.Second)
	r, err := env.read("token/store")
	if got := httpStatus(r, err); got != http.StatusBadGateway || !strings.Contains(errorText(r, err), "not asking Naver again before 2026-11-24T15:31:00Z") {
		t.Errorf("status %d (%s), want 502 saying when Naver is asked again", got, errorText(r, err))
	}
	if n := env.requestsFor("SELLER", testAccount); n != 4 {
		t.Errorf("%d requests, want still 4", n)
	}
	// An hour after the failed attempts, the key may ask again.
	env.clock.Advance(31 * time.Minute)
	env.naver.Reset()
	env.readToken("store")

	// Requests that succeed are not paced, but the budget holds them too: after two drops,
	// the fourth request of the hour is refused with 429 naming the limit, and logged.
	for range 2 {
		env.deleteToken("store", true)
		env.readToken("store")
	}
	env.deleteToken("store", true)
	r, err = env.read("token/store")
	if got := httpStatus(r, err); got != http.StatusTooManyRequests || !strings.Contains(errorText(r, err), "max_token_requests_per_hour") {
		t.Errorf("status %d (%s), want 429 naming the budget", got, errorText(r, err))
	}
	if n := env.requestsFor("SELLER", testAccount); n != 3 { // since the Reset
		t.Errorf("%d requests in the hour, want 3", n)
	}
	if !strings.Contains(env.logs.String(), "refused by the hourly budget") {
		t.Error("the refusal was not logged")
	}
}

func TestVerificationCountsAgainstTheBudget(t *testing.T) {
	env := newTestEnv(t)
	env.naver.SetPenalty(navercommercetest.PenaltyConfig{Disabled: true})
	for i, secret := range []string{testSecret, otherSecret, testSecret} {
		env.naver.SetClientSecret(testClientID, secret)
		resp, err := env.write("config", map[string]any{"client_id": testClientID, "client_secret": secret, "base_url": env.naver.URL, "max_token_requests_per_hour": 2})
		if i < 2 && errorText(resp, err) != "" {
			t.Fatalf("write %d: %s", i, errorText(resp, err))
		}
		if i == 2 && !strings.Contains(errorText(resp, err), "max_token_requests_per_hour") {
			t.Fatalf("third verification in an hour: %q, want the budget refusal", errorText(resp, err))
		}
	}
}

func TestDropCachedToken(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	first := env.readToken("store").Data["access_token"].(string)

	// Naver still accepts the token: it is kept, and the answer says why.
	resp, err := env.request(env.b, logical.DeleteOperation, "token/store", nil)
	if errorText(resp, err) != "" || resp == nil || len(resp.Warnings) == 0 || !strings.Contains(resp.Warnings[0], "still accepts") {
		t.Fatalf("drop of a live token: %v %v, want a warning that Naver still accepts it", resp, err)
	}
	if env.readToken("store").Data["access_token"] != first || env.requestsFor("SELLER", testAccount) != 1 {
		t.Fatal("a token Naver still accepts was dropped")
	}

	// The seller re-authorised the application: Naver refuses the token, and the drop takes.
	env.naver.KillToken(first)
	if resp, err := env.request(env.b, logical.DeleteOperation, "token/store", nil); errorText(resp, err) != "" || (resp != nil && len(resp.Warnings) > 0) {
		t.Fatalf("drop of a dead token: %v %v", resp, err)
	}
	if tok := env.cachedToken("SELLER", testAccount); tok != nil {
		t.Fatal("the dead token is still cached in memory")
	}
	if tok := env.storedToken("SELLER", testAccount); tok == nil || tok.AccessToken != "" || tok.Retired != retiredDropped || tok.Fingerprint != tokenFingerprint(first) {
		t.Fatalf("stored after the drop: %+v, want the dropped token's fact without the token", tok)
	}
	second := env.readToken("store").Data["access_token"].(string)
	if second == first || !env.naver.TokenValid(second) {
		t.Fatal("the read after a drop did not get a new, valid token")
	}
	if n := env.requestsFor("SELLER", testAccount); n != 2 {
		t.Errorf("%d requests, want 2: the read after a drop asks Naver", n)
	}
	env.assertCompliant()

	// force drops without asking Naver (whose answer would then be needless: not tested here).
	if resp, err := env.request(env.b, logical.DeleteOperation, "token/store", map[string]any{"force": true}); errorText(resp, err) != "" {
		t.Fatal(errorText(resp, err))
	}
	if env.cachedToken("SELLER", testAccount) != nil {
		t.Fatal("force did not drop the token")
	}
	for path, want := range map[string]string{"token/nobody": "does not exist"} {
		resp, err := env.request(env.b, logical.DeleteOperation, path, nil)
		if !strings.Contains(errorText(resp, err), want) {
			t.Errorf("delete %s: %q, want %q", path, errorText(resp, err), want)
		}
	}
}

// Unmount or reload: requests in flight stop.
func TestCleanStopsRequestsInFlight(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.naver.InjectFault(navercommercetest.Fault{Delay: 20 * time.Second})
	done := make(chan error, 1)
	go func() {
		resp, err := env.read("token/store")
		if err == nil && resp.IsError() {
			err = resp.Error()
		}
		done <- err
	}()
	waitFor(t, func() bool { return env.naver.Stats().Keys[testClientID+"|SELLER|"+testAccount].InFlight == 1 })
	env.b.Clean(context.Background())
	select {
	case err := <-done:
		if err == nil {
			t.Error("the read succeeded after the mount was cleaned up")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the request went on after the mount was cleaned up")
	}
}
