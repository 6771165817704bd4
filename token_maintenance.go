package navercommerce

// Periodic maintenance and status: the storage sweep, eviction of keys no role names,
// background renewal, and the per-key view that status and metrics report.

import (
	"context"
	"hash/maphash"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// sweepStorage deletes stored entries past their token's latest expiry (and unreadable
// ones): the facts of tokens no longer served are kept until then. With load, servable
// tokens are also brought into memory, so that status and metrics show, after a restart,
// the tokens stored before it.
func (c *tokenCache) sweepStorage(ctx context.Context, s logical.Storage, credentials string, load bool) {
	keys, err := logical.CollectKeysWithPrefix(ctx, s, tokenStoragePrefix)
	if err != nil {
		c.logger.Warn("listing cached tokens failed", "error", err)
		return
	}
	// Every entry is read, but decoded only if it changed since the last sweep: at thousands
	// of sellers decoding was most of the sweep's cost.
	c.sweptMu.Lock()
	defer c.sweptMu.Unlock()
	if c.sweptSums == nil {
		c.sweptSums, c.sweptSeed = make(map[string]sweptEntry), maphash.MakeSeed()
	}
	seen := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		if ctx.Err() != nil {
			return
		}
		entry, err := s.Get(ctx, k)
		if err != nil || entry == nil {
			continue
		}
		seen[k] = struct{}{}
		sum := maphash.Bytes(c.sweptSeed, entry.Value)
		if prev, ok := c.sweptSums[k]; ok && prev.sum == sum && !load {
			if c.now().Before(prev.knownUntil) {
				continue
			}
			c.deleteStale(ctx, s, k)
			continue
		}
		delete(c.sweptSums, k)
		var tok cachedToken
		if err := decodeEntry(entry, "cached token", &tok); err == nil && c.now().Before(tok.knownUntil()) {
			c.sweptSums[k] = sweptEntry{sum: sum, knownUntil: tok.knownUntil()}
			if load && tok.servable(credentials) && !tok.Unnamed {
				ks := c.state(tok.Key)
				loaded, err := c.loadStored(ctx, s, ks, credentials)
				if err != nil {
					c.logger.Warn("reading a cached token failed", "type", tok.Key.Type, "error", err)
				}
				if loaded != nil && tok.Key.Type != tokenTypeSelf {
					// Its role may have been deleted before the start, with the plugin gone
					// before it marked the token unnamed: the periodic run checks.
					ks.mu.Lock()
					ks.checkRoles = true
					ks.mu.Unlock()
				}
			}
			continue
		}
		c.deleteStale(ctx, s, k)
	}
	for k := range c.sweptSums {
		if _, ok := seen[k]; !ok {
			delete(c.sweptSums, k)
		}
	}
}

// deleteStale deletes the entry at k if it is still stale: the write lock keeps publishing
// out, and the entry is read again under it (a read may have renewed the token meanwhile).
func (c *tokenCache) deleteStale(ctx context.Context, s logical.Storage, k string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	entry, err := s.Get(ctx, k)
	if err != nil || entry == nil {
		return
	}
	var tok cachedToken
	if err := decodeEntry(entry, "cached token", &tok); err == nil && c.now().Before(tok.knownUntil()) {
		return
	}
	if err := s.Delete(ctx, k); err != nil {
		c.logger.Warn("deleting a stale cached token failed", "error", err)
	}
}

// restore stores again a token whose storing failed, unless it changed meanwhile.
func (c *tokenCache) restore(ctx context.Context, s logical.Storage, ks *keyState, tok *cachedToken) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ks.entryMu.Lock()
	defer ks.entryMu.Unlock()
	if ks.token.Load() != tok || c.generation.Load() != ks.gen {
		return
	}
	if err := c.store(ctx, s, tok); err != nil {
		c.logger.Warn("storing the cached token failed again", "type", ks.key.Type, "error", err)
		return
	}
	ks.unstored.Store(false)
}

// sweepIfDue sweeps storage if the last sweep was an hour ago or more: also while the
// mount has no config (stored tokens outlive a config delete until they expire).
func (c *tokenCache) sweepIfDue(ctx context.Context, s logical.Storage, credentials string) {
	now := c.now()
	c.mu.RLock()
	first := c.lastSweep.IsZero()
	sweep := first || now.Sub(c.lastSweep) >= storageSweepInterval
	c.mu.RUnlock()
	if sweep {
		// The first sweep after a start also brings stored tokens into memory (status,
		// metrics, the automatic application budget).
		c.sweepStorage(ctx, s, credentials, first && credentials != "")
		c.mu.Lock()
		c.lastSweep = now
		c.mu.Unlock()
		c.swept.Store(true)
	}
}

