package sim

import (
	"fmt"
	"strings"
	"time"
)

// The application's budget (README, max_application_requests_per_hour), checked against
// the requests the plugin really sent, and the counts it keeps of them against the same.

const (
	// appBudgetFloor and appBudgetPerKey make the automatic budget as the README states
	// it: 30 + 2 per token in use.
	appBudgetFloor  = 30
	appBudgetPerKey = 2
	// tokenLife is how long after its last read a key's token counts as in use.
	tokenLife = 3 * time.Hour
	// countAhead is the most requests one write of the application's counts may store
	// ahead of those sent, per minute (README: "at most 8 a minute").
	countAhead = 8
)

// appRequest is one token request of an application: when, and how many tokens were in
// use then.
type appRequest struct {
	at    time.Time
	inUse int
}

// appWindow is an application's requests of the last hour, and the most tokens in use
// when any of them was sent (a monotonic queue: its head is the largest).
type appWindow struct {
	reqs []appRequest
	most []appRequest
}

func (q *appWindow) add(r appRequest) {
	q.reqs = append(q.reqs, r)
	for len(q.most) > 0 && q.most[len(q.most)-1].inUse <= r.inUse {
		q.most = q.most[:len(q.most)-1]
	}
	q.most = append(q.most, r)
}

// trim forgets the requests at or before cut.
func (q *appWindow) trim(cut time.Time) {
	i := 0
	for i < len(q.reqs) && !q.reqs[i].at.After(cut) {
		i++
	}
	q.reqs = q.reqs[i:]
	j := 0
	for j < len(q.most) && !q.most[j].at.After(cut) {
		j++
	}
	q.most = q.most[j:]
}

// inUse is how many of the application's tokens are in use at now, as the README counts
// them: keys Naver issued a token to that were read within a token's life, or whose
// newest token is still alive (a minute more: the plugin prunes once a minute). A key
// Naver only refused has no token in use (issue 25, item 1). Counted once and then kept:
// a key comes into use only by a read or a token Naver issued (noteInUse adds it), and
// leaves use only as time passes, so the count holds until the first counted key leaves
// (inUseUntil) or the clock steps back. Under w.mu.
func (w *world) inUse(a *app, now time.Time) int {
	if !a.inUseAt.IsZero() && !now.Before(a.inUseAt) && now.Before(a.inUseUntil) {
		return a.inUseN
	}
	n, until := 0, now.Add(100*365*24*time.Hour) // none in use: until one comes into use
	for _, u := range a.inUseEnds {
		if now.Before(u) {
			n++
			if u.Before(until) {
				until = u
			}
		}
	}
	a.inUseAt, a.inUseN, a.inUseUntil = now, n, until
	return n
}

// inUseUntil is when key k leaves use (see world.inUse); zero if Naver never issued it a
// token.
func (k *keyModel) inUseUntil() time.Time {
	if !k.issued {
		return time.Time{}
	}
	u := k.lastRead.Add(tokenLife)
	if t := k.issuedAt.Add(tokenLife); t.After(u) {
		u = t
	}
	if k.latestExpires.After(u) {
		u = k.latestExpires
	}
	return u.Add(time.Minute)
}

// noteInUse keeps the count of tokens in use (world.inUse) when key k may have come into
// use at now. Under w.mu.
func (a *app) noteInUse(k *keyModel, now time.Time) {
	was, u := a.inUseEnds[k.idx], k.inUseUntil()
	a.inUseEnds[k.idx] = u
	if a.inUseAt.IsZero() || now.Before(a.inUseAt) || !now.Before(a.inUseUntil) {
		return // the next call counts afresh
	}
	if !now.Before(u) {
		return
	}
	if !now.Before(was) {
		a.inUseN++
	}
	// A counted key can leave use earlier than it would have (a shorter token than its
	// last): the count holds until it leaves.
	if u.Before(a.inUseUntil) {
		a.inUseUntil = u
	}
}

// readStarted notes a read of key k at now, for the count of tokens in use. Under w.mu.
func (a *app) readStarted(k *keyModel, now time.Time) {
	k.lastRead = now
	a.noteInUse(k, now)
}

