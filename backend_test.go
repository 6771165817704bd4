package navercommerce

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/helper/errutil"
	"github.com/hashicorp/vault/sdk/helper/testhelpers/schema"
	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

const (
	testClientID = "7dMvteboKNHwyRremLXXXX"
	testSecret   = "$2a$04$QKLnou1D2cSH19Pia30bcu"
	otherSecret  = "$2a$04$0Wjc3tI6S0H6KsoKAylGde"
	testAccount  = "ncp_2sRZTWJVbDtHPoz9OXXXX"
	testMount    = "navercommerce/"
)

// fakeClock is shared by the backend and the emulator so time rules are tested without sleeping.
type fakeClock = navercommercetest.Clock

func newFakeClock() *fakeClock {
	return navercommercetest.NewClock(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC))
}

// testEnv is a backend on in-memory storage talking to an emulator, both on one fake clock.
type testEnv struct {
	t       *testing.T
	clock   *fakeClock
	naver   *navercommercetest.Server
	b       *backend
	storage logical.Storage
	// transport, when set before newBackend, carries the backend's requests to Naver.
	transport http.RoundTripper
	// spreadRenewals, when set before newBackend, spreads renewals over Naver's window as in
	// production; otherwise tokens are renewed when the window opens.
	spreadRenewals bool
	// now, when set before newBackend, is the backend's clock instead of clock.Now.
	now func() time.Time
	// logs collects every backend's log; tokens collects every token read, so the test can
	// check that no secret or token was logged.
	logs   syncBuffer
	tokens []string
}

type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	return newTestEnvWithApp(t, navercommercetest.Application{ClientID: testClientID, ClientSecret: testSecret})
}

// newTestEnvWithApp is newTestEnv with the emulator's one application given, e.g. with the
// sellers that authorised it.
func newTestEnvWithApp(t *testing.T, app navercommercetest.Application) *testEnv {
	t.Helper()
	clock := newFakeClock()
	naver := navercommercetest.NewServer(navercommercetest.Config{
		Applications: []navercommercetest.Application{app},
		Now:          clock.Now,
	})
	t.Cleanup(naver.Close)
	env := &testEnv{t: t, clock: clock, naver: naver, storage: &logical.InmemStorage{}}
	env.b = env.newBackend()
	t.Cleanup(func() {
		logs := env.logs.String()
		if !strings.Contains(logs, "naver token response") && env.naver.TokenRequests() > 0 {
			t.Error("the backend log was not captured")
		}
		assertNoSecrets(t, logs, env.tokens...)
	})
	return env
}

// newBackend is a fresh backend on the same storage: a restart or another node. Before a
// restart Vault cleans the old backend up, which waits for the tokens being stored behind
// reads; WaitIdle waits for them the same way (TestColdReadTokenSurvivesARestartRightAfterTheRead
// restarts through Clean itself).
func (e *testEnv) newBackend() *backend {
	e.t.Helper()
	if e.b != nil {
		e.b.WaitIdle()
	}
	now := e.clock.Now
	if e.now != nil {
		now = e.now
	}
	b := newBackend(backendOptions{now: now, transport: e.transport, renewAtWindowStart: !e.spreadRenewals})
	conf := logical.TestBackendConfig()
	conf.StorageView = e.storage
	conf.Logger = hclog.New(&hclog.LoggerOptions{Output: &e.logs, Level: hclog.Trace})
	if err := b.Setup(context.Background(), conf); err != nil {
		e.t.Fatal(err)
	}
	return b
}

// request runs one request the way Vault's router does, existence check included.
func (e *testEnv) request(b *backend, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	e.t.Helper()
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: e.storage, MountPoint: testMount}
	if op == logical.UpdateOperation {
		checkFound, exists, err := b.HandleExistenceCheck(context.Background(), req)
		if err != nil {
			return nil, err // Vault answers 400 with this
		}
		if checkFound && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	resp, err := b.HandleRequest(context.Background(), req)
	if err == nil && !resp.IsError() && op != logical.HelpOperation && !isRaw(resp) {
		// Every answer matches the schema its operation declares (OpenAPI, vault path-help);
		// a raw answer (metrics in Prometheus text) has a media type, not fields.
		route := b.Route(path)
		schema.ValidateResponse(e.t, schema.GetResponseSchema(e.t, route, req.Operation), resp, true)
	}
	return resp, err
}

