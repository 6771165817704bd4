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

// After a restart, the first sweep turns the entries of expired short tokens into facts
// through keys it puts in memory; the next periodic run forgets those keys (idle: never
// read in this process), and their entries must still count them (as summaries) until the
// next sweep, not an hour later.
func TestKeysTheSweepRewroteStillCountOnceForgotten(t *testing.T) {
	h := newHarness(t)
	h.life = 20 * time.Minute
	for i := range 10 {
		if _, err := h.read(fmt.Sprintf("ncp_%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	h.now = h.now.Add(70 * time.Minute) // the application's per-minute record of keys no longer covers them
	h.start()
	h.tick() // first sweep of the new process: every token expired, the keys count until +3h
	if got := h.m.App(h.now).InUse; got != 10 {
		t.Fatalf("after the first sweep: %d keys in use, want 10", got)
	}
	for i := 1; i <= 59; i++ {
		h.now = h.now.Add(time.Minute)
		h.tick()
		if got := h.m.App(h.now).InUse; got != 10 {
			t.Fatalf("%s after the first sweep (+%s after Naver's answers): %d keys in use, want 10 (budget %d, want 50)",
				time.Duration(i)*time.Minute, h.now.Sub(origin), got, h.m.App(h.now).Budget)
		}
	}
}

// The plugin hands the core an entry unchanged since the last sweep without decoding it
// (Token nil, KnownUntil and IssuedAt from sweptSums). A key in memory whose load failed has
// no fact: the sweep must not delete the entry while its key counts (3 hours).
func TestAnUndecodedEntryOfAKeyWhoseLoadFailedIsKeptWhileItCounts(t *testing.T) {
	h := newHarness(t)
	h.life = 20 * time.Minute
	if _, err := h.read("ncp_1"); err != nil {
		t.Fatal(err)
	}
	k := Key{ClientID: "app", Type: TypeSeller, AccountID: "ncp_1"}
	sk := k.StorageKey()
	stored := h.store[sk]
	// Restart 10 minutes later; its first sweep decodes the entry.
	h.now = origin.Add(10 * time.Minute)
	h.start()
	h.tick()
	// A read at +30m: its load fails (storage hiccup).
	h.now = origin.Add(30 * time.Minute)
	id := h.readAsync("ncp_1")
	var rest []Effect
	var loads []Load
	for _, e := range h.queue {
		if l, ok := e.(Load); ok {
			loads = append(loads, l)
			continue
		}
		rest = append(rest, e)
	}
	h.queue = rest
	for _, l := range loads {
		h.step(Loaded{Now: h.now, Key: l.Key, Err: errors.New("storage read failed")})
	}
	h.drain()
	if _, ok := h.failed[id]; !ok {
		t.Fatalf("read not failed")
	}
	// The next hourly sweep: the entry is unchanged, so the plugin does not decode it.
	h.now = origin.Add(10*time.Minute + SweepInterval)
	h.holdSweep = true
	h.step(Tick{Now: h.now})
	h.holdSweep = false
	if h.sweepsHeld != 1 {
		t.Fatalf("%d sweeps", h.sweepsHeld)
	}
	h.step(Swept{Now: h.now, Done: true, Entries: []SweptEntry{{StorageKey: sk, KnownUntil: stored.KnownUntil(), IssuedAt: IssuedAt(&stored)}}})
	h.step(TickEnd{Now: h.now})
	if got := h.m.App(h.now).InUse; got != 1 {
		t.Errorf("in use before restart: %d", got)
	}
	if _, ok := h.store[sk]; !ok {
		t.Errorf("at %s the entry is gone though its key counts until %s", h.now.Sub(origin), stored.FetchedAt.Add(TokenLifetime).Sub(origin))
	}
	h.start()
	h.tick()
	if got := h.m.App(h.now).InUse; got != 1 {
		t.Errorf("after a restart at +%s: %d keys in use, want 1", h.now.Sub(origin), got)
	}
}

// The same with the key's load still out when the sweep's part lands (the case
// sweep_counts_key_while_loading.txt covers for the count, not for the entry).
func TestAnUndecodedEntryOfAKeyBeingLoadedIsKeptWhileItCounts(t *testing.T) {
	h := newHarness(t)
	h.life = 20 * time.Minute
	if _, err := h.read("ncp_1"); err != nil {
		t.Fatal(err)
	}
	k := Key{ClientID: "app", Type: TypeSeller, AccountID: "ncp_1"}
	sk := k.StorageKey()
	stored := h.store[sk]
	h.now = origin.Add(10 * time.Minute)
	h.start()
	h.tick() // decodes the entry; the plugin keeps its checksum
	h.now = origin.Add(10*time.Minute + SweepInterval)
	h.readAsync("ncp_1") // its load is out
	var loads []Load
	var rest []Effect
	for _, e := range h.queue {
		if l, ok := e.(Load); ok {
			loads = append(loads, l)
			continue
		}
		rest = append(rest, e)
	}
	h.queue = rest
	h.drain()
	if len(loads) != 1 {
		t.Fatalf("%d loads", len(loads))
	}
	h.holdSweep = true
	h.step(Tick{Now: h.now})
	h.holdSweep = false
	h.step(Swept{Now: h.now, Done: true, Entries: []SweptEntry{{StorageKey: sk, KnownUntil: stored.KnownUntil(), IssuedAt: IssuedAt(&stored)}}})
	h.step(TickEnd{Now: h.now})
	if _, ok := h.store[sk]; !ok {
		t.Errorf("at +%s the entry is gone though its key counts until +%s", h.now.Sub(origin), stored.FetchedAt.Add(TokenLifetime).Sub(origin))
	}
}

// Storage refusing writes (a full disk, a read-only node): the sweep's delete of an
// expired entry is tried once an hour, and so is its rewrite as a fact, not every periodic
// run (a write storm while storage refuses writes).
func TestAFailingRewriteOfAnExpiredTokenWaitsForTheNextSweep(t *testing.T) {
	h := newHarness(t)
	h.life = 20 * time.Minute
	const keys = 100
	for i := range keys {
		if _, err := h.read("ncp_" + string(rune('a'+i%26)) + string(rune('a'+i/26))); err != nil {
			t.Fatal(err)
		}
	}
	h.now = h.now.Add(70 * time.Minute)
	h.start()
	tries := 0
	for range 60 {
		tries += h.stepFailingWrites(Tick{Now: h.now})
		tries += h.stepFailingWrites(TickEnd{Now: h.now})
		h.now = h.now.Add(time.Minute)
	}
	if tries > keys {
		t.Errorf("%d storage writes tried in an hour for %d stale entries while storage refuses writes (the delete was tried once an hour)", tries, keys)
	}
	if got := h.m.App(h.now).InUse; got != keys {
		t.Errorf("with storage refusing the rewrites, %d keys in use, want %d (Naver answered them %s ago)", got, keys, h.now.Sub(origin))
	}
	// Storage heals: the next sweep rewrites every entry as its fact, and the keys still count.
	h.now = h.now.Add(SweepInterval - 60*time.Minute + time.Minute)
	h.tick()
	for sk, e := range h.store {
		if e.AccessToken != "" {
			t.Fatalf("%s still holds its expired token after the sweep that followed storage's recovery", sk)
		}
	}
	if got := h.m.App(h.now).InUse; got != keys {
		t.Errorf("after storage recovered, %d keys in use, want %d", got, keys)
	}
}

// A drop of a key not in memory whose load fails puts the key in memory (its summary taken
// out of the sweep's) and the next periodic run forgets it again, with no fact: the summary
// must come back, or neither the budget nor status knows the stored token until it expires
// (the plugin hands the unchanged entry over undecoded meanwhile).
func TestAForgottenKeyWhoseLoadFailedLeavesItsSummary(t *testing.T) {
	h := newHarness(t)
	if _, err := h.read("ncp_1"); err != nil {
		t.Fatal(err)
	}
	k := Key{ClientID: "app", Type: TypeSeller, AccountID: "ncp_1"}
	h.now = origin.Add(10 * time.Minute)
	h.start()
	h.tick() // the first sweep decodes the entry
	if got := h.m.App(h.now).InUse; got != 1 {
		t.Fatalf("after the first sweep: %d in use", got)
	}
	h.now = origin.Add(15 * time.Minute)
	h.m.Step(Drop{Now: h.now, ID: 1, Key: k})
	for _, e := range h.m.Ready() {
		if l, ok := e.(Load); ok {
			h.step(Loaded{Now: h.now, Key: l.Key, Err: errors.New("storage read failed")})
			continue
		}
		h.effect(e)
	}
	h.drain()
	for _, at := range []time.Duration{16 * time.Minute, 70 * time.Minute, 130 * time.Minute} {
		h.now = origin.Add(at)
		h.tick()
		if got := h.m.App(h.now).InUse; got != 1 {
			t.Errorf("+%s: %d keys in use, want 1 (the stored token Naver issued at +0 is live until +3h)", at, got)
		}
		if v, ok := h.m.View(h.now, k); !ok || v.ExpiresAt.IsZero() {
			t.Errorf("+%s: status does not show the stored token (ok %t, %+v)", at, ok, v)
		}
	}
}

// An entry handed over undecoded (unchanged, its time not passed when the plugin read it)
// that is stale by the time the core judges it, of a key neither in memory nor summarised:
// never deleted blind while its key may still count; a later sweep decodes it.
func TestAnUndecodedEntryIsNeverDeletedBlindWhileItsKeyMayCount(t *testing.T) {
	h := newHarness(t)
	h.life = 20 * time.Minute
	if _, err := h.read("ncp_1"); err != nil {
		t.Fatal(err)
	}
	sk := Key{ClientID: "app", Type: TypeSeller, AccountID: "ncp_1"}.StorageKey()
	stored := h.store[sk]
	h.now = stored.ExpiresAt.Add(time.Millisecond)
	h.start()
	h.holdSweep = true
	h.step(Tick{Now: h.now})
	h.holdSweep = false
	h.step(Swept{Now: h.now, Done: true, Entries: []SweptEntry{{StorageKey: sk, KnownUntil: stored.KnownUntil(), IssuedAt: IssuedAt(&stored)}}})
	h.step(TickEnd{Now: h.now})
	if _, ok := h.store[sk]; !ok {
		t.Errorf("at +%s the entry was deleted though its key counts until +%s", h.now.Sub(origin), IssuedAt(&stored).Add(TokenLifetime).Sub(origin))
	}
}

// Naver answers a renewal with a token too short to serve (4 s) while the cached one is
// still servable: the answer is not served or published over it, but Naver issued it, so
// the key counts for 3 hours from then.
func TestARenewalAnsweredWithAnUnservableTokenCountsTheKey(t *testing.T) {
	h := newHarness(t)
	if _, err := h.read("ncp_1"); err != nil {
		t.Fatal(err)
	}
	h.life = 4 * time.Second
	sent := len(h.sent)
	for h.now = origin.Add(2*time.Hour + 35*time.Minute); len(h.sent) == sent && h.now.Before(origin.Add(3*time.Hour)); h.now = h.now.Add(time.Minute) {
		h.tick()
	}
	if len(h.sent) == sent {
		t.Fatal("no renewal")
	}
	renewedAt := h.now.Add(-time.Minute)
	h.now = origin.Add(TokenLifetime + time.Minute)
	h.tick()
	if got := h.m.App(h.now).InUse; got != 1 {
		t.Errorf("at +%s: %d keys in use, want 1 (Naver issued the key a token at +%s)", h.now.Sub(origin), got, renewedAt.Sub(origin))
	}
}
