package modelcheck

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// A Choice is one event that may happen next in the world: an app's read, an operator's
// request, the clock moving, the plugin restarting, or an effect of the core ending (a
// storage operation succeeding or failing, Naver answering one way or another).
type Choice struct {
	Name string
	do   func(w *World)
}

// Choices lists, in a fixed order, what may happen next.
func (w *World) Choices() []Choice {
	var cs []Choice
	add := func(name string, do func(w *World)) { cs = append(cs, Choice{Name: name, do: do}) }
	p := w.P
	configured := w.cfgName != ""
	for _, name := range []string{"a", "b", "x"} {
		_, role, _ := keyByName(name)
		if configured && w.roles[role] != nil && p.allows("read "+name) && w.readsOf(name) < 2 {
			add("read "+name, func(w *World) { w.read(name) })
		}
	}
	if configured && w.roles["one"] != nil && p.allows("drop") {
		add("drop a", func(w *World) { w.drop("a", false) })
		add("drop a force", func(w *World) { w.drop("a", true) })
	}
	for _, role := range []string{"one", "many"} {
		if !p.allows("role") && !p.allows("role "+role) {
			continue
		}
		if w.roles[role] != nil {
			add("role "+role+" delete", func(w *World) { w.setRole(role, false) })
		} else {
			add("role "+role+" create", func(w *World) { w.setRole(role, true) })
		}
	}
	if w.writing == nil {
		if configured && (p.allows("config") || p.allows("config delete")) {
			add("config delete", func(w *World) { w.deleteConfig() })
		}
		for _, name := range []string{"c1", "c2", "bad"} {
			if name != w.cfgName && (p.allows("config") || p.allows("config "+name)) {
				add("config "+name, func(w *World) { w.writeConfig(name) })
			}
		}
	}
	if p.allows("tick") {
		add("tick", func(w *World) { w.tick() })
	}
	if p.allows("advance") {
		seen := map[string]bool{}
		for _, at := range w.interestingTimes() {
			if name := "advance " + offset(at); !seen[name] {
				seen[name] = true
				add(name, func(w *World) { w.advance(at) })
			}
		}
	}
	if p.allows("restart") {
		add("restart", func(w *World) { w.restart() })
	}
	if w.naver.cur[keyA] != nil && p.allows("kill") {
		add("kill a", func(w *World) { w.naver.kill(keyA); w.logf("naver: token of a killed") })
	}
	for i, p := range w.pending {
		for _, outcome := range w.outcomes(p) {
			add(fmt.Sprintf("pending %d %s", i, outcome), func(w *World) { w.complete(i, outcome) })
		}
	}
	return cs
}

// Do carries out the choice named name; false if there is none by that name now. A script
// may also advance the clock to any time ahead ("advance +HH:MM:SS"), not only to the
// moments the model checker tries.
func (w *World) Do(name string) bool {
	for _, c := range w.Choices() {
		if c.Name == name {
			w.logf("> %s", name)
			c.do(w)
			return true
		}
	}
	if name == "settle" {
		// Everything under way ends well, first come first: a script's shorthand.
		w.logf("> settle")
		for i := 0; i < 100 && len(w.pending) > 0; i++ {
			p := w.pending[0]
			if _, ok := p.effect.(core.Send); ok && !p.cleared {
				if len(w.pending) == 1 {
					break
				}
				p = w.pending[1]
			}
			for j, q := range w.pending {
				if q == p {
					outcome := "ok"
					if _, probe := q.effect.(core.Probe); probe {
						outcome = "answer"
					}
					w.complete(j, outcome)
					break
				}
			}
		}
		return true
	}
	var h, m, s int
	if n, _ := fmt.Sscanf(name, "advance +%d:%d:%d", &h, &m, &s); n == 3 {
		to := Origin.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
		if !to.Before(w.Now) {
			w.logf("> %s", name)
			w.advance(to)
			return true
		}
	}
	return false
}

// outcomes lists how an effect under way may end, within the world's alphabet.
func (w *World) outcomes(p *pend) []string {
	switch p.effect.(type) {
	case core.Send:
		if !p.cleared {
			return nil // waits for the verdict on its attempt
		}
		var out []string
		for _, o := range []string{outcomeOK, outcomeShort, outcome503, outcome429, outcomeTimeout} {
			if w.P.answers(o) {
				out = append(out, o)
			}
		}
		return out
	case core.Probe:
		if w.P.answers("storage-fail") {
			return []string{"answer", "error"}
		}
		return []string{"answer"}
	}
	if w.P.answers("storage-fail") {
		return []string{"ok", "fail"}
	}
	return []string{"ok"}
}

// readsOf counts the reads of account name under way.
func (w *World) readsOf(name string) int {
	n := 0
	for _, r := range w.reads {
		if r.key.AccountID == name {
			n++
		}
	}
	return n
}

