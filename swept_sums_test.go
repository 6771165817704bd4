package navercommerce

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// The sweep remembers when each unchanged entry stops mattering in Unix nanoseconds: the
// time it hands the core must compare with any clock the plugin runs under as the entry's
// own time does (the zero time included: an entry that says nothing of its life).
func TestSweptKnownUntilComparesAsTheEntrysTime(t *testing.T) {
	now := time.Date(2026, 12, 7, 3, 0, 0, 123, time.UTC)
	for _, until := range []time.Time{
		{}, time.Unix(0, 0), now, now.Add(-1), now.Add(1), now.Add(3 * time.Hour),
		time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Unix(0, math.MaxInt64), time.Unix(0, math.MinInt64),
	} {
		got := fromUnixNanos(unixNanos(until))
		for _, clock := range []time.Time{now, now.Add(-1), now.Add(1), time.Unix(0, 1), time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)} {
			if got.Before(clock) != until.Before(clock) || got.After(clock) != until.After(clock) {
				t.Errorf("%v came back as %v: compares otherwise with %v", until, got, clock)
			}
		}
		if until.IsZero() && !got.IsZero() {
			t.Errorf("%v came back as %v", until, got)
		}
	}
	if got := fromUnixNanos(sweptEntry{}.knownUntil); !got.IsZero() {
		t.Errorf("an entry remembered with no time knows %v", got)
	}
}

// Entries whose names spell an ID and those that spell none (a foreign write's) are
// remembered apart, and a finished sweep forgets exactly those it did not see.
func TestSweptSumsKeepOnlyWhatTheSweepSaw(t *testing.T) {
	s := sweptSums{byID: map[core.StoreID]sweptEntry{}, byName: map[string]sweptEntry{}}
	seen := core.Key{ClientID: "app", Type: core.TypeSeller, AccountID: "ncp_seen"}.StorageKey()
	gone := core.Key{ClientID: "app", Type: core.TypeSeller, AccountID: "ncp_gone"}.StorageKey()
	foreign, foreignGone := tokenStoragePrefix+"not-an-id", tokenStoragePrefix+"NOT-AN-ID"
	for i, name := range []string{seen, gone, foreign, foreignGone} {
		s.set(sweptKeyOf(name), sweptEntry{sum: uint64(i + 1)})
	}
	s.keepOnly(map[sweptKey]struct{}{sweptKeyOf(seen): {}, sweptKeyOf(foreign): {}})
	for i, name := range []string{seen, gone, foreign, foreignGone} {
		e, ok := s.get(sweptKeyOf(name))
		if want := name == seen || name == foreign; ok != want || (ok && e.sum != uint64(i+1)) {
			t.Errorf("%s: remembered %t (sum %d), want %t", name, ok, e.sum, want)
		}
	}
	s.delete(sweptKeyOf(foreign))
	if _, ok := s.get(sweptKeyOf(foreign)); ok || len(s.byID) != 1 {
		t.Errorf("after deleting %s: %d by ID, %d by name", foreign, len(s.byID), len(s.byName))
	}
}

// An entry the sweep read unchanged is handed to the core with when Naver answered its key
// with the entry's token, as a decoded entry gives it: the automatic application budget
// counts a key in memory from its entry when its load is still out as the sweep ends.
func TestSweptUnchangedEntryKeepsWhenItsTokenWasIssued(t *testing.T) {
	ctx := context.Background()
	s := &logical.InmemStorage{}
	fetched := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	issued := &cachedToken{AccessToken: "tok", TokenType: "Bearer", ExpiresAt: fetched.Add(20 * time.Minute),
		Key: core.Key{ClientID: "app", Type: core.TypeSeller, AccountID: "ncp_1"}, Credentials: "c1", FetchedAt: fetched, Fingerprint: core.Fingerprint("tok")}
	refusal := &cachedToken{Key: core.Key{ClientID: "app", Type: core.TypeSeller, AccountID: "ncp_2"}, Credentials: "c1", RefusedUntil: fetched.Add(time.Hour)}
	for _, tok := range []*cachedToken{issued, refusal} {
		if err := storeToken(ctx, s, tok); err != nil {
			t.Fatal(err)
		}
	}
	c := newTokenCache(func() time.Time { return fetched }, nil, core.Options{})
	defer c.close()
	want := map[string]time.Time{issued.Key.StorageKey(): fetched, refusal.Key.StorageKey(): {}}
	for sweep := range 2 {
		got := c.sweepPart(s)
		if len(got.Entries) != 2 || !got.Done {
			t.Fatalf("sweep %d: %d entries, done %t", sweep, len(got.Entries), got.Done)
		}
		for _, e := range got.Entries {
			at := e.IssuedAt
			if e.Token != nil {
				at = core.IssuedAt(e.Token)
			} else if sweep == 0 {
				t.Fatalf("the first sweep did not decode %s", e.StorageKey)
			}
			if !at.Equal(want[e.StorageKey]) {
				t.Errorf("sweep %d: %s issued at %v, want %v", sweep, e.StorageKey, at, want[e.StorageKey])
			}
		}
	}
}

// A part of the sweep is judged at the time it was read at: an entry handed over undecoded
// because its time had not passed must not reach the core as stale, however long the part
// took (a slow storage read, a busy node).
func TestASweptPartIsJudgedAtTheTimeItWasRead(t *testing.T) {
	ctx := context.Background()
	s := &logical.InmemStorage{}
	start := time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC)
	tok := &cachedToken{AccessToken: "tok", TokenType: "Bearer", ExpiresAt: start.Add(210 * time.Second), LatestExpiry: start.Add(210 * time.Second),
		Key: core.Key{ClientID: "app", Type: core.TypeSeller, AccountID: "ncp_1"}, Credentials: "c1", FetchedAt: start, Fingerprint: core.Fingerprint("tok")}
	if err := storeToken(ctx, s, tok); err != nil {
		t.Fatal(err)
	}
	clock := start
	c := newTokenCache(func() time.Time { clock = clock.Add(time.Minute); return clock }, nil, core.Options{})
	defer c.close()
	for sweep := range 2 {
		got := c.sweepPart(s)
		for _, e := range got.Entries {
			if e.Token == nil && !got.Now.Before(e.KnownUntil) {
				t.Errorf("sweep %d handed %s over undecoded, known until %s, as of %s: stale to the core", sweep, e.StorageKey, e.KnownUntil.Format(time.TimeOnly), got.Now.Format(time.TimeOnly))
			}
		}
	}
}
