package core

import (
	"testing"
	"time"
)

// A config write of a mistyped secret, then of the right one again with verification: the
// token the verification got is of the credentials written, so it is served, and a config
// deleted and written again with them is verified by it without asking Naver. While the
// verification ran, the right secret's credentials were still the superseded ones of the
// config in force: its token was stored as a retired fact and the seed after the write could
// not bring it back, so the next SELF read and the next verification asked Naver while it
// had hours left (a needless request, which Naver penalises).
func TestAVerifiedTokenOfCredentialsWrittenBackIsServed(t *testing.T) {
	h := newHarness(t)
	self := Key{ClientID: "app", Type: TypeSelf}
	right := h.cfg
	wrong := h.cfg
	wrong.Credentials = "c1-mistyped"

	h.now = h.now.Add(time.Minute)
	h.step(ConfigSet{Now: h.now, Config: &wrong, Written: true, RetireOthers: true})
	h.now = h.now.Add(time.Minute)
	before := len(h.sent)
	h.step(Verify{Now: h.now, ID: 1, Config: right})
	done := h.verified[1]
	if done.Err != nil || done.Token == nil || len(h.sent) != before+1 {
		t.Fatalf("the verification: %+v, %d requests", done, len(h.sent)-before)
	}
	cfg := right
	h.step(ConfigSet{Now: h.now, Config: &cfg, Written: true, RetireOthers: true})
	h.step(Seed{Now: h.now, Token: *done.Token})

	h.now = h.now.Add(time.Minute)
	h.ids++
	id := ReadID(h.ids)
	before = len(h.sent)
	h.step(Read{Now: h.now, ID: id, Key: self, Role: "app"})
	if got := h.served[id]; got == nil || got.AccessToken != done.Token.AccessToken || len(h.sent) != before {
		t.Errorf("the SELF read after the write: served %v (%v), %d requests; want the verified token %s at once", got, h.failed[id], len(h.sent)-before, done.Token.AccessToken)
	}

	// The config deleted and written again: the verified token proves the credentials.
	h.now = h.now.Add(time.Minute)
	h.step(ConfigSet{Now: h.now})
	h.now = h.now.Add(time.Minute)
	before = len(h.sent)
	h.step(Verify{Now: h.now, ID: 2, Config: right})
	if d := h.verified[2]; !d.Fresh || len(h.sent) != before {
		t.Errorf("the verification after a delete: %+v, %d requests; want fresh, none", d, len(h.sent)-before)
	}
}
