package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Seed 140: a seller re-authorised the application (the token is killed at Naver) while
// Naver did not answer; the operator's drop failed ("nothing was dropped"), so the plugin
// rightly kept serving the token it could not check. Only a drop that succeeds tells the
// plugin the token is dead; from then on it must never be served.
func TestKilledTokenIsTheDropsOnlyOnceADropSucceeds(t *testing.T) {
	seller := accountID(0, 0)
	start := []Action{
		{At: 0, Kind: actConfigNew, App: 0},
		{At: time.Minute, Kind: actRoleCreate, App: 0, Role: "r1", S: seller},
		{At: 2 * time.Minute, Kind: actRead, App: 0, Role: "r1"},
	}
	for _, tc := range []struct {
		name   string
		acts   []Action
		served int
	}{
		{"seed 140: the drop fails while Naver does not answer", []Action{
			{At: 10 * time.Minute, Kind: faultOutage, App: 0, S: "stall", D: 30 * time.Minute},
			// Killed at Naver; the drop's probe gets no answer: the drop fails.
			{At: 11 * time.Minute, Kind: actDrop, App: 0, Role: "r1", B: true},
			{At: 12 * time.Minute, Kind: actRead, App: 0, Role: "r1"},
			// Naver answers again: the drop takes, and the next read gets a new token.
			{At: 45 * time.Minute, Kind: actDrop, App: 0, Role: "r1"},
			{At: 46 * time.Minute, Kind: actRead, App: 0, Role: "r1"},
		}, 3},
		{"seed 1021: a read loading the token when the drop comes", []Action{
			// After a restart the read loads the stored token; the drop (killed at Naver)
			// starts meanwhile and may answer before the read does.
			{At: 10 * time.Minute, Kind: actConcurrent, App: 0, Role: "r1", S: actRead, Gate: "get:tokens/",
				Then: &Action{Kind: actDrop, App: 0, Role: "r1", B: true}},
			{At: 11 * time.Minute, Kind: actRead, App: 0, Role: "r1"},
		}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := Params{Days: 1.0 / 24, Apps: 1, RolesPerApp: 1, Accounts: 1}
			r := runSchedule(1, p, append(append([]Action{}, start...), tc.acts...))
			for _, v := range r.Violations {
				t.Errorf("%s", v)
			}
			if r.Stats.ReadsServed != tc.served {
				t.Errorf("%d reads served, want %d", r.Stats.ReadsServed, tc.served)
			}
		})
	}
}

// The check itself still fails when a token whose drop succeeded is served to a read that
// started after the drop answered; a read already running may have loaded it before.
func TestServingAKilledTokenAfterASuccessfulDropIsCaught(t *testing.T) {
	for _, tc := range []struct {
		name          string
		dropped       bool
		readAfterDrop bool
		want          bool
	}{
		{"drop failed", false, true, false},
		{"read concurrent with the drop", true, false, false},
		{"read after the drop", true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(7, Params{Days: 1, Apps: 1, RolesPerApp: 1, Accounts: 1})
			a := w.apps[0]
			key := "SELLER|" + accountID(0, 0)
			w.issued["dead-token"] = &issuedToken{app: 0, key: key, expires: w.now().Add(2 * time.Hour)}
			w.kill(w.issued["dead-token"])
			readStart := w.dropsDone
			if tc.dropped {
				w.markDropped(a, key)
			}
			if tc.readAfterDrop {
				readStart = w.dropsDone
			}
			resp := readResponse("dead-token", w.now().Add(2*time.Hour))
			w.checkRead(a, "r1", roleModel{exists: true, typ: "SELLER", account: accountID(0, 0)}, false, w.now(), readStart, resp, nil, false)
			got := false
			for _, v := range w.violations {
				got = got || v.Invariant == invTokenValid && strings.Contains(v.Detail, "killed at Naver")
			}
			if got != tc.want {
				t.Errorf("reported %v (%v), want %v", got, w.violations, tc.want)
			}
		})
	}
}

// readResponse is a read of token/<role> serving token until expires, without a lease.
func readResponse(token string, expires time.Time) *logical.Response {
	return &logical.Response{Data: map[string]any{
		"access_token": token,
		"token_type":   "Bearer",
		"expires_at":   expires.UTC().Format(time.RFC3339),
		"expires_in":   int64(2 * time.Hour / time.Second),
	}}
}