// ensureSwept sweeps storage once after the plugin starts, so that what memory shows
// (metrics) includes the tokens stored before the restart.
func (c *tokenCache) ensureSwept(ctx context.Context, s logical.Storage, credentials string) {
	if c.swept.Load() {
		return // the common case, without the lock a credential change may hold a while
	}
	c.mu.RLock()
	swept := !c.lastSweep.IsZero()
	c.mu.RUnlock()
	if swept {
		return
	}
	c.sweepStorage(ctx, s, credentials, true)
	c.mu.Lock()
	c.lastSweep = c.now()
	c.mu.Unlock()
	c.swept.Store(true)
}

// roleChanged notes that role was written, deleted or invalidated: it may no longer name
// the keys read through it. The next periodic run checks whether some role still names
// each of them, and each seller key no role is known to read (a token loaded at a start
// and not read since), and evicts those none names. The role stays among the key's hints
// until that check: a key it still names keeps it, so its later delete is noticed too.
func (c *tokenCache) roleChanged(role string) {
	c.roleChanges.Add(1)
	c.entries.Range(func(_, v any) bool {
		ks := v.(*keyState)
		roles := ks.roles.Load()
		read := false
		if roles != nil {
			_, read = (*roles)[role]
		}
		// A SELF key no role reads is the token that verified the config, cached on
		// purpose (README); a role that names it will read it.
		unknown := (roles == nil || len(*roles) == 0) && ks.key.Type != tokenTypeSelf
		if read || unknown {
			if read {
				// The role's min_remaining_ttl may be gone or lower: the next reads set it again.
				ks.minLife.Store(0)
			}
			ks.mu.Lock()
			ks.checkRoles = true
			ks.mu.Unlock()
		}
		return true
	})
}

// keyNamedFunc reports whether any role still names key, and which: of hints (the roles
// known to read it), those that still name it, or else the first other role found.
type keyNamedFunc func(ctx context.Context, s logical.Storage, key tokenKey, hints []string) (naming []string, err error)

