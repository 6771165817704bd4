package core

import (
	"fmt"
	"math/rand"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// While Naver fails, a key's requests keep to the pace: a burst of up to 3, then one per
// interval, and never more than the budget in any sliding hour, whatever the budget.
func TestPacingSpreadsAFailingKeysBudget(t *testing.T) {
	for _, perHour := range []int{1, 2, 3, 6, 12, 60} {
		t.Run(fmt.Sprint(perHour), func(t *testing.T) {
			burst, interval := Pacing(perHour)
			start := origin
			log := &requestLog{}
			var sent []time.Time
			// A key that asks whenever the pace lets it, every 10 s, for 4 hours.
			for now := start; now.Before(start.Add(4 * time.Hour)); now = now.Add(10 * time.Second) {
				for {
					if n, _ := log.since(now, time.Hour); n >= perHour || now.Before(log.nextPaced(now, perHour)) {
						break
					}
					log.record(now, perHour, true)
					sent = append(sent, now)
				}
			}
			for i, at := range sent {
				n := 0
				for _, b := range sent[i:] {
					if b.Sub(at) < time.Hour {
						n++
					}
				}
				if n > perHour {
					t.Fatalf("%d requests in the hour from %v, over %d", n, at.Sub(start), perHour)
				}
				if i > 0 && i >= burst && at.Sub(sent[i-1]) > interval+10*time.Second {
					t.Errorf("a gap of %v before request %d, over the interval %v", at.Sub(sent[i-1]), i, interval)
				}
			}
			if !sent[burst-1].Equal(start) {
				t.Errorf("the first %d requests were not sent at once: %v", burst, sent[:burst])
			}
		})
	}
}

// Issue 25, item 6: every account ever named kept a request log for the life of the process
// (300 sellers last read 72 hours ago: no key in memory, 301 logs). A key is forgotten once
// nothing in it counts: a day without a token, a read or a request.
func TestIdleKeysAreForgotten(t *testing.T) {
	h := newHarness(t)
	for i := range 300 {
		if _, err := h.read(fmt.Sprintf("ncp_%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for range 72 {
		h.now = h.now.Add(time.Hour)
		h.tick()
	}
	if keys := h.m.MemoryKeys(); len(keys) != 0 {
		t.Errorf("%d keys held in memory 72 hours after their last read, want none", len(keys))
	}
	if views := h.m.Keys(h.now, nil); len(views) != 0 {
		t.Errorf("status lists %d keys, want none", len(views))
	}
}

// Issue 25, item 4: the unused count-ahead reserve was stored as sent, loaded as real after
// a restart, and the next process reserved 8 more on top: 150 restarts in 6 minutes sending
// 116 requests left 1,005 counted, and new sellers were refused from the 111th process on.
// What storage counts beyond the requests made stays within 8 a minute, however often the
// plugin restarts.
func TestRestartsDoNotStackReservedCounts(t *testing.T) {
	h := newHarness(t)
	h.cfg.AppPerHour = 800 // a hundredth: 8, so writes reserve ahead
	h.start()
	made := map[int64]int{}
	for i := range 150 {
		h.start() // a crash loop: every process makes a request or two
		for j := range 1 + i%2 {
			before := len(h.sent)
			if _, err := h.read(fmt.Sprintf("ncp_%d_%d", i, j)); err != nil {
				t.Fatalf("process %d: %v", i, err)
			}
			made[minuteOf(h.now)] += len(h.sent) - before
		}
		h.now = h.now.Add(2400 * time.Millisecond)
	}
	for m, n := range h.counts.Minutes {
		if n > made[m]+countReserve {
			t.Errorf("minute %d: storage counts %d requests, %d were made (at most %d more may be reserved)", m-minuteOf(origin), n, made[m], countReserve)
		}
		if n < made[m] {
			t.Errorf("minute %d: storage counts %d requests, fewer than the %d made", m-minuteOf(origin), n, made[m])
		}
	}
}

// A busy application's write reserves ahead; requests counted while a write of the next
// minute is in flight, having read the clock just before the minute ended, are still
// covered once it lands: storage never holds fewer requests than were sent.
func TestReservedCountsNeverUnderCountAcrossAMinuteBoundary(t *testing.T) {
	h := newHarness(t)
	h.cfg.AppPerHour = 10000
	h.start()
	start := h.now.Truncate(time.Minute)
	minute := func(i int) time.Time { return start.Add(time.Duration(i)*time.Minute + 30*time.Second) }
	stored := func() int {
		n := 0
		for _, v := range h.counts.Minutes {
			n += v
		}
		return n
	}
	n := 0
	send := func(at time.Time, account string) {
		t.Helper()
		h.now = at
		if _, err := h.read(account); err != nil {
			t.Fatal(err)
		}
		n++
		if s := stored(); s < n {
			t.Errorf("request %d (at %s) sent with %d counted in storage", n, at.Format("15:04:05"), s)
		}
	}
	for i := range 8 {
		send(minute(0), fmt.Sprint("busy", i))
	}
	send(minute(2), "reserve")
	// The first request of the next minute: its write is held...
	h.now = start.Add(3 * time.Minute)
	h.holdCounts = true
	h.readAsync("next")
	h.drain()
	// ...while requests that read the clock just before the minute ended are counted.
	h.now = h.now.Add(-time.Millisecond)
	for i := range 6 {
		h.readAsync(fmt.Sprint("late", i))
		h.drain()
	}
	h.holdCounts = false
	h.release()
	h.drain()
	if s := stored(); s < len(h.sent) {
		t.Errorf("once the write landed, storage holds %d requests; %d were sent", s, len(h.sent))
	}
}

// A backward step of the clock keeps the application's counts for an hour, not for the
// step's length plus an hour.
func TestClockStepBackKeepsCountsOnlyAnHour(t *testing.T) {
	a := newAppState("app")
	at := origin
	a.count(at, 1)
	back := at.Add(-2 * time.Hour)
	if n, _ := a.lastHour(back); n != 1 {
		t.Fatalf("right after the step back: %d requests counted, want 1", n)
	}
	if n, _ := a.lastHour(back.Add(62 * time.Minute)); n != 0 {
		t.Errorf("an hour after the step back: %d requests counted, want 0", n)
	}
}

// The sweep never deletes an entry a newer version of the plugin stored (a rollback must not
// lose what it knows), but deletes one that is damaged.
func TestSweepKeepsEntriesOfANewerFormat(t *testing.T) {
	m := New(Options{})
	cfg := Config{ClientID: "app", Credentials: "c1"}
	m.Step(ConfigSet{Now: origin, Config: &cfg})
	m.Step(SweepNow{Now: origin})
	m.Ready()
	m.Step(Swept{Now: origin, Done: true, Entries: []SweptEntry{
		{StorageKey: TokenPrefix + "newer", Undecodable: true, Newer: true},
		{StorageKey: TokenPrefix + "damaged", Undecodable: true},
	}})
	var deleted []string
	for _, e := range m.Ready() {
		if d, ok := e.(Delete); ok {
			deleted = append(deleted, d.StorageKey)
		}
	}
	if len(deleted) != 1 || deleted[0] != TokenPrefix+"damaged" {
		t.Errorf("deleted %v, want only the damaged entry", deleted)
	}
}

// The automatic budget grows with the keys Naver issued a token to, so it never refuses a
// healthy application, and not with accounts Naver refuses (issue 25, item 1: each guessed
// account raised it by 2).
func TestAutomaticBudgetGrowsOnlyWithIssuedKeys(t *testing.T) {
	h := newHarness(t)
	if got := h.m.App(h.now).Budget; got != AppBudgetFloor {
		t.Errorf("no keys: %d, want %d", got, AppBudgetFloor)
	}
	for i := range 100 {
		if _, err := h.read(fmt.Sprint("ncp_", i)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := h.m.App(h.now).Budget, AppBudgetFloor+AppBudgetPerKey*100; got != want {
		t.Errorf("100 sellers with tokens: %d, want %d", got, want)
	}
	h.fail = &Outcome{Status: 403, AccountRefused: true}
	for i := range 20 {
		h.read(fmt.Sprint("guess_", i))
	}
	if got, want := h.m.App(h.now).Budget, AppBudgetFloor+AppBudgetPerKey*100; got > want {
		t.Errorf("after 20 refused accounts: %d, want still %d", got, want)
	}
}

// A clone decides as the machine it was made from, and stays apart from it.
func TestCloneAndDigest(t *testing.T) {
	h := newHarness(t)
	h.read("a")
	h.readAsync("b") // a load left under way
	c := h.m.Clone()
	if c.Digest() != h.m.Digest() {
		t.Fatal("a clone has another digest")
	}
	h.drain()
	if c.Digest() == h.m.Digest() {
		t.Error("the clone changed with the machine")
	}
	if c.Cached(Key{ClientID: "app", Type: TypeSeller, AccountID: "b"}) != nil {
		t.Error("the clone holds what only the machine learnt")
	}
}

// An account Naver refused stays a refused account — not a failing one — until Naver is
// asked again, also after its hour; a drop forgets the refusal and the failure it left.
func TestRefusedAccountStaysRefusedUntilAskedAgain(t *testing.T) {
	h := newHarness(t)
	h.fail = &Outcome{Status: 403, AccountRefused: true}
	if _, err := h.read("revoked"); err == nil {
		t.Fatal("a refused account was served")
	}
	key := Key{ClientID: "app", Type: TypeSeller, AccountID: "revoked"}
	for _, at := range []time.Duration{time.Minute, 2 * time.Hour} {
		h.now = origin.Add(at)
		h.tick()
		v, ok := h.m.View(h.now, key)
		if !ok || v.AccountRefused == nil {
			t.Fatalf("+%s: the refused account is no longer reported refused: %+v", at, v)
		}
	}
	h.step(Drop{Now: h.now, ID: 1, Key: key})
	if v, _ := h.m.View(h.now, key); v.AccountRefused != nil || v.Failures != 0 || v.LastError != nil {
		t.Errorf("after a drop: refused %v, %d failures, last error %v; want none", v.AccountRefused, v.Failures, v.LastError)
	}
	h.fail = nil
	if _, err := h.read("revoked"); err != nil {
		t.Errorf("after a drop the next read did not ask Naver: %v", err)
	}
}

// GlobMatch agrees with a regular expression of the pattern (* is .*, all else literal).
func FuzzGlobMatch(f *testing.F) {
	for _, s := range [][2]string{{"*", "x"}, {"a*b*c", "abc"}, {"a**b", "ab"}, {"*_abc", "ncp_abc"}, {"a*a", "a"}, {"ncp_*_x*z", "ncp_1_xyz"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		if !utf8.ValidString(pattern) || !utf8.ValidString(s) {
			t.Skip() // regexp reads runes; GlobMatch, bytes
		}
		parts := strings.Split(pattern, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re, err := regexp.Compile(`^(?s:` + strings.Join(parts, ".*") + `)$`)
		if err != nil {
			t.Skip()
		}
		if got, want := GlobMatch(pattern, s), re.MatchString(s); got != want {
			t.Fatalf("GlobMatch(%q, %q) = %v, want %v", pattern, s, got, want)
		}
	})
}

// The count of keys in use (what the automatic application budget grows with) is kept, not
// recounted, as keys are issued tokens, renewed, forgotten and swept from storage after a
// restart, and as roles, the config and the clock change: the harness compares it with a fresh count after every step.
func TestKeysInUseCountIsKept(t *testing.T) {
	roles := []Role{
		{Type: TypeSeller, Allowed: []string{"*"}, NewAccountsPerHour: 1000},
		{Type: TypeSeller, Allowed: []string{"s1", "s2*"}, NewAccountsPerHour: 1000},
	}
	for seed := int64(1); seed <= 30; seed++ {
		rng := rand.New(rand.NewSource(seed))
		h := newHarness(t)
		narrow := false
		for i := 0; i < 400; i++ {
			switch rng.Intn(16) {
			case 0, 1, 2, 3, 4:
				account := fmt.Sprintf("s%d", rng.Intn(6))
				if narrow {
					account = []string{"s1", "s2"}[rng.Intn(2)]
				}
				h.read(account) //nolint:errcheck // a budget may refuse it: the count is what is checked
			case 5, 6:
				h.now = h.now.Add(time.Duration(rng.Intn(4*3600)) * time.Second)
			case 7, 8:
				h.tick()
			case 9:
				narrow = !narrow
				r := roles[0]
				if narrow {
					r = roles[1]
				}
				h.step(RoleSet{Now: h.now, Name: "sellers", Role: &r})
			case 10:
				h.start()
				narrow = false
			case 11:
				h.now = h.now.Add(25 * time.Hour)
				h.tick()
			case 12: // the hourly scan of the roles
				narrow = !narrow
				r := roles[0]
				if narrow {
					r = roles[1]
				}
				h.step(RolesLoaded{Now: h.now, Roles: map[string]Role{"sellers": r}})
			case 13:
				h.step(ConfigSet{Now: h.now})
				h.tick()
				cfg := h.cfg
				h.step(ConfigSet{Now: h.now, Config: &cfg})
			case 14:
				other := Role{Type: TypeSeller, AccountID: fmt.Sprintf("s%d", rng.Intn(6))}
				h.step(RoleSet{Now: h.now, Name: "one", Role: &other})
			case 15: // the clock steps back
				h.now = h.now.Add(-time.Duration(rng.Intn(3600)) * time.Second)
			}
		}
		if n := h.m.inUse("app", h.now); n > 6 {
			t.Fatalf("seed %d: %d keys in use of 6", seed, n)
		}
	}
}

// keyLess orders keys as their String() does.
func TestKeyLessOrdersAsString(t *testing.T) {
	parts := []string{"", "a", "ab", "a|", "b", "SELF", "SELLER"}
	for _, c1 := range parts {
		for _, t1 := range parts[:3] {
			for _, a1 := range parts {
				for _, c2 := range parts {
					for _, a2 := range parts {
						k1, k2 := Key{c1, t1, a1}, Key{c2, t1, a2}
						if got, want := keyLess(k1, k2), k1.String() < k2.String(); got != want {
							t.Fatalf("keyLess(%v, %v) = %v, want %v", k1, k2, got, want)
						}
					}
				}
			}
		}
	}
}

// Naver refusing the application's credentials (401: a secret re-issued at Naver before the
// config has the new one) is not a refusal of the account: it spends nothing of a role's
// max_new_accounts_per_hour, so new sellers are not locked out once the secret is fixed.
func TestCredentialRefusalSpendsNoNewAccountTries(t *testing.T) {
	h := newHarness(t)
	h.fail = &Outcome{Status: 401}
	read := func(account string) error {
		h.ids++
		id := ReadID(h.ids)
		h.step(Read{Now: h.now, ID: id, Key: Key{ClientID: "app", Type: TypeSeller, AccountID: account}, Role: "sellers", NewAccountsPerHour: 1})
		return h.failed[id]
	}
	if err := read("s1"); err == nil {
		t.Fatal("a read answered 401 did not fail")
	}
	h.fail = nil
	h.now = h.now.Add(10 * time.Second)
	if err := read("s2"); err != nil {
		t.Errorf("a new seller after a 401 of the credentials: %v", err)
	}
}

// In a crash loop every process reads a new seller or two: the automatic budget (30 + 2 per
// key Naver issued a token to in the last 3 hours) is never reached, so no read is refused
// by it, although each fresh process knows only the keys it read itself until its sweep has
// read the stored tokens.
func TestCrashLoopKeepsTheAutomaticBudget(t *testing.T) {
	h := newHarness(t)
	sent := 0
	for i := range 120 {
		h.start()
		for j := range 1 + i%2 {
			before := len(h.sent)
			if _, err := h.read(fmt.Sprintf("ncp_%d_%d", i, j)); err != nil {
				t.Fatalf("process %d, after %d requests to Naver for as many sellers: %v", i, sent, err)
			}
			sent += len(h.sent) - before
		}
		h.now = h.now.Add(10 * time.Second)
	}
	h.step(SweepNow{Now: h.now}) // as status does: the stored tokens are all known then
	if got, want := h.m.App(h.now).Budget, AppBudgetFloor+AppBudgetPerKey*sent; got != want {
		t.Errorf("budget after the crash loop: %d, want %d (%d sellers with tokens)", got, want, sent)
	}
}

// A key whose renewal failed serves its token with the failure as a warning, also when a
// config write moved the key's renewal point (renewal_spread) past the failed renewal, so
// that the token is not due any more: status calls the key stale all the same.
func TestFailingRenewalIsSaidAfterTheSpreadMoved(t *testing.T) {
	h := newHarness(t)
	h.m = New(Options{}) // the renewal spread in force
	cfg := h.cfg
	h.step(ConfigSet{Now: h.now, Config: &cfg})
	h.step(RolesLoaded{Now: h.now, Roles: map[string]Role{"sellers": {Type: TypeSeller, Allowed: []string{"*"}, NewAccountsPerHour: 1000}}})
	account := ""
	for i := 0; account == ""; i++ { // a seller whose point is well into a 29-minute spread
		if a := fmt.Sprint("ncp_", i); SpreadOffset(Key{ClientID: "app", Type: TypeSeller, AccountID: a}.SpreadHash(), 29*time.Minute) > 10*time.Minute {
			account = a
		}
	}
	tok, err := h.read(account)
	if err != nil {
		t.Fatal(err)
	}
	h.now = tok.ExpiresAt.Add(-RefreshWindow + time.Second) // due at the window's start (spread 0)
	h.fail = &Outcome{Status: 503}
	if _, err := h.read(account); err != nil { // served at once; its renewal behind it fails
		t.Fatal(err)
	}
	cfg.Spread = 29 * time.Minute
	h.step(ConfigSet{Now: h.now, Config: &cfg})
	h.now = h.now.Add(2 * time.Minute) // before the key's new point: not due
	before := len(h.sent)
	id := ReadID(h.ids + 1)
	if _, err := h.read(account); err != nil {
		t.Fatal(err)
	}
	if len(h.sent) != before {
		t.Fatalf("the read asked Naver: the token should not be due at its new point")
	}
	if h.warned[id] == nil {
		t.Error("served without a warning while the key's renewal fails")
	}
}

// A failure of the key before a verification brought a new token says nothing of that
// token: reads of it carry no warning (a config write keeping the credentials, e.g. a new
// proxy_url, verifies and fetches one).
func TestAVerifiedTokenIsServedWithoutAnOlderFailure(t *testing.T) {
	h := newHarness(t)
	self := Key{ClientID: "app", Type: TypeSelf}
	readSelf := func() (ReadID, *Token, error) {
		h.ids++
		id := ReadID(h.ids)
		h.step(Read{Now: h.now, ID: id, Key: self, Role: "app"})
		return id, h.served[id], h.failed[id]
	}
	_, t1, err := readSelf()
	if err != nil || t1 == nil {
		t.Fatal(err)
	}
	h.now = t1.ExpiresAt.Add(-RefreshWindow + time.Second)
	h.fail = &Outcome{Status: 503}
	if _, _, err := readSelf(); err != nil { // served; the renewal behind it fails
		t.Fatal(err)
	}
	h.fail = nil
	h.now = h.now.Add(5 * time.Minute)
	before := len(h.sent)
	h.step(Verify{Now: h.now, ID: 1, Config: h.cfg}) // proxy_url changed, same credentials
	if len(h.sent) != before+1 {
		t.Fatalf("the verification sent %d requests", len(h.sent)-before)
	}
	cfg := h.cfg
	h.step(ConfigSet{Now: h.now, Config: &cfg, Written: true})
	h.now = h.now.Add(time.Minute)
	id, t2, err := readSelf()
	if err != nil || t2 == nil {
		t.Fatal(err)
	}
	if t2.FetchedAt.Before(h.now.Add(-10 * time.Minute)) {
		t.Fatalf("not the verified token: fetched %v", t2.FetchedAt)
	}
	if w := h.warned[id]; w != nil {
		t.Errorf("a token fetched %v ago (expires %v) is served with: renewing this token failed (%v)", h.now.Sub(t2.FetchedAt), t2.ExpiresAt.Sub(h.now), w.Err)
	}
}

// A background renewal the background share refuses right after a start ends at once (only
// reads wait for the sweep): a read that needs more life than the token has must not join
// it and get the background share's refusal while the application has room for the read.
func TestAReadNeverJoinsABackgroundRenewalWaitingForTheSweep(t *testing.T) {
	h := newHarness(t)
	t1, err := h.read("a")
	if err != nil {
		t.Fatal(err)
	}
	h.now = t1.ExpiresAt.Add(-RefreshWindow + time.Second) // in the window: due
	// The application's hour: 25 requests (this process's predecessors), one key in use.
	minute := h.now.Unix() / 60
	h.counts = &Counts{Minutes: map[int64]int{minute - 5: 25}, Keys: map[int64]int{minute - 5: 1}, Reserved: map[int64]int{}}
	h.start() // a restart: the stored tokens are not known until the sweep
	h.holdSweep = true
	// Read 1: served at once (Ahead); its renewal behind it is refused by the background
	// share (24 of 32) and waits for the sweep.
	if _, err := h.read("a"); err != nil {
		t.Fatal(err)
	}
	if h.sweepsHeld == 0 {
		t.Log("no sweep asked for")
	}
	// Read 2: a role that needs 40 minutes of life (the token has 30).
	h.ids++
	id := ReadID(h.ids)
	before := len(h.sent)
	h.step(Read{Now: h.now, ID: id, Key: Key{ClientID: "app", Type: TypeSeller, AccountID: "a"}, Role: "sellers", NewAccountsPerHour: 1000, MinLife: 40 * time.Minute})
	// The sweep ends.
	h.holdSweep = false
	var entries []SweptEntry
	for sk, tk := range h.store {
		tk := tk
		entries = append(entries, SweptEntry{StorageKey: sk, Token: &tk})
	}
	h.step(Swept{Now: h.now, Entries: entries, Done: true})
	if err, ok := h.failed[id]; ok {
		n, _ := h.m.app("app").lastHour(h.now)
		t.Errorf("read 2 failed (%d sent for it; application hour %d of %d): %v", len(h.sent)-before, n, h.m.App(h.now).Budget, err)
	} else if _, ok := h.served[id]; !ok {
		t.Errorf("read 2 unanswered")
	}
}

// Two reads of one key while its request is at Naver share that request: one request, both
// served the token it brings (Naver penalises concurrent requests of one key).
func TestConcurrentReadsOfAKeyShareOneRequest(t *testing.T) {
	h := newHarness(t)
	h.holdCounts = true // the first request waits for the write of the counts: still in flight
	first := h.readAsync("a")
	h.drain()
	second := h.readAsync("a")
	h.drain()
	if len(h.pendingSends) != 1 {
		t.Fatalf("%d requests wait to go to Naver for two concurrent reads of one key, want 1", len(h.pendingSends))
	}
	h.holdCounts = false
	h.release()
	h.drain()
	if len(h.sent) != 1 {
		t.Fatalf("%d requests to Naver for two concurrent reads of one key, want 1", len(h.sent))
	}
	a, b := h.served[first], h.served[second]
	if a == nil || b == nil || a.AccessToken != b.AccessToken {
		t.Errorf("the reads were served %v and %v, want the one token", a, b)
	}
}
