package core

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// A key Naver issued a token to counts in the automatic budget for a token's life (README:
// "30 + 2 per token in use, that is per key Naver issued a token to within the last 3
// hours"), also when the token lived seconds: in a crash loop, the sweep a refused read
// waits for deletes the entries of such tokens (they expired), and must count them first,
// since "right after a start, a read it would refuse first has the tokens stored before the
// start counted". Seed 584 (long): Naver issuing 4-second tokens during a restart storm,
// reads were refused at the floor of 30 with 30 keys issued a token minutes before.
func TestCrashLoopCountsKeysIssuedShortLivedTokens(t *testing.T) {
	h := newHarness(t)
	h.life = 4 * time.Second
	for i := range 40 {
		h.start()
		before := len(h.sent)
		_, err := h.read(fmt.Sprintf("ncp_%d", i))
		var ab *AppBudgetError
		if errors.As(err, &ab) {
			t.Fatalf("process %d, after %d keys were issued a token within minutes: %v", i, before, err)
		}
		if len(h.sent) != before+1 {
			t.Fatalf("process %d sent %d requests, want 1 (%v)", i, len(h.sent)-before, err)
		}
		h.now = h.now.Add(4 * time.Second)
	}
}

// A key whose token expired before the 3 hours it counts in the automatic budget keeps
// counting in the next process: the sweep leaves the entry's fact (no token in it) until
// the key stops counting, instead of deleting the entry when the token expires. Seed 688
// (long): Naver issuing 20-minute tokens, the sweep deleted the entries of 23 keys issued a
// token within the hour, a restart followed, and 55 minutes later a read was refused at
// 30 + 2 × 19 with 42 keys counting.
func TestAKeyWhoseTokenExpiredCountsAfterARestart(t *testing.T) {
	h := newHarness(t)
	h.life = 20 * time.Minute
	for i := range 10 {
		if _, err := h.read(fmt.Sprintf("ncp_%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	h.now = h.now.Add(90 * time.Minute)
	h.tick() // the hourly sweep: every token expired an hour ago
	if len(h.store) != 10 {
		t.Fatalf("%d entries after the sweep, want the 10 keys' facts", len(h.store))
	}
	for sk, e := range h.store {
		if e.AccessToken != "" || e.Retired != RetiredExpired || e.Fingerprint == "" {
			t.Fatalf("%s after the sweep: token %q, retired %q, fingerprint %q; want the fact of an expired token", sk, e.AccessToken, e.Retired, e.Fingerprint)
		}
	}
	h.start()
	h.tick() // the new process's first sweep
	if got := h.m.App(h.now).InUse; got != 10 {
		t.Fatalf("after a restart %s after the keys were issued a token, %d keys in use, want 10", 90*time.Minute, got)
	}
	h.now = origin.Add(TokenLifetime + time.Minute)
	h.tick()
	if got := h.m.App(h.now).InUse; got != 0 {
		t.Fatalf("3 hours after the keys were issued a token, %d keys in use, want 0", got)
	}
	h.now = h.now.Add(SweepInterval)
	h.tick()
	if len(h.store) != 0 {
		t.Fatalf("%d entries left once the keys stopped counting, want none", len(h.store))
	}
}