// tokenIssued notes that Naver answered key k at now with a token expiring at expires
// (zero: handed back, its expiry known already). Under w.mu.
func (a *app) tokenIssued(k *keyModel, expires, now time.Time) {
	k.issued = true
	k.issuedAt = now
	if !expires.IsZero() {
		k.latestExpires = expires
	}
	a.noteInUse(k, now)
}

// appBudgetAt is the application's budget per hour at now as the README derives it: the
// configured one, or 30 + 2 per token in use, counting for the hour every token that was
// in use when a request of the hour was sent. Under w.mu.
func (w *world) appBudgetAt(a *app, now time.Time) int {
	if a.appPerHour > 0 {
		return a.appPerHour
	}
	most := w.inUse(a, now)
	if len(a.window.most) > 0 {
		most = max(most, a.window.most[0].inUse)
	}
	return appBudgetFloor + appBudgetPerKey*most
}

// checkAppBudget counts one token request of the application at now and checks that the
// last hour's requests stay within its budget. Under w.mu.
func (w *world) checkAppBudget(a *app, keyID string, now time.Time) {
	a.window.trim(now.Add(-time.Hour))
	a.window.add(appRequest{at: now, inUse: w.inUse(a, now)})
	n := len(a.window.reqs)
	if n <= appBudgetFloor && a.appPerHour == 0 || a.cfgWriting > 0 {
		// Within the floor no automatic budget binds; while a config write is under way
		// the plugin may count by the old value or the new.
		return
	}
	if budget := w.appBudgetAt(a, now); n > budget {
		how := fmt.Sprintf("max_application_requests_per_hour is %d", a.appPerHour)
		if a.appPerHour == 0 {
			how = fmt.Sprintf("the automatic budget is %d: 30 + 2 × %d tokens in use (keys Naver issued a token to, read within 3 hours)", budget, (budget-appBudgetFloor)/appBudgetPerKey)
		}
		w.violate(invAppBudget, fmt.Sprint(a.idx), "app%d sent %d token requests within an hour (the last of key %s); %s%s",
			a.idx, n, keyID, how, a.recent(keyID))
	}
}

// checkAppCounts compares the application's requests of the last hour that status reports
// (counted across restarts) with those the plugin sent: a count is never lost, and what
// restarts add that was never sent (the count-ahead reserve) is at most 8 a minute for
// each minute a reserve may have been left in before a restart (sentAndReserved). Under w.mu.
func (w *world) checkAppCounts(a *app, reported int, now time.Time) {
	cur := now.Unix() / 60
	sent, reserved := a.sentAndReserved(cur)
	for m := range a.sentMinutes {
		if m < cur-24*60 {
			delete(a.sentMinutes, m)
		}
	}
	for m := range a.restartMinutes {
		if m < cur-24*60 {
			delete(a.restartMinutes, m)
		}
	}
	if now.Sub(a.lastAppCountsFault) < time.Hour+2*time.Minute {
		// Storage failed on the counts within the hour: the plugin counts from memory.
		return
	}
	switch phantom := reported - sent; {
	case phantom > countAhead*reserved:
		w.violate(invAppCounts, fmt.Sprint(a.idx)+"phantom", "app%d status counts %d application requests in the last hour, but the plugin sent %d: %d never sent, with %d minute(s) a reserve may have been left in before a restart (at most %d a minute)%s",
			a.idx, reported, sent, phantom, reserved, countAhead, a.recent(""))
	case phantom < 0:
		w.violate(invAppCounts, fmt.Sprint(a.idx)+"lost", "app%d status counts %d application requests in the last hour, but the plugin sent %d: %d lost%s",
			a.idx, reported, sent, -phantom, a.recent(""))
	}
}

// noteStorageFault notes a storage failure injected on key, for the checks that excuse
// one. Under w.mu.
func (a *app) noteStorageFault(key string, now time.Time) {
	if strings.HasPrefix(key, "applications/") {
		a.lastAppCountsFault = now
	}
	if strings.HasPrefix(key, "tokens/") {
		a.lastTokenStorageFault = now
	}
}

