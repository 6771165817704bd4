package navercommerce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// Test doubles of storage and of the network: what fails, holds or records a request.

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

// spreadAccount is a seller whose renewal point lies at least min into Naver's window.
func spreadAccount(t *testing.T, min time.Duration) string {
	t.Helper()
	for i := range 100 {
		acct := fmt.Sprintf("ncp_spread%d", i)
		if renewSpread(tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: acct}, renewSpreadWidth) >= min {
			return acct
		}
	}
	t.Fatal("no account with that spread")
	return ""
}

// appReadFailingStorage fails reads of the application's request counts while failing is set.
type appReadFailingStorage struct {
	logical.Storage
	failing atomic.Bool
}

func (s *appReadFailingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if s.failing.Load() && strings.HasPrefix(key, appStoragePrefix) {
		return nil, errors.New("storage unavailable")
	}
	return s.Storage.Get(ctx, key)
}

// appCountStorage fails reads of the application's counts on demand (the next failGets
// reads under applications/), or every write of them, to stand for a storage hiccup.
type appCountStorage struct {
	logical.Storage
	failGets atomic.Int32
	failPuts atomic.Bool // every write of the counts fails
}

func (s *appCountStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if strings.HasPrefix(e.Key, appStoragePrefix) && s.failPuts.Load() {
		return errStorageDown
	}
	return s.Storage.Put(ctx, e)
}

func (s *appCountStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if strings.HasPrefix(key, appStoragePrefix) && s.failGets.Add(-1) >= 0 {
		return nil, errStorageDown
	}
	return s.Storage.Get(ctx, key)
}

// sendCheckTransport calls check as each token request leaves, before Naver sees it.
type sendCheckTransport struct {
	mu    sync.Mutex
	check func()
}

func (t *sendCheckTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, tokenPath) {
		t.mu.Lock()
		check := t.check
		t.mu.Unlock()
		if check != nil {
			check()
		}
	}
	return http.DefaultTransport.RoundTrip(req)
}

// storedAppRequests is how many requests storage holds for testClientID's application, or
// -1 when the entry is missing or unreadable (it counts nothing then).
func storedAppRequests(s logical.Storage) int {
	entry, err := s.Get(context.Background(), appStorageKey(testClientID))
	if err != nil || entry == nil {
		return -1
	}
	var stored core.Counts
	if err := entry.DecodeJSON(&stored); err != nil {
		return -1
	}
	total := 0
	for _, n := range stored.Minutes {
		total += n
	}
	return total
}

// storeSellerTokens stores, behind the plugin's back, a fresh token for each of n sellers
// named prefix0..prefix<n-1>: what storage holds at a start after a long run.
func storeSellerTokens(t *testing.T, env *testEnv, prefix string, n int) {
	t.Helper()
	st, err := env.b.getConfig(context.Background(), env.storage)
	if err != nil || st == nil {
		t.Fatal(err)
	}
	now := env.clock.Now()
	for i := range n {
		tok := &cachedToken{
			AccessToken: fmt.Sprintf("tok-%s%d", prefix, i), TokenType: "Bearer",
			ExpiresAt: now.Add(3 * time.Hour), LatestExpiry: now.Add(3 * time.Hour),
			Key:         tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: fmt.Sprintf("%s%d", prefix, i)},
			Credentials: st.policy.credentials, FetchedAt: now,
		}
		tok.Fingerprint = tokenFingerprint(tok.AccessToken)
		if err := storeToken(context.Background(), env.storage, tok); err != nil {
			t.Fatal(err)
		}
	}
}

// prefixFailingStorage fails the operations its fields name, on keys with the prefix.
type prefixFailingStorage struct {
	logical.Storage
	mu       sync.Mutex
	failPut  string
	failList string
	lists    int
}

func (f *prefixFailingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	f.mu.Lock()
	fail := f.failPut != "" && strings.HasPrefix(e.Key, f.failPut)
	f.mu.Unlock()
	if fail {
		return errors.New("injected put failure")
	}
	return f.Storage.Put(ctx, e)
}