// maintain is the periodic work: it evicts expired tokens and tokens no role names, and
// renews, concurrently and within ctx's deadline, the tokens in Naver's 30-minute window
// that were read within their lifetime. A key whose renewals fail is retried across runs
// with a doubling back-off of up to an hour. It returns how many tokens it renewed.
func (c *tokenCache) maintain(ctx context.Context, s logical.Storage, p *cachePolicy, named keyNamedFunc) (renewed int) {
	// Deadlines are wall-clock time, whatever clock the cache reckons tokens by.
	deadline := time.Now().Add(periodicBudget)
	if d, ok := ctx.Deadline(); ok && d.Add(-periodicMargin).Before(deadline) {
		deadline = d.Add(-periodicMargin)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	now := c.now()
	c.sweepIfDue(ctx, s, p.credentials)
	var due, check []*keyState
	var inUse int64
	c.entries.Range(func(_, v any) bool {
		ks := v.(*keyState)
		tok := ks.token.Load()
		lastRead := time.Unix(0, ks.lastRead.Load())
		if tok != nil || now.Sub(lastRead) < tokenLifetime {
			inUse++
		}
		if tok != nil && ks.unstored.Load() {
			c.restore(ctx, s, ks, tok)
		}
		ks.mu.Lock()
		checkRoles, nextBackground := ks.checkRoles, ks.nextBackground
		ks.mu.Unlock()
		switch {
		case tok == nil:
			if now.Sub(lastRead) > idleKeyLifetime {
				c.entries.CompareAndDelete(ks.key, ks)
			}
		case tok.life(now) <= 0:
			ks.mu.Lock()
			backingOff := now.Before(ks.backoffUntil) || now.Before(ks.nextBackground)
			ks.mu.Unlock()
			if backingOff {
				// The key's back-off (perhaps Naver's Retry-After) outlives its token.
				ks.token.CompareAndSwap(tok, nil)
			} else {
				c.evict(ks, tok)
			}
		case checkRoles:
			check = append(check, ks)
		}
		if tok.servable(p.credentials) && p.ahead &&
			c.isDue(ks, tok, now) && tok.life(now) > 0 &&
			now.Sub(lastRead) < tok.ExpiresAt.Sub(tok.FetchedAt) &&
			!now.Before(nextBackground) {
			due = append(due, ks)
		}
		return true
	})

	c.keysInUse.Store(inUse)

	c.markUnnamedPending(ctx, s)
	c.checkKeys(ctx, s, check, named, false)

	sem := make(chan struct{}, renewConcurrency)
	var wg sync.WaitGroup
	var count atomic.Int64
loop:
	for _, ks := range due {
		// A key no role names any more is not renewed: its token is evicted instead.
		if v, ok := c.entries.Load(ks.key); !ok || v != ks {
			continue // evicted by the check above
		}
		if isNamed, checked := c.checkNamed(ctx, s, ks, named, false); !isNamed || !checked {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		ch := c.flights.DoChan(c.flightKey(ks), c.refresher(s, ks, p, true))
		wg.Add(1)
		go func(ks *keyState) {
			defer wg.Done()
			defer func() { <-sem }()
			select {
			case r := <-ch:
				if r.Err != nil {
					c.logger.Warn("background refresh failed", "type", ks.key.Type, "error", r.Err)
				} else if r.Val.(tokenResult).fetched {
					count.Add(1)
				}
			case <-ctx.Done():
				// The request goes on behind us, bounded by request_timeout; Vault's
				// periodic call must not wait for it.
			}
		}(ks)
	}
	wg.Wait()
	return int(count.Load())
}

// keyStatus is what status reports of one key: never the token itself.
type keyStatus struct {
	Key   tokenKey
	Roles []string // roles read through the key since the plugin started, sorted
	// FetchedAt, ExpiresAt and RenewAt are zero when the key holds no token.
	FetchedAt time.Time
	ExpiresAt time.Time
	RenewAt   time.Time // when Naver will issue a new token, so when it is renewed
	LastRead  time.Time // zero: not read since the plugin started
	// Requests1h and Requests24h count HTTP requests to Naver, retries included.
	Requests1h   int
	Requests24h  int
	LastError    *keyError // nil: none since the plugin started
	BackoffUntil time.Time // reads do not ask Naver before this
	// NextBackground is when background renewal may ask Naver next, after failures.
	NextBackground time.Time
	Failures       int // consecutive failed requests
	// Refused is set when the key's last request was not sent (a budget, or the breaker
	// while Naver fails): its reads fail or are stale all the same.
	Refused bool
}

// checkKeys checks each key of keys whose checkRoles is set (see checkNamed), until ctx
// ends or a check fails: the rest stay marked. A failure is storage's (roles cannot be
// listed or read), so checking on would fail, and warn, once per key: thousands of times
// with thousands of sellers.
func (c *tokenCache) checkKeys(ctx context.Context, s logical.Storage, keys []*keyState, named keyNamedFunc, markLater bool) {
	for _, ks := range keys {
		if ctx.Err() != nil {
			return
		}
		// Cleared first: a role change during the check marks the key again.
		ks.mu.Lock()
		marked := ks.checkRoles
		ks.checkRoles = false
		ks.mu.Unlock()
		if !marked {
			continue
		}
		if _, checked := c.checkNamed(ctx, s, ks, named, markLater); !checked {
			ks.mu.Lock()
			ks.checkRoles = true
			ks.mu.Unlock()
			return
		}
	}
}

// checkMarked checks at once, after a role write or delete, every key marked for it (see
// roleChanged): those no role names stop being cached before the write returns; their
// stored tokens are marked unnamed by the next periodic run (at 10,000 sellers, a
// many-seller role's delete would otherwise write 10,000 entries before it returns).
func (c *tokenCache) checkMarked(ctx context.Context, s logical.Storage, named keyNamedFunc) {
	var marked []*keyState
	c.entries.Range(func(_, v any) bool {
		ks := v.(*keyState)
		// A key holding no token is not cached: evicting it would only forget its back-off
		// (perhaps Naver's Retry-After), which a role naming it again must keep.
		if ks.token.Load() == nil {
			return true
		}
		ks.mu.Lock()
		if ks.checkRoles {
			marked = append(marked, ks)
		}
		ks.mu.Unlock()
		return true
	})
	c.checkKeys(ctx, s, marked, named, true)
}

// markUnnamedPending marks unnamed the stored tokens of the keys checkMarked evicted, unless a
// role named the key again and a read cached it meanwhile.
func (c *tokenCache) markUnnamedPending(ctx context.Context, s logical.Storage) {
	c.unnamedPending.Range(func(k, _ any) bool {
		if ctx.Err() != nil {
			return false
		}
		key := k.(tokenKey)
		c.unnamedPending.Delete(key)
		if _, cached := c.entries.Load(key); cached {
			return true
		}
		if c.markUnnamedOrWarn(ctx, s, key) != nil {
			c.unnamedPending.Store(key, struct{}{})
		}
		return true
	})
}

// markUnnamedOrWarn marks key's stored token unnamed (see markUnnamed), logging a failure.
func (c *tokenCache) markUnnamedOrWarn(ctx context.Context, s logical.Storage, key tokenKey) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	err := c.markUnnamed(ctx, s, key)
	if err != nil {
		c.logger.Warn("marking the token of a deleted role failed", "type", key.Type, "error", err)
	}
	return err
}

// checkNamed checks whether some role names ks's key, keeping as its hints only the roles
// that do; a key none names is evicted and its stored token marked unnamed (with
// markLater, by the next periodic run). checked is false when the check failed (it is
// logged).
func (c *tokenCache) checkNamed(ctx context.Context, s logical.Storage, ks *keyState, named keyNamedFunc, markLater bool) (isNamed, checked bool) {
	hints := ks.roleNames()
	naming, err := named(ctx, s, ks.key, hints)
	if err != nil {
		c.logger.Warn("checking which roles name a token failed", "type", ks.key.Type, "error", err)
		return false, false
	}
	if len(naming) == 0 {
		if err := c.evictStored(ctx, s, ks); err != nil {
			c.logger.Warn("storing the token of a key no role names failed; it stays cached until it is stored", "type", ks.key.Type, "error", err)
			return false, false
		}
		if markLater {
			c.unnamedPending.Store(ks.key, struct{}{})
			return false, true
		}
		_ = c.markUnnamedOrWarn(ctx, s, ks.key) // logged; the sweep removes the entry at expiry
		return false, true
	}
	for _, n := range naming {
		ks.addRole(n)
	}
	for _, h := range hints {
		if !slices.Contains(naming, h) {
			ks.removeRole(h)
		}
	}
	return true, true
}

// status reports the keys of the current credentials generation that match accepts (nil:
// every key), sorted by key.
func (c *tokenCache) status(now time.Time, credentials string, match func(tokenKey) bool) []keyStatus {
	var out []keyStatus
	c.entries.Range(func(_, v any) bool {
		ks := v.(*keyState)
		if match == nil || match(ks.key) {
			out = append(out, c.keyStatus(ks, now, credentials))
		}
		return true
	})
	// Each key's string once, not twice per comparison: at 10,000 sellers the sort's
	// strings were most of status's cost.
	names := make([]string, len(out))
	for i := range out {
		names[i] = out[i].Key.String()
	}
	sort.Sort(byName{out, names})
	return out
}

// statusOf reports key's status if the cache holds the key (status/<role> of one key: a
// lookup, not a walk of every key).
func (c *tokenCache) statusOf(now time.Time, credentials string, key tokenKey) (keyStatus, bool) {
	v, ok := c.entries.Load(key)
	if !ok {
		return keyStatus{}, false
	}
	return c.keyStatus(v.(*keyState), now, credentials), true
}

func (c *tokenCache) keyStatus(ks *keyState, now time.Time, credentials string) keyStatus {
	st := keyStatus{Key: ks.key, Roles: ks.roleNames()}
	sort.Strings(st.Roles)
	if tok := ks.token.Load(); tok != nil && tok.Credentials == credentials {
		st.FetchedAt, st.ExpiresAt, st.RenewAt = tok.FetchedAt, tok.ExpiresAt, tok.renewAt(c.spreadNow())
		if early := tok.ExpiresAt.Add(-time.Duration(ks.minLife.Load())); early.Before(st.RenewAt) {
			st.RenewAt = early // a role's min_remaining_ttl
		}
	}
	if n := ks.lastRead.Load(); n != 0 {
		st.LastRead = time.Unix(0, n)
	}
	log := c.requestLog(ks.key)
	st.Requests1h, _ = log.since(now, time.Hour)
	st.Requests24h, _ = log.since(now, 24*time.Hour)
	ks.mu.Lock()
	if ks.lastError != nil {
		e := *ks.lastError
		st.LastError = &e
	}
	st.BackoffUntil, st.NextBackground, st.Failures = ks.backoffUntil, ks.nextBackground, ks.failures
	st.Refused = ks.failures == 0 && ks.lastFailure != nil
	ks.mu.Unlock()
	return st
}

// byName sorts key statuses by their keys' strings, computed once.
type byName struct {
	keys  []keyStatus
	names []string
}

func (b byName) Len() int           { return len(b.keys) }
func (b byName) Less(i, j int) bool { return b.names[i] < b.names[j] }
func (b byName) Swap(i, j int) {
	b.keys[i], b.keys[j] = b.keys[j], b.keys[i]
	b.names[i], b.names[j] = b.names[j], b.names[i]
}
