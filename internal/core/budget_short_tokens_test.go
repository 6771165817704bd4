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
	h.dropWithFailedLoad(k, 1)
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

// A key in memory from the sweep's summary (a drop whose load failed) while another node
// writes its entry, and forgotten after: it leaves what the entry holds now, not the summary
// it came from, and the entry of the other node's live token is never deleted.
func TestAForgottenKeyLeavesWhatItsEntryHoldsNow(t *testing.T) {
	h := newHarness(t)
	if _, err := h.read("ncp_1"); err != nil {
		t.Fatal(err)
	}
	k := Key{ClientID: "app", Type: TypeSeller, AccountID: "ncp_1"}
	sk := k.StorageKey()
	h.now = origin.Add(10 * time.Minute)
	h.start()
	h.tick() // the first sweep decodes T1 (issued +0, expires +3h)

	h.now = origin.Add(70 * time.Minute)
	h.holdSweep = true
	h.step(Tick{Now: h.now}) // the hourly sweep is asked for; its answer comes later
	h.holdSweep = false
	if h.sweepsHeld != 1 {
		t.Fatalf("%d sweeps held", h.sweepsHeld)
	}
	h.dropWithFailedLoad(k, 1)
	// Another node writes T2, issued now, live until +4h10m.
	t2 := h.store[sk]
	t2.AccessToken, t2.Fingerprint = "other-node", Fingerprint("other-node")
	t2.FetchedAt, t2.ExpiresAt, t2.LatestExpiry = h.now, h.now.Add(3*time.Hour), h.now.Add(3*time.Hour)
	h.store[sk] = t2
	h.step(EntryChanged{Now: h.now, StorageKey: sk})
	// The held sweep's answer: T2 decoded (the plugin keeps its checksum from now on).
	h.swept[sk] = t2
	tt := t2
	h.step(Swept{Now: h.now, Done: true, Entries: []SweptEntry{{StorageKey: sk, Token: &tt}}})
	h.step(TickEnd{Now: h.now})

	h.now = origin.Add(71 * time.Minute)
	h.tick() // the key is idle: forgotten
	if ks := h.m.state(k); ks != nil {
		t.Fatalf("key still in memory")
	}
	if v, ok := h.m.View(h.now, k); !ok || !v.ExpiresAt.Equal(t2.ExpiresAt) {
		t.Errorf("+71m: status shows expiry %s (ok %t), the entry holds %s", v.ExpiresAt.Sub(origin), ok, t2.ExpiresAt.Sub(origin))
	}
	for _, at := range []time.Duration{2*time.Hour + 10*time.Minute, 3*time.Hour + 10*time.Minute} {
		h.now = origin.Add(at)
		h.tick()
		if _, ok := h.store[sk]; !ok {
			t.Fatalf("+%s: the entry holding the other node's live token (until +%s) was deleted", at, t2.ExpiresAt.Sub(origin))
		}
		if got := h.m.App(h.now).InUse; got != 1 {
			t.Errorf("+%s: %d keys in use, want 1 (Naver issued the key a token at +70m)", at, got)
		}
	}
}

// The sweep's summary a key keeps is copied by Clone and part of Digest (the model checker
// merges states by digest).
func TestAKeysStoredSummaryIsClonedAndDigested(t *testing.T) {
	h := newHarness(t)
	if _, err := h.read("ncp_1"); err != nil {
		t.Fatal(err)
	}
	k := Key{ClientID: "app", Type: TypeSeller, AccountID: "ncp_1"}
	h.now = origin.Add(10 * time.Minute)
	h.start()
	h.tick()
	h.now = origin.Add(15 * time.Minute)
	h.dropWithFailedLoad(k, 1)
	ks := h.m.state(k)
	if ks == nil || ks.stored == nil {
		t.Fatalf("no summary kept: %+v", ks)
	}
	c := h.m.Clone()
	cks := c.state(k)
	if cks.stored == ks.stored || *cks.stored != *ks.stored {
		t.Errorf("clone shares or loses the summary")
	}
	if c.Digest() != h.m.Digest() {
		t.Errorf("clone digests differently")
	}
	cks.stored = nil
	if c.Digest() == h.m.Digest() {
		t.Errorf("digest ignores keyState.stored")
	}
}

// tickHoldingSends runs a periodic run whose requests to Naver are held (returned).
// A renewal's answer with a token too short to serve, arriving after the config was deleted
// or its credentials changed: the key counts, as Naver issued it a token.
func TestALateUnservableAnswerCountsTheKey(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  func(h *harness) *Config
		want int
	}{
		{"config deleted", func(h *harness) *Config { return nil }, 1},
		{"new credentials", func(h *harness) *Config { c := h.cfg; c.Credentials = "c2"; return &c }, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if _, err := h.read("ncp_1"); err != nil {
				t.Fatal(err)
			}
			var held []Send
			for h.now = origin.Add(2*time.Hour + 35*time.Minute); len(held) == 0 && h.now.Before(origin.Add(3*time.Hour)); h.now = h.now.Add(time.Minute) {
				held = h.tickHoldingSends()
			}
			if len(held) != 1 {
				t.Fatalf("%d renewals", len(held))
			}
			h.step(ConfigSet{Now: h.now, Config: c.cfg(h), Written: true, RetireOthers: true})
			h.step(Answer{Now: h.now, Req: held[0].Req, Token: &Issued{AccessToken: "short", TokenType: "Bearer", ExpiresAt: h.now.Add(4 * time.Second), LatestExpiry: h.now.Add(4 * time.Second)}})
			h.now = origin.Add(TokenLifetime + time.Minute)
			if c.cfg(h) != nil {
				h.tick()
			}
			if got := h.m.countInUse("app", h.now).n; got != c.want {
				t.Errorf("%d in use, want %d", got, c.want)
			}
		})
	}
}

// A failed rewrite of an expired token as its fact puts memory back to the token storage
// still holds; a config write that keeps the credentials must not take that expired token
// for the cache.
func TestAFailedRewriteLeavesNoExpiredTokenForAConfigWriteToCache(t *testing.T) {
	h := newHarness(t)
	h.life = 20 * time.Minute
	if _, err := h.read("ncp_1"); err != nil {
		t.Fatal(err)
	}
	k := Key{ClientID: "app", Type: TypeSeller, AccountID: "ncp_1"}
	h.now = origin.Add(90 * time.Minute)
	h.stepFailingWrites(Tick{Now: h.now})
	h.stepFailingWrites(TickEnd{Now: h.now})
	cfg := h.cfg
	cfg.PerHour = 13
	h.step(ConfigSet{Now: h.now, Config: &cfg})
	if tok := h.m.Cached(k); tok != nil {
		t.Errorf("a token that expired %s ago is cached after a config write", h.now.Sub(tok.ExpiresAt))
	}
	if tok, err := h.read("ncp_1"); err != nil || tok.Life(h.now) <= 0 {
		t.Fatalf("read: %v, %v", tok, err)
	}
}
