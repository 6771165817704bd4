package sim

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The bound of a many-seller role on new accounts (README, max_new_accounts_per_hour;
// issue 25, item 2): a role asks Naver for at most that many accounts that hold no token
// and that Naver then refused, in any sliding hour. A read refused by it is documented
// only when Naver refused at least that many of the role's accounts in the hour before.

// accountRefusal is Naver refusing a SELLER account of the application at a time.
type accountRefusal struct {
	account string
	at      time.Time
}

// noteAccountRefused notes Naver's refusal of account at now, and forgets those older
// than the bound's hour. Under w.mu.
func (a *app) noteAccountRefused(account string, now time.Time) {
	i := 0
	for i < len(a.accountRefusals) && now.Sub(a.accountRefusals[i].at) > 2*time.Hour {
		i++
	}
	a.accountRefusals = append(a.accountRefusals[i:], accountRefusal{account: account, at: now})
}

// newAccountsLimit reads the bound a refusal names ("has asked ... for N accounts").
var newAccountsLimit = regexp.MustCompile(`for (\d+) accounts that had no token from Naver`)

// newAccountsSlack is how far the plugin's clock of a refusal may be from the simulator's
// (the answer's latency, the request's end).
const newAccountsSlack = time.Minute

// checkNewAccountsRefusal checks a read through a many-seller role refused for
// max_new_accounts_per_hour: Naver must have refused at least that many of the
// application's accounts within the hour before. The plugin counts, per role, only the
// accounts that held no token, asked for through the role in this process; counting
// every refusal of the application's accounts is the most it may have counted (the role
// may have named other accounts earlier in the hour: its count outlives a re-creation).
// It reports whether msg was such a refusal.
func (w *world) checkNewAccountsRefusal(a *app, name string, r roleModel, msg string, now time.Time) bool {
	if !strings.Contains(msg, "max_new_accounts_per_hour") {
		return false
	}
	m := newAccountsLimit.FindStringSubmatch(msg)
	limit := 0
	if m != nil {
		limit, _ = strconv.Atoi(m[1])
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	refused := 0
	for _, f := range a.accountRefusals {
		if now.Sub(f.at) < time.Hour+newAccountsSlack {
			refused++
		}
	}
	if m == nil || refused < limit {
		w.violate(invRecovers, fmt.Sprint(a.idx)+"new-accounts", "app%d read token/%s refused for max_new_accounts_per_hour (a bound of %d), but Naver refused only %d of the application's accounts in the hour: %s%s",
			a.idx, name, limit, refused, msg, a.recent(r.key()))
	}
	return true
}
