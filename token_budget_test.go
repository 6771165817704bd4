package navercommerce

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// attemptRecorder records, for every token request, the clock as it reaches the transport
// and when the budgets say they counted it.
type attemptRecorder struct {
	clock *fakeClock

	mu      sync.Mutex
	arrived []time.Time
	counted []time.Time
}

func (r *attemptRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, tokenPath) {
		arrived := r.clock.Now()
		counted, ok := AttemptCountedAt(req)
		if !ok {
			counted = time.Time{}
		}
		r.mu.Lock()
		r.arrived = append(r.arrived, arrived)
		r.counted = append(r.counted, counted)
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

// slowCountsStorage takes 2 s of the fake clock for every write of the application's
// counts (a slow Raft apply) and records when each ended.
type slowCountsStorage struct {
	logical.Storage
	clock *fakeClock

	mu    sync.Mutex
	wrote []time.Time
}

func (s *slowCountsStorage) Put(ctx context.Context, e *logical.StorageEntry) error {
	if !strings.HasPrefix(e.Key, "applications/") {
		return s.Storage.Put(ctx, e)
	}
	err := s.Storage.Put(ctx, e)
	// Long enough in real time for the request to be signed meanwhile.
	time.Sleep(20 * time.Millisecond)
	s.clock.Advance(2 * time.Second)
	s.mu.Lock()
	s.wrote = append(s.wrote, s.clock.Now())
	s.mu.Unlock()
	return err
}

// AttemptCountedAt tells a simulation when the budgets counted each attempt (a config
// write's verification and retries included): when it left, after the write of the
// application's counts it waited for, as the core was told, not when the simulation asks.
// The backend's clock moves a millisecond at every reading, so each reading is its own.
func TestAttemptCountedAtIsWhenTheBudgetsCountedTheAttempt(t *testing.T) {
	env := newTestEnv(t)
	env.now = func() time.Time {
		now := env.clock.Now()
		env.clock.Advance(time.Millisecond)
		return now
	}
	rec := &attemptRecorder{clock: env.clock}
	env.transport = rec
	slow := &slowCountsStorage{Storage: env.storage, clock: env.clock}
	env.storage = slow
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.naver.InjectFault(navercommercetest.Fault{Status: 503, Count: 1})
	slow.mu.Lock()
	slow.wrote = nil
	slow.mu.Unlock()
	env.readToken("store")

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.counted) != 3 {
		t.Fatalf("%d token requests, want the verification, an attempt and its retry", len(rec.counted))
	}
	for i, counted := range rec.counted {
		if counted.IsZero() || !counted.Before(rec.arrived[i]) {
			t.Errorf("attempt %d: counted at %s, reached the transport at %s: want the instant it left, before", i, counted, rec.arrived[i])
		}
	}
	slow.mu.Lock()
	wrote := slow.wrote
	slow.mu.Unlock()
	if len(wrote) == 0 {
		t.Fatal("the read wrote no counts")
	}
	// Each attempt waits for a write of its own (the application is not busy: nothing
	// counted ahead).
	if len(wrote) != 2 {
		t.Fatalf("%d writes of the counts for an attempt and its retry, want 2", len(wrote))
	}
	for i, w := range wrote {
		if counted := rec.counted[1+i]; counted.Before(w) {
			t.Errorf("attempt %d counted at %s, before the write of the counts it waited for ended (%s)", 1+i, counted, w)
		}
	}
	if rec.counted[2].Before(rec.arrived[1]) {
		t.Errorf("the retry was counted at %s, before the first attempt reached the transport (%s)", rec.counted[2], rec.arrived[1])
	}
}
