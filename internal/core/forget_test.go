package core

import (
	"testing"
	"time"
)

// Idle keys are forgotten (issue 25, item 6), but never one something still refers to: a drop
// whose question to Naver is under way holds its key. Forgotten meanwhile, the drop's load
// of the key's entry was ignored (no key in memory took it) and the drop never ended: the
// operator's DELETE waited until its request was cancelled, and the machine kept the drop.
func TestIdleKeyIsNotForgottenUnderADropUnderWay(t *testing.T) {
	h := newHarness(t)
	key := Key{ClientID: "app", Type: TypeSeller, AccountID: "ncp_quiet"}
	// A token stored before the start, with two minutes left; nobody read it since.
	tok := Token{AccessToken: "quiet", TokenType: "Bearer", Key: key, Credentials: "c1", Fingerprint: Fingerprint("quiet"),
		FetchedAt: h.now.Add(-3 * time.Hour), ExpiresAt: h.now.Add(2 * time.Minute), LatestExpiry: h.now.Add(2 * time.Minute)}
	h.store[key.StorageKey()] = tok
	h.step(Drop{Now: h.now, ID: 1, Key: key})
	if len(h.probes) != 1 {
		t.Fatalf("the drop asked Naver %d times, want once", len(h.probes))
	}
	// Naver is slow to answer; periodic runs come meanwhile: the token expires and is
	// evicted, and the key, read by nobody since the start, looks idle. (The driver bounds a
	// probe by request_timeout, at most 60 s; the core relies on no such bound.)
	for range 4 {
		h.now = h.now.Add(50 * time.Second)
		h.tick()
	}
	h.step(ProbeResult{Now: h.now, Drop: 1, Alive: false})
	done, ok := h.dropsDone[1]
	if !ok {
		t.Fatalf("the drop never ended; keys in memory: %v", h.m.MemoryKeys())
	}
	if done.Err != nil {
		t.Errorf("the drop failed: %v", done.Err)
	}
	if len(h.m.drops) != 0 {
		t.Errorf("%d drops kept by the machine after they ended", len(h.m.drops))
	}
}
