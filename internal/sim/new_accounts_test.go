package sim

import (
	"fmt"
	"testing"
	"time"
)

// A read refused for max_new_accounts_per_hour is excused only when Naver refused at
// least that many accounts within the hour before.
func TestNewAccountsRefusalNeedsNaversRefusals(t *testing.T) {
	refusal := func(limit int) string {
		return fmt.Sprintf(`not asking Naver: role "sellers" has asked, in the last hour or now, for %d accounts that had no token from Naver and got none, its limit (max_new_accounts_per_hour; ...)`, limit)
	}
	seller := roleModel{exists: true, typ: "SELLER", account: manySellerID(0, 1)}
	for _, tc := range []struct {
		name    string
		refused []time.Duration // how long before the read Naver refused an account
		msg     string
		flagged bool
	}{
		{"ten refused within the hour, a bound of 10", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, refusal(10), false},
		{"nine refused within the hour, a bound of 10", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9}, refusal(10), true},
		{"ten refused, one of them 70 minutes ago", []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 70}, refusal(10), true},
		{"three refused, a bound of 3", []time.Duration{1, 20, 40}, refusal(3), false},
		{"none refused, a bound of 1", nil, refusal(1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(7, DefaultParams())
			a := w.apps[0]
			now := w.now()
			for i := len(tc.refused) - 1; i >= 0; i-- {
				a.noteAccountRefused(fmt.Sprintf("guess%d", i), now.Add(-tc.refused[i]*time.Minute))
			}
			if !w.checkNewAccountsRefusal(a, "sellers/"+seller.account, seller, tc.msg, now) {
				t.Fatal("the refusal was not recognised")
			}
			if flagged := len(w.violations) > 0; flagged != tc.flagged {
				t.Errorf("flagged %t, want %t (%v)", flagged, tc.flagged, w.violations)
			}
		})
	}
	w := newWorld(7, DefaultParams())
	if w.checkNewAccountsRefusal(w.apps[0], "sellers/x", seller, "not asking Naver again before X: the request at Y failed", w.now()) {
		t.Error("another refusal was taken for the bound on new accounts")
	}
}
