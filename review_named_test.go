package navercommerce

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

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

// A seller's token whose storing failed (or was still under way behind the read that fetched
// it) was evicted by a narrowing of its role and lost: widened again, the role's read asked
// Naver for the token Naver hands back, a needless request.
func TestReviewNamedEvictionKeepsUnstoredToken(t *testing.T) {
	env := newTestEnv(t)
	fs := &prefixFailingStorage{Storage: env.storage}
	env.storage = fs
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_*"})
	fs.set(func(f *prefixFailingStorage) { f.failPut = tokenStoragePrefix })
	env.readToken("sellers/" + testAccount)
	env.b.WaitIdle()
	fs.set(func(f *prefixFailingStorage) { f.failPut = "" })
	env.mustWrite("roles/sellers", map[string]any{"allowed_account_ids": "zz_*"})
	env.mustWrite("roles/sellers", map[string]any{"allowed_account_ids": "ncp_*"})
	env.readToken("sellers/" + testAccount)
	if n := env.requestsFor("SELLER", testAccount); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
	env.assertCompliant()
}

// Reads of many sellers race narrowings, widenings, deletes and re-creations of their role;
// once the role settles and the periodic run ran, every cached seller is one a role names,
// and Naver saw no needless request.
func TestReviewNamedRacingReadsAndRoleChanges(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_*"})
	const sellers = 12
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = env.request(env.b, logical.ReadOperation, fmt.Sprintf("token/sellers/ncp_%d", (i+g)%sellers), nil)
			}
		}()
	}
	shapes := []string{"ncp_1*", "ncp_*", "ncp_2*,ncp_3", "ncp_*"}
	for i := range 40 {
		if i%5 == 4 {
			_, _ = env.request(env.b, logical.DeleteOperation, "roles/sellers", nil)
			_, _ = env.request(env.b, logical.UpdateOperation, "roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_*"})
			continue
		}
		_, _ = env.request(env.b, logical.UpdateOperation, "roles/sellers", map[string]any{"allowed_account_ids": shapes[i%len(shapes)]})
	}
	_, _ = env.request(env.b, logical.UpdateOperation, "roles/sellers", map[string]any{"allowed_account_ids": "ncp_1*"})
	close(stop)
	wg.Wait()
	env.b.WaitIdle()
	env.periodic(context.Background())
	for i := range sellers {
		acct := fmt.Sprintf("ncp_%d", i)
		if env.cachedToken("SELLER", acct) != nil && !strings.HasPrefix(acct, "ncp_1") {
			t.Errorf("%s is cached though no role names it", acct)
		}
	}
	env.assertCompliant()
}

// A many-seller role's delete read the deleted role from storage once per seller it was read
// through (5,001 reads at 5,000 sellers: seconds on a storage with a millisecond per read).
// It reads each role at most once.
func TestReviewNamedDeleteReadsEachRoleOnce(t *testing.T) {
	const n = 2000
	env := newTestEnv(t)
	cs := &countingStorage{Storage: env.storage}
	env.storage = cs
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_*"})
	env.mustWrite("roles/other", map[string]any{"type": "SELLER", "allowed_account_ids": "zz_*"})
	storeSellerTokens(t, env, "ncp_", n)
	env.b = env.newBackend()
	env.mustRead("status")
	env.periodic(context.Background()) // every key now knows "sellers" names it
	cs.reset()
	deleteThroughPlugin(env)
	// The delete's own read, the config, and the roles read once for the check.
	if gets := cs.reset()["roles"]; gets > 5 {
		t.Errorf("the delete read roles %d times at %d sellers, want at most 5", gets, n)
	}
	if env.cachedToken("SELLER", "ncp_7") != nil {
		t.Error("a seller of the deleted role is still cached")
	}
}

// With listing roles failing, a many-seller role's delete tried the list once per seller
// and logged a warning per seller; the first failure leaves the rest for the periodic run.
func TestReviewNamedCheckStopsAtStorageFailure(t *testing.T) {
	const n = 300
	env := newTestEnv(t)
	fs := &prefixFailingStorage{Storage: env.storage}
	env.storage = fs
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_*"})
	storeSellerTokens(t, env, "ncp_", n)
	env.b = env.newBackend()
	env.mustRead("status")
	env.periodic(context.Background())
	fs.set(func(f *prefixFailingStorage) { f.failList = roleStoragePrefix; f.lists = 0 })
	deleteThroughPlugin(env)
	if lists, warned := fs.lists, strings.Count(env.logs.String(), "checking which roles name a token failed"); lists > 2 || warned > 2 {
		t.Errorf("with listing failing, the delete listed roles %d times and warned %d times at %d sellers", lists, warned, n)
	}
	// Listing works again: the periodic run checks the rest.
	fs.set(func(f *prefixFailingStorage) { f.failList = "" })
	env.periodic(context.Background())
	for _, acct := range []string{"ncp_0", "ncp_150", "ncp_299"} {
		if env.cachedToken("SELLER", acct) != nil {
			t.Errorf("%s is still cached after the periodic run", acct)
		}
	}
}
