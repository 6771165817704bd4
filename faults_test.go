package navercommerce

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// failingStorage is InmemStorage whose writes or reads can be made to fail.
type failingStorage struct {
	logical.InmemStorage
	failPuts, failGets atomic.Bool
}

var errStorageDown = errors.New("storage unavailable")

func (s *failingStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if s.failPuts.Load() {
		return errStorageDown
	}
	return s.InmemStorage.Put(ctx, e)
}

func (s *failingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	if s.failGets.Load() {
		return nil, errStorageDown
	}
	return s.InmemStorage.Get(ctx, key)
}

func TestStorageFaults(t *testing.T) {
	env := newTestEnv(t)
	storage := &failingStorage{}
	env.storage = storage
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})

	storage.failPuts.Store(true)
	if resp, err := env.write("config", map[string]any{"max_retries": 5}); err == nil {
		t.Fatalf("config write with failing storage succeeded: %v", resp)
	}
	if st, _ := env.b.getConfig(context.Background(), env.storage); st.config.MaxRetries != defaultMaxRetries {
		t.Error("a config write that failed to store changed the config in memory")
	}
	if resp, err := env.write("roles/store", map[string]any{"ttl": "5m"}); err == nil {
		t.Fatalf("role write with failing storage succeeded: %v", resp)
	}
	if r, _ := env.b.role(context.Background(), env.storage, "store"); r.TTL != 0 {
		t.Error("a role write that failed to store changed the role in memory")
	}

	// A new token is not requested while its request cannot be counted in storage (the
	// application's budget must survive a restart): a clean error naming storage.
	for range 2 {
		r, err := env.read("token/store")
		if msg := errorText(r, err); !strings.Contains(msg, "storage failed") {
			t.Fatalf("a token read with failing storage: want an error saying storage failed, got %q", msg)
		}
	}
	if n := env.requestsFor("SELLER", testAccount); n != 0 {
		t.Errorf("%d requests sent while they could not be counted in storage, want 0", n)
	}

	// With reads failing too, a fresh node cannot even load the role: a clean error.
	storage.failGets.Store(true)
	fresh := env.newBackend()
	r, err := env.request(fresh, logical.ReadOperation, "token/store", nil)
	if err == nil || !strings.Contains(err.Error(), "storage unavailable") {
		t.Fatalf("want a storage error, got %v %v", r, err)
	}
}

// Many readers over many keys while Naver misbehaves: no crash, no leaked goroutine, never
// more than one request per key in flight.
func TestConcurrentReadsDuringFaults(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	const roles, accounts, readers = 20, 10, 1000
	for i := range roles {
		env.mustWrite(fmt.Sprintf("roles/r%d", i), map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("ncp_%d", i%accounts)})
	}
	env.mustWrite("config", map[string]any{"max_retries": 1})
	before := runtime.NumGoroutine()

	env.naver.InjectFault(navercommercetest.Fault{Status: 500, Count: 3})
	env.naver.InjectFault(navercommercetest.Fault{Delay: 50 * time.Millisecond, Count: 3})
	env.naver.InjectFault(navercommercetest.Fault{DropConnection: true, Count: 2})
	env.naver.InjectFault(navercommercetest.Fault{Body: "<html>", Count: 2})

	var wg sync.WaitGroup
	var ok, failed atomic.Int32
	for i := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := env.request(env.b, logical.ReadOperation, fmt.Sprintf("token/r%d", i%roles), nil)
			if errorText(resp, err) != "" {
				failed.Add(1)
				return
			}
			ok.Add(1)
		}()
	}
	wg.Wait()
	t.Logf("%d reads succeeded, %d failed (injected faults)", ok.Load(), failed.Load())
	if ok.Load() == 0 {
		t.Fatal("no read succeeded")
	}
	for a := range accounts {
		acct := fmt.Sprintf("ncp_%d", a)
		if m := env.naver.MaxInFlight(testClientID, "SELLER", acct); m > 1 {
			t.Errorf("account %s: %d requests in flight at once", acct, m)
		}
	}
	env.assertCompliant()

	// Idle HTTP connections are the only goroutines allowed to linger.
	env.b.current.Load().client.http.HTTPClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before+2 {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}