// checkAppBudgetRefusal: a read refused by the application's budget must find it spent:
// the requests sent in the hour, with what the restarts in it may add that was never sent
// (the count-ahead reserve), reach the budget the README derives.
func (w *world) checkAppBudgetRefusal(a *app, name, msg string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sent, reserved := a.sentAndReserved(now.Unix() / 60)
	// The least budget the README allows: 30 + 2 per key Naver issued a token to within
	// the last 3 hours that a role names (issue 25, item 3; a read does not make a key
	// count, nor does Naver's refusal). A token the plugin never learnt of (answered to a
	// backend shut down meanwhile) does not count.
	budget, before := a.appPerHour, 0
	if budget == 0 {
		n := 0
		prefix := fmt.Sprint(a.idx) + "|"
		for id, k := range a.keys {
			tok := w.latest[prefix+id]
			if iss := w.issued[tok]; k.issued && iss != nil && now.Sub(iss.at) < tokenLife && !w.lostTokens[tok] && a.names(id) {
				n++
				if iss.at.Before(a.lastRestart) {
					before++
				}
			}
		}
		budget = appBudgetFloor + appBudgetPerKey*n
	}
	if reserved == 0 || sent+countAhead*reserved >= budget || a.cfgWriting > 0 || now.Sub(a.lastAppCountsFault) < time.Hour+2*time.Minute ||
		now.Sub(a.lastTokenStorageFault) < tokenLife { // a token whose storing failed is unknown to the next process
		// Without a restart in the hour, a refusal below the budget is a question of
		// which keys are in use, which the model does not follow closely enough.
		return
	}
	note := ""
	if sent+countAhead*reserved >= budget-appBudgetPerKey*before {
		// Spent only if the keys issued a token before the start are left out.
		note = fmt.Sprintf(" (%d of its keys were issued a token before the last start, %s ago) %s", before, now.Sub(a.lastRestart).Round(time.Second), noteBudgetAfterRestart)
	}
	w.violate(invAppCounts, fmt.Sprint(a.idx)+"refused", "app%d read token/%s refused by the application budget counting requests never sent: the plugin sent %d requests in the hour, reserves left before restarts in %d minute(s) may add %d, the budget is at least %d%s: %s%s",
		a.idx, name, sent, reserved, countAhead*reserved, budget, note, msg, a.recent(""))
}

// sentAndReserved sums the requests the plugin sent in the 61 minutes up to minute cur,
// and counts the minutes whose count-ahead reserve a restart may have left in storage as
// never sent (issue 25, item 11: at most 8 a minute across processes): a reserve is
// written by a process sending in its minute, and read back as sent by the next process,
// so every minute of the window up to the last restart in it that had a request sent or a
// restart may hold one. Under w.mu.
func (a *app) sentAndReserved(cur int64) (sent, reserved int) {
	last := int64(-1)
	for m := cur - 60; m <= cur; m++ {
		sent += a.sentMinutes[m]
		if a.restartMinutes[m] {
			last = m
		}
	}
	for m := cur - 60; m <= last; m++ {
		if a.sentMinutes[m] > 0 || a.restartMinutes[m] {
			reserved++
		}
	}
	return sent, reserved
}

// setAppPerHour follows a write of max_application_requests_per_hour (by the config
// writer, as the model's other config fields).
func (w *world) setAppPerHour(a *app, v int, now time.Time) {
	if a.appPerHour > w.naverAppLimit {
		a.aboveNaverAt = now
	}
	a.appPerHour = v
}

// operatorAboveNaver reports whether an operator set max_application_requests_per_hour
// above Naver's own limit within the last hour: the plugin may then send what Naver
// penalises as too many (README: the most requests "the whole application may send in any
// hour"; Naver's limit is not published), and app-budget judges it by the operator's value.
// Under w.mu.
func (w *world) operatorAboveNaver(a *app, now time.Time) bool {
	return a.appPerHour > w.naverAppLimit || !a.aboveNaverAt.IsZero() && now.Sub(a.aboveNaverAt) < time.Hour
}
