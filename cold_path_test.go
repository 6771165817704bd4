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
)

// traceStorage records every storage operation, by operation and the key's first segment
// ("get tokens/"), and can add a fixed latency to each, as Raft does (an fsync per write).
type traceStorage struct {
	logical.Storage
	latency time.Duration
	trace   *opTrace
	// hold, when set, holds writes of tokens until it is closed (at most a second), so a
	// test can tell whether the answer waited for them.
	hold chan struct{}
}

// opTrace is one ordered list of events: storage operations, requests sent to Naver, and
// the read's answer.
type opTrace struct {
	mu     sync.Mutex
	events []string
}

func (t *opTrace) add(event string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.events = append(t.events, event)
}

func (t *opTrace) take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := t.events
	t.events = nil
	return out
}

func (s *traceStorage) note(op, key string) {
	prefix, _, _ := strings.Cut(key, "/")
	s.trace.add(op + " " + prefix + "/")
	time.Sleep(s.latency)
}

func (s *traceStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	s.note("get", key)
	return s.Storage.Get(ctx, key)
}

func (s *traceStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	if s.hold != nil && strings.HasPrefix(entry.Key, tokenStoragePrefix) {
		select {
		case <-s.hold:
		case <-time.After(time.Second):
		}
	}
	// Recorded when the write ends: what the answer waited for ended before it.
	err := s.Storage.Put(ctx, entry)
	s.note("put", entry.Key)
	return err
}

func (s *traceStorage) List(ctx context.Context, prefix string) ([]string, error) {
	s.note("list", prefix)
	return s.Storage.List(ctx, prefix)
}

func (s *traceStorage) Delete(ctx context.Context, key string) error {
	s.note("delete", key)
	return s.Storage.Delete(ctx, key)
}

// traceTransport records each request sent to Naver's token endpoint; check, when set, is
// called before each is sent.
type traceTransport struct {
	trace *opTrace
	check func()
}