// complete ends pending effect i with outcome.
func (w *World) complete(i int, outcome string) {
	p := w.pending[i]
	switch e := p.effect.(type) {
	case core.Send:
		tok, failure, _ := w.answerAttempt(p, outcome)
		p.attempts++
		// The client retries no answer, a 429 or a 5xx, but not when Naver's Retry-After
		// asks for more than the request's time limit (10 s).
		retryable := failure != nil && (failure.outcome.Status == 0 || failure.outcome.Status == 429 || failure.outcome.Status >= 500) && failure.outcome.RetryAfter <= 10*time.Second
		if retryable && p.attempts <= e.Retries {
			// It asks whether a retry may follow, then counts it and waits for the verdict.
			p.lastErr, p.cleared, p.checking = failure, false, true
			w.step(core.AttemptAsk{Now: w.Now, Req: e.Req, Check: true})
			p.checking = false
			if !p.checkOK {
				w.removePending(p)
				w.check.lastFailure[failureOf{e.Key, p.creds}] = w.Now
				w.step(core.Answer{Now: w.Now, Req: e.Req, Err: failure, Outcome: failure.outcome})
				return
			}
			w.check.admitted[w.Now.Unix()/60]++
			w.step(core.AttemptAsk{Now: w.Now, Req: e.Req})
			return
		}
		w.removePending(p)
		ans := core.Answer{Now: w.Now, Req: e.Req, Token: tok}
		if failure != nil {
			ans.Err, ans.Outcome = failure, failure.outcome
			w.check.lastFailure[failureOf{e.Key, p.creds}] = w.Now
		} else {
			w.check.delivered[tok.AccessToken] = true
			w.check.issued(e.Key, p.sentAt, tok.AccessToken)
		}
		w.step(ans)
	case core.Load:
		w.removePending(p)
		ev := core.Loaded{Now: w.Now, Key: e.Key}
		if outcome == "fail" {
			ev.Err = errStorage
		} else if t, ok := w.store[e.Key.StorageKey()]; ok {
			ev.Entry = &t
		}
		w.step(ev)
	case core.Store:
		w.removePending(p)
		ev := core.Written{Now: w.Now, Write: e.Write}
		if outcome == "fail" {
			ev.Err = errStorage
		} else {
			w.store[e.Entry.Key.StorageKey()] = e.Entry
		}
		w.step(ev)
	case core.Delete:
		w.removePending(p)
		ev := core.Written{Now: w.Now, Write: e.Write}
		if outcome == "fail" {
			ev.Err = errStorage
		} else {
			delete(w.store, e.StorageKey)
		}
		w.step(ev)
	case core.LoadCounts:
		w.removePending(p)
		ev := core.CountsLoaded{Now: w.Now, ClientID: e.ClientID}
		if outcome == "fail" {
			ev.Err = errStorage
		} else if w.counts != nil {
			c := copyCounts(*w.counts)
			ev.Counts = &c
		}
		w.step(ev)
	case core.StoreCounts:
		w.removePending(p)
		ev := core.CountsWritten{Now: w.Now, Write: e.Write}
		if outcome == "fail" {
			ev.Err = errStorage
		} else {
			c := copyCounts(e.Counts)
			w.counts = &c
			w.check.countsStored(w)
		}
		w.step(ev)
	case core.Probe:
		w.removePending(p)
		ev := core.ProbeResult{Now: w.Now, Drop: e.Drop}
		if outcome == "answer" {
			// Naver tells the truth: whether it still accepts the token.
			t := w.naver.all[e.Token]
			ev.Alive = t != nil && !t.dead && t.expires.After(w.Now)
		} else {
			ev.Err = errStorage
		}
		w.step(ev)
	}
}

func copyCounts(c core.Counts) core.Counts {
	out := core.Counts{Minutes: map[int64]int{}, Keys: map[int64]int{}}
	for k, v := range c.Minutes {
		out.Minutes[k] = v
	}
	for k, v := range c.Keys {
		out.Keys[k] = v
	}
	if c.Reserved != nil {
		out.Reserved = map[int64]int{}
		for k, v := range c.Reserved {
			out.Reserved[k] = v
		}
	}
	return out
}

func (w *World) read(name string) {
	key, role, _ := keyByName(name)
	id := core.ReadID(w.id())
	w.reads[id] = &readRec{key: key, role: role, at: w.Now}
	r := w.roles[role]
	ev := core.Read{Now: w.Now, ID: id, Key: key, Role: role, MinLife: r.MinLife}
	if r.ManySellers() {
		ev.NewAccountsPerHour = r.NewAccountsPerHour
		if ev.NewAccountsPerHour == 0 {
			ev.NewAccountsPerHour = core.DefaultNewAccountsPerHour
		}
	}
	w.check.read(w, key)
	w.step(ev)
}

func (w *World) drop(name string, force bool) {
	key, _, _ := keyByName(name)
	id := core.DropID(w.id())
	w.drops[id] = name
	if force {
		// A forced drop of a token Naver still accepts makes the next request needless: the
		// README says so (the risk of force=true).
		if t := w.naver.cur[key]; t != nil && !t.dead {
			w.check.excused[t.access] = true
		}
	}
	w.step(core.Drop{Now: w.Now, ID: id, Key: key, Force: force})
}

