package core

import (
	"errors"
	"testing"
	"time"
)

// "An account Naver refused is remembered (its reads fail at once with Naver's reason until
// a documented time passes or an operator drops it)." The sweep reads storage in parts and
// hands them to the machine later: an entry it read before a read of the key was refused by
// Naver (and the refusal stored) is older than what memory and storage now know. Judged
// stale on that old copy, the key's refusal was forgotten and its entry deleted: the next
// read asked Naver again.
func TestSweepOfAnOlderCopyKeepsARefusal(t *testing.T) {
	h := newHarness(t)
	key := Key{ClientID: "app", Type: TypeSeller, AccountID: "ncp_left"}
	// A token of the seller's from hours ago, long expired: what the sweep reads.
	old := Token{AccessToken: "old", TokenType: "Bearer", Key: key, Credentials: "c1", Fingerprint: Fingerprint("old"),
		FetchedAt: h.now.Add(-4 * time.Hour), ExpiresAt: h.now.Add(-time.Hour), LatestExpiry: h.now.Add(-time.Hour)}
	h.store[key.StorageKey()] = old

	// The seller revoked the application: Naver refuses the account; the refusal is stored.
	h.fail = &Outcome{Status: 403, AccountRefused: true}
	if _, err := h.read("ncp_left"); err == nil {
		t.Fatal("the read of a refused account succeeded")
	}
	h.fail = nil
	if h.store[key.StorageKey()].RefusedUntil.IsZero() {
		t.Fatal("the refusal was not stored")
	}
	sent := len(h.sent)

	// The sweep's part, read before the refusal landed, arrives now.
	h.step(Swept{Now: h.now, Done: true, Entries: []SweptEntry{{StorageKey: key.StorageKey(), Token: &old}}})

	if _, ok := h.store[key.StorageKey()]; !ok {
		t.Error("the entry holding the refusal was deleted")
	}
	h.now = h.now.Add(time.Minute)
	_, err := h.read("ncp_left")
	var refused *AccountRefusedError
	if !errors.As(err, &refused) {
		t.Errorf("a read of the refused account a minute later: %v, want Naver's refusal", err)
	}
	if n := len(h.sent) - sent; n != 0 {
		t.Errorf("%d requests to Naver for the account it refused a minute before, want 0", n)
	}
}