func (t *traceTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, tokenPath) {
		t.trace.add("send")
		if t.check != nil {
			t.check()
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// coldEnv is a configured backend whose storage and requests to Naver are traced; one key
// was read already, so the application's counts were loaded and storage swept, as in a
// plugin that has been running.
func coldEnv(t *testing.T, latency time.Duration) (*testEnv, *opTrace) {
	t.Helper()
	env := newTestEnv(t)
	trace := &opTrace{}
	env.storage = &traceStorage{Storage: env.storage, trace: trace}
	env.transport = &traceTransport{trace: trace}
	env.b = env.newBackend()
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL, "verify_connection": false})
	env.mustWrite("roles/warm", map[string]any{"type": "SELLER", "account_id": "ncp_warm"})
	env.mustWrite("roles/new", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_*", "max_new_accounts_per_hour": 100})
	env.readToken("warm")
	env.readToken("sellers/ncp_warm")
	env.b.WaitIdle()
	trace.take()
	env.storage.(*traceStorage).latency = latency
	return env, trace
}

// The cold path of a read of a key never seen, in order: what a new seller's first read
// waits for. The config is in memory; a role is read from storage on its first read (a
// role per seller: the seller's first read; a many-seller role read before is in memory);
// the key's stored entry is read (a fact of an earlier token may bound Naver's answer);
// the application's count is stored before the request is sent (it survives a crash
// loop); the new token is stored after the answer, and WaitIdle waits for it.
func TestColdReadStoragePath(t *testing.T) {
	tests := []struct {
		name string
		path string
		want string
	}{
		{"token/<role>", "token/new", "get roles/, get tokens/, put applications/, send, answer, put tokens/"},
		{"token/<role>/<account_id>", "token/sellers/ncp_new_seller", "get tokens/, put applications/, send, answer, put tokens/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, trace := coldEnv(t, 0)
			hold := make(chan struct{})
			env.storage.(*traceStorage).hold = hold
			resp, err := env.read(tt.path)
			if msg := errorText(resp, err); msg != "" {
				t.Fatal(msg)
			}
			env.tokens = append(env.tokens, resp.Data[fieldAccessToken].(string))
			trace.add("answer")
			close(hold)
			env.b.WaitIdle()
			if got := strings.Join(trace.take(), ", "); got != tt.want {
				t.Errorf("cold path:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// With a slow storage round trip (a slow Raft write), a new seller's first read waits for
// two (the stored entry's read, the application's count), not three, and the count's
// write overlaps signing: the new token is stored after Vault is answered.
func TestColdReadWaitsForTwoStorageRoundTrips(t *testing.T) {
	const latency = 100 * time.Millisecond
	// Signing is slow under the race detector: measure it. The emulator checks the
	// signature with as much work again.
	secret, err := parseClientSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	var signing time.Duration
	for range 2 {
		start := time.Now()
		if _, err := signClientSecret(secret, testClientID, "1700000000000"); err != nil {
			t.Fatal(err)
		}
		signing = max(signing, time.Since(start))
	}
	env, trace := coldEnv(t, latency)
	start := time.Now()
	env.readToken("sellers/ncp_new_seller")
	took := time.Since(start)
	events := trace.take()
	env.b.WaitIdle()
	// Before: latency + signing + latency + (round trip: signing) + latency.
	if limit := latency + max(latency, signing) + signing + latency/2; took >= limit {
		t.Errorf("the cold read took %s, want under %s (storage round trips of %s, signing %s); it waited for %v", took, limit, latency, signing, events)
	}
	if env.storedToken("SELLER", "ncp_new_seller") == nil {
		t.Error("the token was not stored")
	}
}

// The application's count is in storage before the request is sent, and the count's write
// overlaps signing: while the write is held, nothing reaches Naver.
func TestApplicationCountStoredBeforeTheRequestIsSent(t *testing.T) {
	env, trace := coldEnv(t, 0)
	hs := &hookStorage{Storage: env.storage}
	env.storage = hs
	blocked, release := hs.arm("put", appStoragePrefix)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := env.read("token/new")
		if msg := errorText(resp, err); msg != "" {
			t.Error(msg)
			return
		}
		env.tokens = append(env.tokens, resp.Data[fieldAccessToken].(string))
	}()
	<-blocked
	time.Sleep(50 * time.Millisecond) // signing (about 1 ms) is over; the request waits
	if n := env.requestsFor("SELLER", testAccount); n != 0 {
		t.Errorf("%d requests sent before the application's count was stored", n)
	}
	close(release)
	<-done
	env.b.WaitIdle()
	if got := strings.Join(trace.take(), ", "); !strings.HasSuffix(got, "put applications/, send, put tokens/") {
		t.Errorf("events: %s", got)
	}
}

// A restart right after a cold read (Vault reloads the plugin, seals, or hands leadership
// over: Clean runs first) finds the token in storage: the next read asks Naver nothing.
func TestColdReadTokenSurvivesARestartRightAfterTheRead(t *testing.T) {
	env, _ := coldEnv(t, 20*time.Millisecond)
	served := env.readToken("new").Data[fieldAccessToken]
	env.b.Cleanup(context.Background()) // no WaitIdle: Clean must wait for the store
	env.storage.(*traceStorage).latency = 0
	env.b = nil // newBackend would wait for the old backend's stores
	env.b = env.newBackend()
	env.assertServedAgainWithoutAsking("new", served)
}

// A failed store after the answer is retried by the periodic run, as a failed store before
// it was: a restart then serves the stored token without a request.
func TestColdReadFailedStoreIsRetried(t *testing.T) {
	env, _ := coldEnv(t, 0)
	fs := &flakyStorage{Storage: env.storage}
	env.storage = fs
	fs.arm("put", tokenStoragePrefix, 1)
	served := env.readToken("new").Data[fieldAccessToken]
	env.b.WaitIdle()
	if env.storedToken("SELLER", testAccount) != nil {
		t.Fatal("the injected failure did not fail the store")
	}
	env.clock.Advance(time.Minute)
	env.periodic(context.Background())
	env.b = env.newBackend()
	env.assertServedAgainWithoutAsking("new", served)
}

// assertServedAgainWithoutAsking checks that a backend started again serves role's key
// (testAccount's) the token served before, Naver having seen one request for the key.
func (e *testEnv) assertServedAgainWithoutAsking(role string, served any) {
	e.t.Helper()
	if got := e.readToken(role).Data[fieldAccessToken]; got != served {
		e.t.Error("after the restart another token is served")
	}
	if n := e.requestsFor("SELLER", testAccount); n != 1 {
		e.t.Errorf("%d token requests for the key, want 1", n)
	}
	e.assertCompliant()
}

// Concurrent cold reads of many new sellers share the writes of the application's counts,
// and the counts stored cover every request sent.
func TestConcurrentColdReadsCountEveryRequestInStorage(t *testing.T) {
	env, _ := coldEnv(t, 5*time.Millisecond)
	const sellers = 16
	var wg sync.WaitGroup
	for i := range sellers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := env.read(fmt.Sprintf("token/sellers/ncp_c%d", i))
			if msg := errorText(resp, err); msg != "" {
				t.Error(msg)
			}
		}()
	}
	wg.Wait()
	env.b.WaitIdle()
	if total, sent := storedAppCount(t, env), env.naver.TokenRequests(); total < sent {
		t.Errorf("stored counts hold %d requests, Naver saw %d", total, sent)
	}
}

// storedAppCount is the number of requests the application's stored counts hold.
func storedAppCount(t *testing.T, env *testEnv) int {
	t.Helper()
	total := storedAppRequests(env.storage)
	if total < 0 {
		t.Fatal("no stored counts, or counts that do not decode")
	}
	return total
}

// A busy application's write of its counts reserves a few requests ahead, so most new
// sellers' first reads wait for no write at all, while storage never holds fewer requests
// than were sent: a crash at any moment cannot start the hour afresh.
func TestBusyApplicationCountsAheadAndNeverUnderCounts(t *testing.T) {
	env, trace := coldEnv(t, 0)
	env.mustWrite("config", map[string]any{"max_application_requests_per_hour": 2000})
	ts := env.transport.(*traceTransport)
	ts.check = func() {
		// Called as a request leaves: this one included.
		if stored, sent := storedAppCount(t, env), env.naver.TokenRequests()+1; stored < sent {
			t.Errorf("request %d sent with %d counted in storage", sent, stored)
		}
	}
	read := func(first, n int) int {
		trace.take()
		for i := first; i < first+n; i++ {
			env.readToken(fmt.Sprintf("sellers/ncp_busy%d", i))
		}
		env.b.WaitIdle()
		writes := 0
		for _, e := range trace.take() {
			if e == "put applications/" {
				writes++
			}
		}
		return writes
	}
	if w := read(0, 1); w != 1 {
		t.Errorf("a quiet application wrote its counts %d times for 1 request, want 1", w)
	}
	env.clock.Advance(10 * time.Minute)
	if w := read(1, 30); w > 8 {
		t.Errorf("a busy application wrote its counts %d times for 30 requests, want at most 8", w)
	}
	env.assertCompliant()
}