func isRaw(resp *logical.Response) bool {
	if resp == nil {
		return false
	}
	_, raw := resp.Data[logical.HTTPRawBody]
	return raw
}

func (e *testEnv) write(path string, data map[string]any) (*logical.Response, error) {
	e.t.Helper()
	return e.request(e.b, logical.UpdateOperation, path, data)
}

func (e *testEnv) read(path string) (*logical.Response, error) {
	e.t.Helper()
	return e.request(e.b, logical.ReadOperation, path, nil)
}

func (e *testEnv) mustWrite(path string, data map[string]any) {
	e.t.Helper()
	resp, err := e.write(path, data)
	if err != nil || resp.IsError() {
		e.t.Fatalf("write %s: %v %v", path, err, resp.Error())
	}
}

func (e *testEnv) configure() {
	e.t.Helper()
	e.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": e.naver.URL})
}

func (e *testEnv) readToken(role string) *logical.Response {
	e.t.Helper()
	resp, err := e.read("token/" + role)
	if err != nil || resp.IsError() {
		e.t.Fatalf("read token/%s: %v %v", role, err, resp.Error())
	}
	e.tokens = append(e.tokens, resp.Data["access_token"].(string))
	return resp
}

func (e *testEnv) requestsFor(typ, account string) int {
	return e.naver.TokenRequestsFor(testClientID, typ, account)
}

// cachedToken is the token the backend holds in memory for a key of testClientID, or nil.
func (e *testEnv) cachedToken(typ, account string) *cachedToken {
	return e.b.tokens.cached(tokenKey{ClientID: testClientID, Type: typ, AccountID: account})
}

// assertCompliant fails the test if the emulator saw anything Naver would penalise.
func (e *testEnv) assertCompliant() {
	e.t.Helper()
	if v := e.naver.Violations(); len(v) > 0 {
		e.t.Errorf("emulator recorded non-compliant requests: %v", v)
	}
}

// errorText returns the user-visible error of a request, whichever way it was returned.
func errorText(resp *logical.Response, err error) string {
	if err != nil {
		return err.Error()
	}
	if resp != nil && resp.IsError() {
		return resp.Error().Error()
	}
	return ""
}

func httpStatus(resp *logical.Response, err error) int {
	var coded logical.HTTPCodedError
	if errors.As(err, &coded) {
		return coded.Code()
	}
	var user errutil.UserError
	if errors.As(err, &user) {
		return http.StatusBadRequest
	}
	if err != nil {
		return http.StatusInternalServerError
	}
	if resp != nil && resp.IsError() {
		return http.StatusBadRequest
	}
	return http.StatusOK
}

func assertNoSecrets(t *testing.T, text string, tokens ...string) {
	t.Helper()
	for _, s := range append([]string{testSecret, otherSecret, "JDJhJDA0J"}, tokens...) {
		if s != "" && strings.Contains(text, s) {
			t.Errorf("secret %q leaked into %q", s[:min(8, len(s))]+"...", text)
		}
	}
}

// inFlight reports whether a token request of key is in flight.
func (c *tokenCache) inFlight(key tokenKey) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.InFlight(key)
}

// requestsLastHour is how many requests key sent in the hour before now.
func (c *tokenCache) requestsLastHour(key tokenKey) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, _ := c.m.View(c.now(), key)
	return v.Requests1h
}

// memoryKeys lists the keys the core holds state for.
func (c *tokenCache) memoryKeys() []tokenKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.MemoryKeys()
}

// forgetEverything makes the backend start afresh over s: a new decision core, and no token
// or request count in storage (config and roles stay).
func (b *backend) forgetEverything(tb testing.TB, s logical.Storage) {
	tb.Helper()
	b.WaitIdle()
	for _, prefix := range []string{tokenStoragePrefix, appStoragePrefix} {
		keys, err := logical.CollectKeysWithPrefix(context.Background(), s, prefix)
		if err != nil {
			tb.Fatal(err)
		}
		for _, k := range keys {
			if err := s.Delete(context.Background(), k); err != nil {
				tb.Fatal(err)
			}
		}
	}
	c := b.tokens
	c.mu.Lock()
	c.m = core.New(core.Options{})
	st := c.configs[c.current]
	c.mu.Unlock()
	c.setConfig(s, st, false, false)
}