func (f *prefixFailingStorage) List(ctx context.Context, prefix string) ([]string, error) {
	f.mu.Lock()
	f.lists++
	fail := f.failList != "" && strings.HasPrefix(prefix, f.failList)
	f.mu.Unlock()
	if fail {
		return nil, errors.New("injected list failure")
	}
	return f.Storage.List(ctx, prefix)
}

func (f *prefixFailingStorage) set(fn func(f *prefixFailingStorage)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

// unreachableNaver is a network on which, while down, no request reaches Naver.
type unreachableNaver struct{ down atomic.Bool }

func (u *unreachableNaver) RoundTrip(req *http.Request) (*http.Response, error) {
	if u.down.Load() {
		return nil, fmt.Errorf("no answer: %w", context.DeadlineExceeded)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// hookStorage lets a test stop one storage operation on a chosen key (or prefix) until
// released.
type hookStorage struct {
	logical.Storage
	mu      sync.Mutex
	op      string // "get", "put" or "delete"
	prefix  string
	blocked chan struct{} // closed when a matching operation arrives
	release chan struct{}
}

func (h *hookStorage) arm(op, prefix string) (blocked, release chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.op, h.prefix, h.blocked, h.release = op, prefix, make(chan struct{}), make(chan struct{})
	return h.blocked, h.release
}

// wait holds an operation op on key if it is the one armed, once.
func (h *hookStorage) wait(op, key string) {
	h.mu.Lock()
	blocked, release := h.blocked, h.release
	if h.prefix != "" && h.op == op && strings.HasPrefix(key, h.prefix) {
		h.prefix = "" // once
	} else {
		blocked = nil
	}
	h.mu.Unlock()
	if blocked != nil {
		close(blocked)
		<-release
	}
}

// Get holds the answer, not the question: what was read stays what storage held then.
func (h *hookStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	entry, err := h.Storage.Get(ctx, key)
	h.wait("get", key)
	return entry, err
}

func (h *hookStorage) Put(ctx context.Context, entry *logical.StorageEntry) error {
	h.wait("put", entry.Key)
	return h.Storage.Put(ctx, entry)
}

func (h *hookStorage) Delete(ctx context.Context, key string) error {
	h.wait("delete", key)
	return h.Storage.Delete(ctx, key)
}

func (e *testEnv) rawRequest(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: e.storage, MountPoint: testMount}
	return e.b.HandleRequest(context.Background(), req)
}

// echoingGateway answers every token request with what answer builds from the request's
// signature: a gateway (or a proxy in front of it) that echoes input.
type echoingGateway struct {
	answer func(sign string) (status int, header http.Header, body string)
	mu     sync.Mutex
	signs  []string
}

func (g *echoingGateway) RoundTrip(req *http.Request) (*http.Response, error) {
	raw, _ := io.ReadAll(req.Body)
	req.Body.Close()
	form, _ := url.ParseQuery(string(raw))
	sign := form.Get("client_secret_sign")
	g.mu.Lock()
	g.signs = append(g.signs, sign)
	g.mu.Unlock()
	status, header, body := g.answer(sign)
	if header == nil {
		header = http.Header{}
	}
	header.Set("Content-Type", "application/json")
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Header: header,
		Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
}

func (g *echoingGateway) lastSign() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.signs) == 0 {
		return ""
	}
	return g.signs[len(g.signs)-1]
}

// assertNoSignatureFragment fails when text holds 8 or more consecutive characters of sign
// (README: any fragment of 8 or more characters of the signature is removed; status:
// "Never a token, a signature or the secret").
func assertNoSignatureFragment(t *testing.T, where, text, sign string) {
	t.Helper()
	for i := 0; i+minSecretFragment <= len(sign); i++ {
		if frag := sign[i : i+minSecretFragment]; strings.Contains(text, frag) {
			t.Errorf("%s holds the signature fragment %q (at %d of the signature): %q", where, frag, i, text)
			return
		}
	}
}

func echoingGatewayEnv(t *testing.T, gw *echoingGateway) *testEnv {
	env := newTestEnv(t)
	env.transport = gw
	env.b = env.newBackend()
	env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
		"verify_connection": false, "max_retries": 0})
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	return env
}
