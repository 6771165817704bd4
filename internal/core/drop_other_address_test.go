package core

import (
	"errors"
	"testing"
	"time"
)

// base_url pointed at another address (the secret kept): the old address's token is not
// served, but it is served again once base_url is set back. A drop meanwhile is of that
// token too: it is checked with Naver, and once Naver refuses it, it is never served again.
// Answered "no token is cached", the drop let the token the operator said was dead be served
// after base_url was set back (simulator seeds 66, 202, 235, 259, 437).
func TestADropWhileBaseURLPointsElsewhereIsOfTheOldAddresssToken(t *testing.T) {
	for _, tc := range []struct {
		name    string
		verdict ProbeResult
		dropped bool
	}{
		{"Naver refuses the token", ProbeResult{Alive: false}, true},
		{"Naver does not answer", ProbeResult{Err: errors.New("no answer from e2")}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			old, err := h.read("a")
			if err != nil {
				t.Fatal(err)
			}
			home := h.cfg
			elsewhere := h.cfg
			elsewhere.Credentials, elsewhere.Endpoint = "c1-at-e2", "e2"
			h.now = h.now.Add(10 * time.Minute)
			h.step(ConfigSet{Now: h.now, Config: &elsewhere, Written: true})
			h.now = h.now.Add(time.Minute)
			h.step(Drop{Now: h.now, ID: 1, Key: Key{ClientID: "app", Type: TypeSeller, AccountID: "a"}})
			if len(h.probes) != 1 || h.probes[0].Token != old.AccessToken {
				t.Fatalf("the drop asked Naver about %v (answered %+v), want the old address's token %s", h.probes, h.dropsDone[1], old.AccessToken)
			}
			verdict := tc.verdict
			verdict.Now, verdict.Drop = h.now, 1
			h.step(verdict)
			done := h.dropsDone[1]
			if got := done.Err == nil && done.Outcome == Dropped; got != tc.dropped {
				t.Fatalf("the drop answered %+v, dropped %v, want %v", done, got, tc.dropped)
			}
			h.now = h.now.Add(time.Minute)
			h.step(ConfigSet{Now: h.now, Config: &home, Written: true})
			before := len(h.sent)
			tok, err := h.read("a")
			if err != nil {
				t.Fatal(err)
			}
			if served := tok.AccessToken == old.AccessToken; served == tc.dropped {
				t.Errorf("base_url set back: served %s (%d requests), dropped %v", tok.AccessToken, len(h.sent)-before, tc.dropped)
			}
		})
	}
}
