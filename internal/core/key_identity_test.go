package core

import (
	"testing"
	"unsafe"
)

// The machine finds a key's state by the ID of its storage entry, which is hashed from
// Key.String(). client_id and account_id may hold "|", so two keys can spell the same
// string (and share an entry): each must still keep a state of its own, found by its key,
// and the entry must name one of them for as long as either is in memory.
func TestKeysSpellingTheSameStringKeepTheirOwnState(t *testing.T) {
	a := Key{ClientID: "app|SELLER", Type: TypeSelf}                      // "app|SELLER|SELF|"
	b := Key{ClientID: "app", Type: TypeSeller, AccountID: "SELF|"}       // "app|SELLER|SELF|"
	other := Key{ClientID: "app", Type: TypeSeller, AccountID: "ncp_one"} // shares nothing
	if a.String() != b.String() || a.StoreID() != b.StoreID() {
		t.Fatalf("%q and %q should spell the same entry", a, b)
	}
	for _, tc := range []struct {
		name         string
		forget, keep Key
	}{
		{"first forgotten", a, b},
		{"second forgotten", b, a},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(Options{})
			sa, sb, so := m.key(a), m.key(b), m.key(other)
			if sa == sb || sa.key != a || sb.key != b {
				t.Fatalf("the two keys share a state: %q and %q", sa.key, sb.key)
			}
			if m.key(a) != sa || m.key(b) != sb || m.state(a) != sa || m.state(b) != sb || m.state(other) != so {
				t.Fatal("a key in memory was not found as itself")
			}
			if got := len(m.sortedKeys()); got != 3 {
				t.Fatalf("%d keys in memory, want 3", got)
			}
			if got := m.byStorageKey(a.StorageKey()); got != sa && got != sb {
				t.Fatal("the shared entry names no key in memory")
			}
			m.forget(m.state(tc.forget))
			kept := m.state(tc.keep)
			if m.state(tc.forget) != nil || kept == nil || kept.key != tc.keep {
				t.Fatalf("after forgetting %q: %q is not in memory as itself", tc.forget, tc.keep)
			}
			if m.byStorageKey(a.StorageKey()) != kept {
				t.Fatalf("the shared entry does not name %q, the key left in memory", tc.keep)
			}
			if got := m.MemoryKeys(); len(got) != 2 {
				t.Fatalf("keys in memory: %q, want 2", got)
			}
			m.forget(kept)
			if m.byStorageKey(a.StorageKey()) != nil || len(m.clashes) != 0 || m.state(other) != so {
				t.Fatal("a forgotten key is still found")
			}
		})
	}
}

// A key's account ID often comes from the request's path: the state must not keep that
// string (the whole path) alive.
func TestKeyStateCopiesTheAccountID(t *testing.T) {
	path := "token/sellers/ncp_seller00001"
	k := Key{ClientID: "app", Type: TypeSeller, AccountID: path[len("token/sellers/"):]}
	ks := New(Options{}).key(k)
	if ks.key != k {
		t.Fatalf("key %q, want %q", ks.key, k)
	}
	if unsafe.StringData(ks.key.AccountID) == unsafe.StringData(k.AccountID) {
		t.Error("the key's state shares the account ID's bytes with the path")
	}
}
