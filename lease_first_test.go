package navercommerce

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// putTimes records when each write of a token entry began.
type putTimes struct {
	logical.Storage
	mu    sync.Mutex
	times []time.Time
}

func (s *putTimes) Put(ctx context.Context, entry *logical.StorageEntry) error {
	if strings.HasPrefix(entry.Key, tokenStoragePrefix) {
		s.mu.Lock()
		s.times = append(s.times, time.Now())
		s.mu.Unlock()
	}
	return s.Storage.Put(ctx, entry)
}

func (s *putTimes) take() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.times
	s.times = nil
	return out
}

// withinOrFatal runs f and fails the test if it has not returned within limit.
func withinOrFatal(t *testing.T, limit time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("%s did not return within %s", what, limit)
	}
}

// The new token a read waited for is written after Vault has had time to write the read's
// lease: on Raft the lease's write then goes first, and the read does not wait for the
// token's.
func TestNewTokenIsWrittenAfterTheReadsLease(t *testing.T) {
	const held = 150 * time.Millisecond
	env, _ := coldEnv(t, 0)
	pt := &putTimes{Storage: env.storage}
	env.storage = pt
	env.b.tokens.leaseFirst = held
	start := time.Now()
	env.readToken("sellers/ncp_new_seller")
	answered := time.Since(start)
	env.b.WaitIdle()
	puts := pt.take()
	if len(puts) != 1 {
		t.Fatalf("%d writes of token entries, want 1", len(puts))
	}
	// The hold begins as the read is answered, before the answer reaches the caller.
	if waited := puts[0].Sub(start); waited < held {
		t.Errorf("the token's write began %s after the read began (answered after %s), want at least %s", waited, answered, held)
	}
	if answered >= held {
		t.Errorf("the read was answered after %s: it waited for the token's write held %s", answered, held)
	}
	if env.storedToken("SELLER", "ncp_new_seller") == nil {
		t.Error("the token was not stored")
	}
}

// A reload, seal or leader change (Vault cleans the backend up) ends the hold at once: the
// token is in storage for the next process, and the cleanup does not wait the hold out.
func TestCleanupWritesAHeldTokenAtOnce(t *testing.T) {
	env, _ := coldEnv(t, 0)
	env.b.tokens.leaseFirst = time.Hour
	served := env.readToken("new").Data[fieldAccessToken]
	withinOrFatal(t, time.Second, "Cleanup with a token's write held an hour", func() {
		env.b.Cleanup(context.Background())
	})
	env.b = nil
	env.b = env.newBackend()
	env.assertServedAgainWithoutAsking("new", served)
}

// Only writes of tokens a leased read was answered with are held: a background renewal's,
// a read served from memory's and a force drop's fact are written at once.
func TestOnlyTokensReadsWaitedForAreHeld(t *testing.T) {
	env, _ := coldEnv(t, 0)
	env.b.tokens.leaseFirst = 0
	first := env.readToken("new").Data[fieldAccessToken]
	env.b.WaitIdle()
	env.b.tokens.leaseFirst = time.Hour

	// Served from memory: nothing written, nothing held.
	withinOrFatal(t, 10*time.Second, "a read from memory and WaitIdle", func() {
		env.readToken("new")
		env.b.WaitIdle()
	})
	// A background renewal, in Naver's window.
	env.clock.Advance(2*time.Hour + 35*time.Minute)
	withinOrFatal(t, 10*time.Second, "a background renewal's write", func() {
		env.periodic(context.Background())
		env.b.WaitIdle()
	})
	renewed := env.storedToken("SELLER", testAccount)
	if renewed == nil || renewed.AccessToken == first {
		t.Fatal("the background renewal's token was not stored")
	}
	// A force drop's fact (a drop of a token Naver still accepts writes nothing).
	pt := &putTimes{Storage: env.storage}
	env.storage = pt
	withinOrFatal(t, 10*time.Second, "a force drop", func() {
		env.deleteToken("new", true)
		env.b.WaitIdle()
	})
	if len(pt.take()) == 0 {
		t.Error("the force drop wrote no fact: this step checks nothing")
	}
	env.b.tokens.leaseFirst = 0 // the cleanup at the end
}

