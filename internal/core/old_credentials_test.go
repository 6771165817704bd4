package core

import (
	"errors"
	"testing"
	"time"
)

// A key's pace is what it owes for Naver failing at the address it asked. Once base_url (or
// proxy_url) names another address, a read of a key that has not failed there is not held
// back by that debt, even while another key's failure at the new address makes requests
// single: README, "A new base_url or proxy_url also forgets that Naver was failing at the
// old address".
func TestANewAddressForgetsTheOldAddressesPace(t *testing.T) {
	h := newHarness(t)
	h.fail = &Outcome{Status: 503}
	// The key fails at e1 for 10 minutes, read every 10 s: the burst of 3, then one request
	// per interval (6m40s), so it owes the pace.
	for i := 0; i < 60; i++ {
		h.read("s1")
		h.now = h.now.Add(10 * time.Second)
	}
	if n := len(h.sent); n != 4 {
		t.Fatalf("10 minutes of failures at the old address sent %d requests, want the pace's 4", n)
	}
	var be *BudgetError
	// The address changes; Naver fails there too, for another key first.
	h.cfg.Credentials, h.cfg.Endpoint = "c2", "e2"
	cfg := h.cfg
	h.step(ConfigSet{Now: h.now, Config: &cfg})
	h.now = h.now.Add(10 * time.Second)
	if _, err := h.read("s2"); err == nil || errors.As(err, &be) {
		t.Fatalf("the other key's read at the new address: %v, want Naver's failure", err)
	}
	h.now = h.now.Add(10 * time.Second)
	before := len(h.sent)
	_, err := h.read("s1")
	if errors.As(err, &be) && be.Paced {
		t.Fatalf("the key, which has not failed at the new address, was held back by the pace it owed the old one: %v", err)
	}
	if len(h.sent) != before+1 {
		t.Errorf("the key's read at the new address sent %d requests, want 1 (%v)", len(h.sent)-before, err)
	}
}

// A failure under credentials the config left never delays it when it returns to them: an
// operator who points base_url at a wrong address and back finds the keys' back-offs of
// before the detour forgotten, as the README promises of a new base_url ("forgets that Naver
// was failing at the old address") and of a new secret ("never delays the new one").
func TestReturningToOldCredentialsForgetsTheirFailures(t *testing.T) {
	h := newHarness(t)
	h.fail = &Outcome{Status: 503}
	for i := 0; i < 60; i++ { // 10 minutes of failures: the key backs off for its pace
		h.read("s1")
		h.now = h.now.Add(10 * time.Second)
	}
	good := h.cfg
	h.cfg.Credentials, h.cfg.Endpoint = "c2", "e2"
	cfg := h.cfg
	h.step(ConfigSet{Now: h.now, Config: &cfg, Written: true})
	h.now = h.now.Add(time.Minute)
	h.cfg = good
	cfg = h.cfg
	h.step(ConfigSet{Now: h.now, Config: &cfg, Written: true})
	h.fail = nil
	h.now = h.now.Add(10 * time.Second)
	if _, err := h.read("s1"); err != nil {
		t.Fatalf("after the config returned to its credentials, Naver healthy, the key's read failed: %v", err)
	}
}

// A config write's verification of a new address is not held back because the address the
// config has now fails: that is what the operator is fixing. Its request is no single, paced
// one of the failing address (README, verify_connection; "A new base_url or proxy_url also
// forgets that Naver was failing at the old address").
func TestVerifyingANewAddressIsNotPacedByTheFailingOne(t *testing.T) {
	h := newHarness(t)
	h.fail = &Outcome{Status: 503}
	self := Key{ClientID: "app", Type: TypeSelf}
	for i := 0; i < 60; i++ { // the SELF key fails at e1 for 10 minutes: it owes the pace
		h.ids++
		h.step(Read{Now: h.now, ID: ReadID(h.ids), Key: self, Role: "app"})
		h.now = h.now.Add(10 * time.Second)
	}
	if n := len(h.sent); n != 4 {
		t.Fatalf("10 minutes of failures sent %d requests, want the pace's 4", n)
	}
	h.fail = nil
	next := h.cfg
	next.Credentials, next.Endpoint = "c2", "e2"
	before := len(h.sent)
	h.step(Verify{Now: h.now, ID: 1, Config: next})
	if len(h.sent) != before+1 {
		t.Fatalf("the verification of the new address sent %d requests, want 1", len(h.sent)-before)
	}
}
