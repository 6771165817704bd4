package modelcheck

import (
	"errors"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

// The promises of the README the world checks, by name.
const (
	invDeadServed      = "dead-token-served"       // a token Naver no longer accepts (rotated, or dropped as dead), or one of too little life, was served
	invLeaseLife       = "lease-outlives-token"    // a served token's expiry is later than Naver's
	invNeedless        = "needless-request"        // Naver handed back a token it had already handed the plugin
	invKeyBudget       = "key-budget"              // a key sent more than max_token_requests_per_hour in an hour
	invAppBudget       = "application-budget"      // the application went over its budget in an hour, or the automatic budget grew with keys Naver issued nothing to
	invRetryAfter      = "retry-after"             // a key asked before Naver's Retry-After ended
	invBackoff         = "backoff"                 // a key asked again within 5 s of its failure
	invCachedNamed     = "cached-keys-named"       // a key no role names is cached
	invReadWaits       = "read-waits-for-naver"    // a read waited for Naver while a token with 5 minutes or more could serve it at once
	invRefusedAccounts = "refused-accounts"        // Naver refused more new accounts in an hour than max_new_accounts_per_hour
	invPhantomCounts   = "phantom-counts"          // storage counts more requests in a minute than were made, plus the reserve
	invUncounted       = "uncounted-request"       // a request reached Naver that storage's counts did not include
	invOldEndpoint     = "breaker-of-old-endpoint" // reads refused by the breaker for failures of another base URL
	invForgotten       = "idle-key-kept"           // a key idle for a day is still held in memory
	invLockedOut       = "seller-locked-out"       // a read refused for max_new_accounts_per_hour while Naver refused fewer new accounts in the hour
	invCache           = "cache-true"              // a cache of the core disagrees with what it caches
	invConcurrent      = "concurrent-requests"     // two requests of one key at Naver at once (Naver penalises it)
	invInUse           = "keys-in-use"             // once the plugin has read storage, the automatic budget counts fewer keys than Naver issued a token to within 3 hours that a role names
)

// failureOf is a key's failure with credentials: back-offs belong to the credentials.
type failureOf struct {
	key   core.Key
	creds string
}

type checkState struct {
	delivered    map[string]bool // tokens Naver handed the plugin
	excused      map[string]bool // tokens whose loss the README documents (a forced drop, a credential change, a restart before storing)
	droppedDead  map[string]bool // tokens the plugin dropped after Naver said they were dead
	retryAfter   map[core.Key]time.Time
	lastFailure  map[failureOf]time.Time
	activity     map[core.Key]time.Time
	admitted     map[int64]int        // attempts the plugin made, per minute
	refusedSince time.Time            // the start of the process (the bound on new accounts is kept in memory)
	refusedNew   []time.Time          // when Naver refused a new account
	issuedTo     map[core.Key][]issue // Naver's answers with a token the plugin learnt of, per key, within 3 hours
}

// issue is an answer of Naver with a token: when its request was sent, and the token.
type issue struct {
	at     time.Time
	access string
}

// issued notes that the plugin learnt of Naver's answer with token access to k's request
// sent at at.
func (c *checkState) issued(k core.Key, at time.Time, access string) {
	var kept []issue
	for _, is := range c.issuedTo[k] {
		if at.Sub(is.at) < core.TokenLifetime {
			kept = append(kept, is)
		}
	}
	c.issuedTo[k] = append(kept, issue{at: at, access: access})
}

// inUse counts the keys a role names that Naver answered with a token within 3 hours, not
// counting a token a restart lost before it was stored (the README's one exception).
func (c *checkState) inUse(w *World) int {
	n := 0
	for _, k := range []core.Key{keyA, keyB, keyX} {
		if !w.named(k) {
			continue
		}
		for _, is := range c.issuedTo[k] {
			if w.Now.Sub(is.at) < core.TokenLifetime && !c.excused[is.access] {
				n++
				break
			}
		}
	}
	return n
}

func (c *checkState) init() {
	c.delivered, c.excused, c.droppedDead = map[string]bool{}, map[string]bool{}, map[string]bool{}
	c.retryAfter, c.lastFailure, c.activity = map[core.Key]time.Time{}, map[failureOf]time.Time{}, map[core.Key]time.Time{}
	c.admitted = map[int64]int{}
	c.issuedTo = map[core.Key][]issue{}
}

func (c *checkState) read(w *World, k core.Key) { c.activity[k] = w.Now }

// after checks what must hold after every step.
func (c *checkState) after(w *World) {
	if err := w.M.CheckCaches(); err != nil {
		w.violate(invCache, "%v", err)
	}
	atNaver := map[core.Key]int{}
	for _, p := range w.pending {
		if s, ok := p.effect.(core.Send); ok {
			if atNaver[s.Key]++; atNaver[s.Key] == 2 {
				w.violate(invConcurrent, "two requests of %s are at Naver at once", s.Key.AccountID)
			}
		}
	}
	for _, k := range []core.Key{keyA, keyB, keyX} {
		if w.M.Cached(k) != nil && w.cfgName != "" && !w.named(k) && !w.M.Evicting(k) {
			w.violate(invCachedNamed, "%s is cached though no role names it", k.AccountID)
		}
	}
	if w.P.Ahead && w.cfgName != "" {
		for _, r := range w.reads {
			if !w.requestOf(r.key) {
				continue
			}
			if left := w.servableLife(r.key); left >= core.MinAheadLife {
				w.violate(invReadWaits, "a read of %s waits for Naver while a token with %s left could serve it", r.key.AccountID, left)
			}
		}
	}
	// The automatic budget: 30 + 2 per key Naver issued a token to within 3 hours that a role
	// names, across restarts once the plugin has read what storage holds.
	if w.cfgName != "" && w.P.AppPerHour == 0 && w.M.Knowledge().StoredKnown {
		if got, want := w.M.App(w.Now).InUse, c.inUse(w); got < want {
			w.violate(invInUse, "the automatic budget counts %d keys in use, Naver issued a token to %d that a role names within 3 hours", got, want)
		}
	}
	if w.P.Long {
		for _, k := range w.M.MemoryKeys() {
			if w.M.Cached(k) == nil && w.Now.Sub(c.activity[k]) > 25*time.Hour && !w.pendingFor(k) {
				w.violate(invForgotten, "%s, idle since %s, is still held in memory", k.AccountID, offset(c.activity[k]))
			}
		}
	}
}

// named reports whether a role in storage names k.
func (w *World) named(k core.Key) bool {
	for _, r := range w.roles {
		if r.Names(clientID, k) {
			return true
		}
	}
	return false
}

// requestOf reports whether a read's request of k is under way.
func (w *World) requestOf(k core.Key) bool {
	for _, p := range w.pending {
		if s, ok := p.effect.(core.Send); ok && s.Key == k && !s.Background && s.Verify == 0 {
			return true
		}
	}
	return false
}

func (w *World) pendingFor(k core.Key) bool {
	for _, p := range w.pending {
		switch e := p.effect.(type) {
		case core.Send:
			if e.Key == k {
				return true
			}
		case core.Load:
			if e.Key == k {
				return true
			}
		case core.Store:
			if e.Entry.Key == k {
				return true
			}
		}
	}
	return false
}

// servableLife is the most life a token of k that the plugin could serve now has: in memory,
// or stored under the config's credentials.
func (w *World) servableLife(k core.Key) time.Duration {
	var left time.Duration
	if t := w.M.Cached(k); t != nil {
		left = t.Life(w.Now)
	}
	if t, ok := w.store[k.StorageKey()]; ok && t.Servable(configs[w.cfgName].Credentials) {
		left = max(left, t.Life(w.Now))
	}
	return left
}

// rotating reports whether t died because the secret was re-issued at Naver for a config
// write still under way: README "Rotate the client secret" says so, "the plugin cannot know,
// and serves the same dead token" until Vault has the new secret.
func (c *checkState) rotating(w *World, t *ntok) bool {
	return w.writing != nil && w.naver.secret == secretOf(w.writing.name) && !c.droppedDead[t.access]
}

func (c *checkState) served(w *World, r *readRec, e core.Serve) {
	t := w.naver.all[e.Token.AccessToken]
	switch {
	case t == nil:
		w.violate(invDeadServed, "%s was served %q, a token Naver never issued", r.key.AccountID, e.Token.AccessToken)
		return
	case t.dead && !c.rotating(w, t) && (t.key != keyA || c.droppedDead[t.access] || w.naver.secret != "c1" && w.naver.secret != configs[w.cfgName].Credentials):
		w.violate(invDeadServed, "%s was served %s, which Naver no longer accepts", r.key.AccountID, t.access)
	case t.expires.Sub(w.Now) < core.MinServableLife:
		w.violate(invDeadServed, "%s was served %s with %s left at Naver", r.key.AccountID, t.access, t.expires.Sub(w.Now))
	}
	if e.Token.ExpiresAt.After(t.expires) {
		w.violate(invLeaseLife, "%s was served %s expiring at %s, after Naver's %s", r.key.AccountID, t.access, offset(e.Token.ExpiresAt), offset(t.expires))
	}
}

func (c *checkState) failedRead(w *World, r *readRec, err error) {
	var na *core.NewAccountsError
	if errors.As(err, &na) {
		n := 0
		for _, at := range c.refusedNew {
			if w.Now.Sub(at) < time.Hour && !at.Before(c.refusedSince) {
				n++
			}
		}
		if n < na.Limit {
			w.violate(invLockedOut, "a read of %s was refused for the role's bound of %d new accounts, with %d refused by Naver in the hour", r.key.AccountID, na.Limit, n)
		}
	}
	var be *core.BreakerError
	var ne *naverError
	if errors.As(err, &be) && errors.As(be.Last, &ne) && w.cfgName != "" && ne.endpoint != configs[w.cfgName].Endpoint {
		w.violate(invOldEndpoint, "a read of %s was refused by the breaker for failures of %s; the config's base URL is %s", r.key.AccountID, ne.endpoint, configs[w.cfgName].Endpoint)
	}
}

// accountRefused checks a refusal by Naver of a new account: Naver failing (5xx, 429, no
// answer) spends nothing of max_new_accounts_per_hour, its refusals do (README).
func (c *checkState) accountRefused(w *World) {
	c.refusedNew = append(c.refusedNew, w.Now)
	n := 0
	for _, at := range c.refusedNew {
		if w.Now.Sub(at) < time.Hour && !at.Before(c.refusedSince) {
			n++
		}
	}
	if n > max(w.P.NewAccountsPerHour, 1) {
		w.violate(invRefusedAccounts, "Naver's refusal number %d of the hour of a new account (max %d)", n, w.P.NewAccountsPerHour)
	}
}

// attemptReached checks an attempt of k (with credentials creds) as it reaches Naver.
func (c *checkState) attemptReached(w *World, k core.Key, creds string) {
	c.activity[k] = w.Now
	keyN, appN := 1, 1
	for _, a := range w.naver.sent {
		if w.Now.Sub(a.at) >= time.Hour {
			continue
		}
		if a.key == k {
			keyN++
		}
		appN++
	}
	if keyN > w.P.PerHour {
		w.violate(invKeyBudget, "%s sent its request number %d of the hour (max %d)", k.AccountID, keyN, w.P.PerHour)
	}
	if w.P.AppPerHour > 0 && appN > w.P.AppPerHour {
		w.violate(invAppBudget, "the application sent its request number %d of the hour (max %d)", appN, w.P.AppPerHour)
	}
	if until, ok := c.retryAfter[k]; ok && w.Now.Before(until) {
		w.violate(invRetryAfter, "%s asked at %s, before Naver's Retry-After ended at %s", k.AccountID, offset(w.Now), offset(until))
	}
	if at, ok := c.lastFailure[failureOf{k, creds}]; ok && w.Now.Sub(at) < 5*time.Second {
		w.violate(invBackoff, "%s asked %s after its failure", k.AccountID, w.Now.Sub(at))
	}
	// Every attempt that reaches Naver is counted in storage first.
	stored, reached := 0, 1
	if w.counts != nil {
		cur := w.Now.Unix() / 60
		for m, n := range w.counts.Minutes {
			if m > cur-61 {
				stored += n
			}
		}
	}
	for _, a := range w.naver.sent {
		if w.Now.Sub(a.at) < time.Hour {
			reached++
		}
	}
	if stored < reached {
		w.violate(invUncounted, "request number %d of the hour reached Naver with %d counted in storage", reached, stored)
	}
}

// handedBack checks a request for which Naver hands back the token it has.
func (c *checkState) handedBack(w *World, t *ntok) {
	if c.delivered[t.access] && !c.excused[t.access] {
		w.violate(invNeedless, "Naver handed back %s (%s left), already handed to the plugin", t.access, t.expires.Sub(w.Now))
	}
}

// countsStored checks what the plugin stored of the application's counts.
func (c *checkState) countsStored(w *World) {
	for m, n := range w.counts.Minutes {
		if n > c.admitted[m]+8 {
			w.violate(invPhantomCounts, "storage counts %d requests in minute %s, of %d made", n, offset(time.Unix(m*60, 0)), c.admitted[m])
		}
	}
}

// restart excuses what the README says a restart may lose: a token not yet stored.
func (c *checkState) restart(w *World) {
	fingerprints := map[string]bool{}
	for _, t := range w.store {
		fingerprints[t.Fingerprint] = true
	}
	for access := range c.delivered {
		if !fingerprints[core.Fingerprint(access)] {
			c.excused[access] = true
		}
	}
	c.refusedSince = w.Now
}