// A lease-free read (lease=false) writes no lease: its new token is written at once, not
// held for nothing (a crash within a hold would lose it for no gain).
func TestALeaseFreeReadsTokenIsWrittenAtOnce(t *testing.T) {
	const held = 2 * time.Second // a loaded machine may start an unheld write late
	env, _ := coldEnv(t, 0)
	env.mustWrite("roles/free", map[string]any{"type": "SELLER", "account_id": "ncp_free_seller", "lease": false})
	pt := &putTimes{Storage: env.storage}
	env.storage = pt
	env.b.tokens.leaseFirst = held
	resp := env.readToken("free")
	answered := time.Now()
	if resp.Secret != nil {
		t.Fatal("the lease-free role's read has a lease")
	}
	env.b.WaitIdle()
	puts := pt.take()
	if len(puts) != 1 {
		t.Fatalf("%d writes of token entries, want 1", len(puts))
	}
	if d := puts[0].Sub(answered); d > held/2 {
		t.Errorf("a lease-free read's token was written %s after the answer: held for a lease that does not exist", d.Round(time.Millisecond))
	}
}

// Both READMEs state the hold the plugin uses.
func TestReadmesStateTheHoldBeforeANewTokensWrite(t *testing.T) {
	ms := leaseFirstDelay.Milliseconds()
	for file, want := range map[string]string{
		"README.md":    fmt.Sprintf("its write is held %d ms", ms),
		"README.ko.md": fmt.Sprintf("토큰 쓰기를 %dms 미루므로", ms),
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if text := strings.Join(strings.Fields(string(b)), " "); !strings.Contains(text, want) {
			t.Errorf("%s does not say %q", file, want)
		}
	}
}

// A leased read and a lease-free read joined on one request: the leased read's lease is
// written, so the token's write must still be held, whichever read's Serve comes last.
func TestALeasedReadJoinedByALeaseFreeOneHoldsTheToken(t *testing.T) {
	for _, order := range []string{"leased-first", "free-first"} {
		t.Run(order, func(t *testing.T) {
			const held = 300 * time.Millisecond
			env, _ := coldEnv(t, 0)
			env.mustWrite("roles/free", map[string]any{"type": "SELLER", "account_id": testAccount, "lease": false})
			pt := &putTimes{Storage: env.storage}
			env.storage = pt
			env.b.tokens.leaseFirst = held
			env.naver.InjectFault(navercommercetest.Fault{Delay: 300 * time.Millisecond, Count: 1})
			roles := []string{"new", "free"}
			if order == "free-first" {
				roles = []string{"free", "new"}
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var answered time.Time
			for i, r := range roles {
				wg.Add(1)
				go func() {
					defer wg.Done()
					resp, err := env.request(env.b, logical.ReadOperation, "token/"+r, nil)
					if msg := errorText(resp, err); msg != "" {
						t.Error(msg)
					}
					mu.Lock()
					if now := time.Now(); answered.IsZero() || now.Before(answered) {
						answered = now
					}
					mu.Unlock()
				}()
				if i == 0 {
					time.Sleep(50 * time.Millisecond)
				}
			}
			wg.Wait()
			env.b.WaitIdle()
			if n := env.requestsFor("SELLER", testAccount); n != 1 {
				t.Fatalf("%d requests, want 1 (reads not joined)", n)
			}
			puts := pt.take()
			if len(puts) != 1 {
				t.Fatalf("%d token writes, want 1", len(puts))
			}
			if d := puts[0].Sub(answered); d < held/2 {
				t.Errorf("token written %s after the first answer; a leased read joined, want held ~%s", d.Round(time.Millisecond), held)
			}
		})
	}
}