func (w *World) setRole(name string, create bool) {
	var r *core.Role
	if create {
		if name == "one" {
			r = &core.Role{Type: core.TypeSeller, AccountID: "a"}
		} else {
			r = &core.Role{Type: core.TypeSeller, Allowed: []string{"*"}, NewAccountsPerHour: w.P.NewAccountsPerHour}
		}
		w.roles[name] = r
	} else {
		delete(w.roles, name)
	}
	w.step(core.RoleSet{Now: w.Now, Name: name, Role: r})
}

func (w *World) deleteConfig() {
	w.cfgName = ""
	w.step(core.ConfigSet{Now: w.Now})
}

// writeConfig writes config name: c2 is a secret re-issued at Naver first; bad points at an
// unreachable base URL, written with verify_connection=false (verified, it would be refused).
// The others are verified first, as the plugin does by default.
func (w *World) writeConfig(name string) {
	if name == "bad" {
		retire := secretOf(w.cfgName) != secretOf(name)
		w.cfgName = name
		w.logf("config %s: stored without verification", name)
		w.step(core.ConfigSet{Now: w.Now, Config: w.config(name), Written: true, RetireOthers: retire})
		return
	}
	w.naver.rotate(name)
	id := core.VerifyID(w.id())
	w.writing = &configWrite{name: name, verify: id}
	w.step(core.Verify{Now: w.Now, ID: id, Config: *w.config(name)})
}

func (w *World) tick() {
	w.ticking = true
	w.step(core.Tick{Now: w.Now})
	w.step(core.TickEnd{Now: w.Now})
}

// advance moves the clock to to. A request whose time limit (request_timeout, 10 s) ends
// meanwhile ends then, with no answer: the plugin's client gives up on it.
func (w *World) advance(to time.Time) {
	for {
		var first *pend
		for _, p := range w.pending {
			if _, ok := p.effect.(core.Send); ok && p.sentAt.Add(requestTimeout).Before(to) && (first == nil || p.sentAt.Before(first.sentAt)) {
				first = p
			}
		}
		if first == nil {
			break
		}
		w.Now = first.sentAt.Add(requestTimeout)
		w.timeOut(first)
	}
	w.Now = to
	w.check.after(w)
}

const requestTimeout = 10 * time.Second

// timeOut ends request p at its time limit: nothing more reaches Naver.
func (w *World) timeOut(p *pend) {
	e := p.effect.(core.Send)
	w.removePending(p)
	w.logf("request %s: timed out", keyName(e.Key))
	err := &naverError{outcome: core.Outcome{}, text: "context deadline exceeded", endpoint: p.endpoint}
	if p.lastErr != nil {
		err = p.lastErr
	}
	w.check.lastFailure[failureOf{e.Key, p.creds}] = w.Now
	w.step(core.Answer{Now: w.Now, Req: e.Req, Err: err, Outcome: err.outcome, NotSent: p.attempts == 0})
}

// restart is the plugin restarting: what was in flight is lost (a request that had not
// reached Naver never will), reads waiting fail, and a new core starts over storage.
func (w *World) restart() {
	w.check.restart(w)
	w.pending, w.writing = nil, nil
	for id := range w.reads {
		delete(w.reads, id)
	}
	for id := range w.drops {
		delete(w.drops, id)
	}
	w.start()
}

// interestingTimes are the moments ahead when something may change: a token's window
// opening, its last minutes and its expiry; a back-off's or Retry-After's end; an hour after
// a request (a budget freeing); and a minute on (the periodic run).
func (w *World) interestingTimes() []time.Time {
	var ts []time.Time
	add := func(t time.Time) {
		if t.After(w.Now) {
			ts = append(ts, t)
		}
	}
	for _, t := range w.naver.cur {
		for _, d := range []time.Duration{-reuseThreshold, -core.RenewMinLife, -core.MinAheadLife, -core.MinServableLife, 0} {
			add(t.expires.Add(d))
		}
	}
	for _, k := range []core.Key{keyA, keyB, keyX} {
		add(w.M.BackoffUntil(k))
		if v, ok := w.M.View(w.Now, k); ok {
			// When the plugin itself means to renew (just after: it renews once that is past),
			// and what it thinks of the token's life.
			add(v.RenewAt.Add(time.Second))
			add(v.ExpiresAt)
			add(v.NextBackground)
			if v.AccountRefused != nil {
				add(v.AccountRefused.Until)
			}
		}
	}
	for _, t := range w.check.retryAfter {
		add(t)
	}
	for _, a := range w.naver.sent {
		if w.Now.Sub(a.at) < time.Hour {
			add(a.at.Add(time.Hour))
			break // the oldest of the hour
		}
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	var out []time.Time
	for _, t := range ts {
		if len(out) == 0 || !t.Equal(out[len(out)-1]) {
			out = append(out, t)
		}
		if len(out) == 2 {
			break
		}
	}
	out = append(out, w.Now.Add(time.Minute))
	if w.P.Long {
		out = append(out, w.Now.Add(25*time.Hour))
	}
	return out
}

// ChoiceNames lists the names of the choices now (for scripts' errors).
func (w *World) ChoiceNames() string {
	var names []string
	for _, c := range w.Choices() {
		names = append(names, c.Name)
	}
	return strings.Join(names, ", ")
}
