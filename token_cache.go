package navercommerce

// Serving tokens: the driver of the decision core (internal/core). Every entry point —
// reads, drops, config and role changes, invalidations, the periodic run, the start —
// turns what happened into events for the core, and carries out the effects the core
// decides: answers to reads, requests to Naver, storage reads and writes. No decision of
// when Naver may be asked is made here.

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/sdk/helper/locksutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
)

const (
	// periodicBudget bounds a periodic run that Vault gave no deadline; periodicMargin is
	// kept free before a deadline it did give.
	periodicBudget = 30 * time.Second
	periodicMargin = 2 * time.Second
	// sweepPart and sweepPartTime bound the part of a sweep one periodic run reads.
	sweepPart     = 2000
	sweepPartTime = 300 * time.Millisecond
)

// tokenCache drives one mount's decision core.
type tokenCache struct {
	now     func() time.Time
	logger  hclog.Logger
	metrics *metrics

	// ctx lives as long as the mount: requests to Naver and storage writes outlive the read
	// that started them (others wait on them too) but not an unmount or reload.
	ctx    context.Context
	cancel context.CancelFunc

	// mu guards the core and what is stepped with it.
	mu sync.Mutex
	m  *core.Machine
	// storage is the mount's storage, from the last request (every request of a mount
	// carries the same).
	storage logical.Storage
	// configs holds, by credentials, the config in force and those being verified: the
	// requests the core sends are made with the config of their credentials.
	configs map[string]*configState
	current string

	ids atomic.Uint64
	// Who waits for which effect.
	waitMu   sync.Mutex
	reads    map[core.ReadID]readWaiter
	drops    map[core.DropID]chan core.DropDone
	verifies map[core.VerifyID]chan core.VerifyDone
	attempts map[core.ReqID]chan core.AttemptVerdict
	tickDone chan struct{}
	// periodicMu keeps periodic runs one at a time.
	periodicMu sync.Mutex

	// work counts every goroutine the driver started (see Backend.WaitIdle); stores counts
	// the token writes in flight (an unmount waits for them).
	work   flightTracker
	stores flightTracker
	// leaseFirst is how long the write of a token a leased read waited for waits (see
	// leaseFirstDelay); closing ends those waits at once.
	leaseFirst  time.Duration
	closing     chan struct{}
	closingOnce sync.Once
	// storeLocks order, per storage key, a write against the sweep's delete of a stale entry.
	storeLocks []*locksutil.LockEntry
	sweptMu    sync.Mutex
	sweptSums  sweptSums
	sweptSeed  maphash.Seed
	// The sweep under way: the storage keys it lists, how far it read, what it saw.
	sweepMu   sync.Mutex
	sweepKeys []string
	sweepPos  int
	sweepSeen map[sweptKey]struct{}
}

func newTokenCache(now func() time.Time, logger hclog.Logger, opts core.Options) *tokenCache {
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &tokenCache{
		now: now, logger: logger, ctx: ctx, cancel: cancel, m: core.New(opts),
		configs: map[string]*configState{}, reads: map[core.ReadID]readWaiter{},
		drops: map[core.DropID]chan core.DropDone{}, verifies: map[core.VerifyID]chan core.VerifyDone{},
		attempts: map[core.ReqID]chan core.AttemptVerdict{}, storeLocks: locksutil.CreateLocks(),
		sweptSums: sweptSums{byID: map[core.StoreID]sweptEntry{}, byName: map[string]sweptEntry{}}, sweptSeed: maphash.MakeSeed(),
		leaseFirst: leaseFirstDelay, closing: make(chan struct{}),
	}
	return c
}

// leaseFirstDelay is how long the write of a new token that leased reads waited for is held
// after they are answered. On integrated storage (Raft) every write is an apply synced to
// disk, one batch at a time: written at once, the token's apply is under way when Vault
// writes the read's lease, and the read waits for both. Held, the lease goes first and the
// token's write follows it (docs/decisions.md, "a new token a read waited for": the
// figures, and how small the gain is). The cost: a crash (not a reload, seal or leader
// change, which end the wait at once) within these milliseconds loses the token, as a
// crash within the write itself always could; the README documents both.
// Wall-clock time, not the backend's clock: it orders real storage writes.
const leaseFirstDelay = 20 * time.Millisecond

// close stops requests in flight once the tokens being stored are stored; the mount is
// going away (a plugin reload, a seal, a leader change, an unmount).
func (c *tokenCache) close() {
	c.step(nil, core.Closing{Now: c.now()})
	c.closingOnce.Do(func() { close(c.closing) })
	c.stores.wait()
	c.cancel()
}

// step hands the core one event (with s, when set, as the mount's storage) and carries out
// what it decides.
func (c *tokenCache) step(s logical.Storage, ev core.Event) {
	c.mu.Lock()
	if s != nil {
		c.storage = s
	}
	c.m.Step(ev)
	effects := c.m.Ready()
	s = c.storage
	c.mu.Unlock()
	c.dispatch(s, effects)
}

// view runs f on the core under its lock (for status, metrics and tests).
func (c *tokenCache) view(f func(m *core.Machine)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c.m)
}

func (c *tokenCache) dispatch(s logical.Storage, effects []core.Effect) {
	// Tokens Naver just issued to leased reads answered in this batch: their writes yield
	// to the reads' lease writes (a lease-free read writes none: nothing to wait for).
	var answered map[string]bool
	for _, e := range effects {
		if e, ok := e.(core.Serve); ok && e.Fetched && e.Token != nil {
			c.waitMu.Lock()
			leased := c.reads[e.Read].leased
			c.waitMu.Unlock()
			if !leased {
				continue
			}
			if answered == nil {
				answered = map[string]bool{}
			}
			answered[e.Token.AccessToken] = true
		}
	}
	for _, e := range effects {
		switch e := e.(type) {
		case core.Serve:
			c.answerRead(e.Read, e)
		case core.Fail:
			c.answerRead(e.Read, e)
		case core.DropDone:
			c.waitMu.Lock()
			ch := c.drops[e.Drop]
			delete(c.drops, e.Drop)
			c.waitMu.Unlock()
			if ch != nil {
				ch <- e
			}
		case core.VerifyDone:
			c.waitMu.Lock()
			ch := c.verifies[e.Verify]
			delete(c.verifies, e.Verify)
			c.waitMu.Unlock()
			if ch != nil {
				ch <- e
			}
		case core.AttemptVerdict:
			c.attemptChan(e.Req) <- e
		case core.Send:
			c.send(e)
		case core.Load:
			c.goWork(func() {
				tok, err := loadToken(c.ctx, s, e.Key)
				c.step(nil, core.Loaded{Now: c.now(), Key: e.Key, Entry: tok, Err: err})
			})
		case core.Store:
			leaseFirst := e.Entry.AccessToken != "" && answered[e.Entry.AccessToken]
			c.stores.add()
			c.goWork(func() {
				defer c.stores.done()
				if leaseFirst {
					c.waitForLeases()
				}
				err := c.putToken(s, &e.Entry)
				c.step(nil, core.Written{Now: c.now(), Write: e.Write, Err: err})
			})
		case core.Delete:
			c.goWork(func() {
				err := c.deleteToken(s, e)
				c.step(nil, core.Written{Now: c.now(), Write: e.Write, Err: err})
			})
		case core.LoadCounts:
			c.goWork(func() { c.step(nil, loadCounts(c.ctx, s, e.ClientID, c.now)) })
		case core.StoreCounts:
			c.goWork(func() {
				err := storeCounts(c.ctx, s, e.ClientID, e.Counts)
				c.step(nil, core.CountsWritten{Now: c.now(), Write: e.Write, Err: err})
			})
		case core.Probe:
			c.probe(e)
		case core.Retire:
			// Part of the config write that changed the credentials: done before it returns.
			if err := c.retire(s, e.Keep); err != nil {
				c.logger.Warn("dropping cached tokens of the old credentials", "error", err)
			}
		case core.Sweep:
			// In the goroutine that stepped the periodic run (or status): one part at a time.
			c.sweep(s)
		case core.TickDone:
			c.waitMu.Lock()
			if c.tickDone != nil {
				close(c.tickDone)
				c.tickDone = nil
			}
			c.waitMu.Unlock()
		case core.Log:
			if e.Warn {
				c.logger.Warn(e.Msg, e.Args...)
			} else {
				c.logger.Info(e.Msg, e.Args...)
			}
		case core.Metric:
			c.metric(e)
		default:
			panic(fmt.Sprintf("navercommerce: unknown effect %T", e))
		}
	}
}

// waitForLeases holds a new token's write for leaseFirst, or until the mount closes.
func (c *tokenCache) waitForLeases() {
	if c.leaseFirst <= 0 {
		return
	}
	t := time.NewTimer(c.leaseFirst)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.closing:
	}
}

func (c *tokenCache) metric(e core.Metric) {
	switch e.Name {
	case core.MetricRenewal:
		c.metrics.backgroundRenewal(e.Err)
	case core.MetricBudgetRefused:
		c.metrics.budgetRefused()
	case core.MetricAppBudgetRefused:
		c.metrics.appBudgetRefused()
	case core.MetricBreakerRefused:
		c.metrics.breakerRefused()
	case core.MetricRequested:
		c.metrics.tokenRequested(e.Err)
	}
}

func (c *tokenCache) goWork(f func()) { c.work.goTracked(f) }

func (c *tokenCache) answerRead(id core.ReadID, e core.Effect) {
	c.waitMu.Lock()
	w := c.reads[id]
	delete(c.reads, id)
	c.waitMu.Unlock()
	if w.ch != nil {
		w.ch <- e
	}
}

// readWaiter is a read waiting for the core's answer; leased: Vault will write a lease for
// it (the role's lease is not false), which a new token's write then waits for.
type readWaiter struct {
	ch     chan core.Effect
	leased bool
}

// attemptChan is request id's channel of verdicts on its attempts (made on first use, by
// whichever of the request and its first verdict comes first).
func (c *tokenCache) attemptChan(id core.ReqID) chan core.AttemptVerdict {
	c.waitMu.Lock()
	defer c.waitMu.Unlock()
	ch, ok := c.attempts[id]
	if !ok {
		ch = make(chan core.AttemptVerdict, 1)
		c.attempts[id] = ch
	}
	return ch
}

// readResult is what a token read gets: a token (maybe with why it is stale) or an error.
type readResult struct {
	token *cachedToken
	// fetched: a request made for this read (or joined by it) brought the token.
	fetched bool
	// renewErr: renewing failed (or was not allowed) but the token still had life to serve.
	renewErr *core.Failure
}

func (r readResult) warning() string {
	switch {
	case r.renewErr == nil:
		return ""
	case r.renewErr.Replayed:
		return fmt.Sprintf("renewing this token failed at %s (%v); Naver is not asked again before %s; serving the cached token until it expires at %s",
			r.renewErr.At.UTC().Format(time.RFC3339), r.renewErr.Err, r.renewErr.RetryAt.UTC().Format(time.RFC3339), r.token.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("renewing this token failed (%v); serving the cached token until it expires at %s", r.renewErr.Err, r.token.ExpiresAt.UTC().Format(time.RFC3339))
}

// readToken is a token read of key through role: what the core decides, once decided.
// minLife is the role's min_remaining_ttl; newAccounts its bound on accounts without a
// token (a many-seller role's read; 0 otherwise).
func (c *tokenCache) readToken(ctx context.Context, s logical.Storage, key tokenKey, role string, minLife time.Duration, newAccounts int, leased bool) (readResult, error) {
	id := core.ReadID(c.ids.Add(1))
	ch := make(chan core.Effect, 1)
	c.waitMu.Lock()
	c.reads[id] = readWaiter{ch: ch, leased: leased}
	c.waitMu.Unlock()
	c.step(s, core.Read{Now: c.now(), ID: id, Key: key, Role: role, MinLife: minLife, NewAccountsPerHour: newAccounts})
	var e core.Effect
	select {
	case e = <-ch:
	case <-ctx.Done():
		c.step(nil, core.ReadGone{Now: c.now(), ID: id})
		select {
		case e = <-ch: // answered meanwhile
		default:
			c.waitMu.Lock()
			delete(c.reads, id)
			c.waitMu.Unlock()
			return readResult{}, ctx.Err()
		}
	}
	switch e := e.(type) {
	case core.Serve:
		return readResult{token: e.Token, fetched: e.Fetched, renewErr: e.Warning}, nil
	case core.Fail:
		return readResult{}, e.Err
	}
	return readResult{}, fmt.Errorf("unexpected answer %v", e)
}

// dropToken drops key's token (see core.Drop).
func (c *tokenCache) dropToken(ctx context.Context, s logical.Storage, key tokenKey, force bool) core.DropDone {
	id := core.DropID(c.ids.Add(1))
	ch := make(chan core.DropDone, 1)
	c.waitMu.Lock()
	c.drops[id] = ch
	c.waitMu.Unlock()
	c.step(s, core.Drop{Now: c.now(), ID: id, Key: key, Force: force})
	select {
	case d := <-ch:
		return d
	case <-ctx.Done():
		// The drop goes on (its fact may be on its way to storage); its caller is gone.
		return core.DropDone{Drop: id, Err: ctx.Err()}
	}
}

// verify asks the core to verify st's credentials (see core.Verify).
func (c *tokenCache) verify(ctx context.Context, s logical.Storage, st *configState) core.VerifyDone {
	id := core.VerifyID(c.ids.Add(1))
	ch := make(chan core.VerifyDone, 1)
	c.waitMu.Lock()
	c.verifies[id] = ch
	c.waitMu.Unlock()
	c.mu.Lock()
	c.configs[st.policy.credentials] = st
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		if c.current != st.policy.credentials {
			delete(c.configs, st.policy.credentials)
		}
		c.mu.Unlock()
	}()
	c.step(s, core.Verify{Now: c.now(), ID: id, Config: st.core()})
	select {
	case d := <-ch:
		return d
	case <-ctx.Done():
		return core.VerifyDone{Verify: id, Err: ctx.Err()}
	}
}

// seed caches the SELF token that verified the config just written.
func (c *tokenCache) seed(s logical.Storage, tok *cachedToken) {
	c.step(s, core.Seed{Now: c.now(), Token: *tok})
}

// setConfig makes st the config in force (nil: none); written says this node wrote it,
// retire that the write changed the credentials (the stored tokens of others are retired).
func (c *tokenCache) setConfig(s logical.Storage, st *configState, retire, written bool) {
	c.mu.Lock()
	if st == nil {
		c.current = ""
	} else {
		if c.current != st.policy.credentials {
			delete(c.configs, c.current)
		}
		c.current = st.policy.credentials
		c.configs[c.current] = st
	}
	c.mu.Unlock()
	ev := core.ConfigSet{Now: c.now(), Written: written, RetireOthers: retire}
	if st != nil {
		cfg := st.core()
		ev.Config = &cfg
	}
	c.step(s, ev)
}

// setRole tells the core that role name is now r (nil: deleted, or unreadable). Keys it
// leaves no role naming stop being cached before it returns: a token in memory only (its
// write under way, or failed) is stored first, so storage waits are part of it.
func (c *tokenCache) setRole(s logical.Storage, name string, r *roleEntry) {
	// Bounded: a write that stalls must not hold a role write; its key is evicted once it
	// lands.
	c.stores.waitUntil(time.Now().Add(roleWriteWait))
	c.step(s, core.RoleSet{Now: c.now(), Name: name, Role: r.core()})
	c.stores.waitUntil(time.Now().Add(roleWriteWait))
}

// roleWriteWait bounds how long a role write waits for token writes under way.
const roleWriteWait = 5 * time.Second

// send makes the request the core decided, with the config of its credentials.
func (c *tokenCache) send(e core.Send) {
	c.mu.Lock()
	st := c.configs[e.Credentials]
	c.mu.Unlock()
	ch := c.attemptChan(e.Req)
	c.goWork(func() {
		defer func() {
			c.waitMu.Lock()
			delete(c.attempts, e.Req)
			c.waitMu.Unlock()
		}()
		if st == nil {
			c.step(nil, core.Answer{Now: c.now(), Req: e.Req, NotSent: true, Err: errors.New("the config this request was made for is gone")})
			return
		}
		gate := &attemptGate{c: c, req: e.Req, verdicts: ch, cleared: e.Cleared}
		ctx, cancel := context.WithTimeout(c.ctx, st.config.RequestTimeout)
		raw, err := st.client.requestToken(withAttemptGate(ctx, gate), e.Key.Type, e.Key.AccountID)
		cancel()
		ans := core.Answer{Now: c.now(), Req: e.Req}
		if err != nil {
			ans.Err, ans.Outcome, ans.NotSent = err, outcomeOf(err, e.Key), !gate.sent
		} else {
			ans.Token = &core.Issued{AccessToken: raw.AccessToken, TokenType: raw.TokenType, ExpiresAt: raw.ExpiresAt, LatestExpiry: raw.LatestExpiry}
		}
		c.step(nil, ans)
	})
}

// outcomeOf classifies a failed request for the core.
func outcomeOf(err error, key tokenKey) core.Outcome {
	var ue *upstreamError
	if !errors.As(err, &ue) {
		return core.Outcome{}
	}
	return core.Outcome{Status: ue.StatusCode, RetryAfter: ue.RetryAfter, AccountRefused: key.Type == tokenTypeSeller && ue.accountRefused(), Answer: ue.answer()}
}

// probe asks Naver whether it still accepts the token a drop is of.
func (c *tokenCache) probe(e core.Probe) {
	c.mu.Lock()
	st := c.configs[e.Credentials]
	c.mu.Unlock()
	c.goWork(func() {
		res := core.ProbeResult{Drop: e.Drop}
		if st == nil {
			res.Err = errors.New("the config changed while the token was checked")
		} else {
			ctx, cancel := context.WithTimeout(c.ctx, st.config.RequestTimeout)
			res.Alive, res.Err = st.client.tokenAccepted(ctx, e.Token)
			cancel()
		}
		res.Now = c.now()
		c.step(nil, res)
	})
}

func (c *tokenCache) putToken(s logical.Storage, tok *cachedToken) error {
	lock := locksutil.LockForKey(c.storeLocks, tok.Key.StorageKey())
	lock.Lock()
	defer lock.Unlock()
	return storeToken(c.ctx, s, tok)
}

// deleteToken deletes an entry the core found stale: one of a key it writes at once, any
// other only if it is still what the sweep read (a read may have stored a token there since).
func (c *tokenCache) deleteToken(s logical.Storage, e core.Delete) error {
	lock := locksutil.LockForKey(c.storeLocks, e.StorageKey)
	lock.Lock()
	defer lock.Unlock()
	if e.Key == nil {
		entry, err := s.Get(c.ctx, e.StorageKey)
		if err != nil || entry == nil {
			return err
		}
		c.sweptMu.Lock()
		prev, ok := c.sweptSums.get(sweptKeyOf(e.StorageKey))
		c.sweptMu.Unlock()
		if !ok || prev.sum != maphash.Bytes(c.sweptSeed, entry.Value) {
			return nil
		}
	}
	c.sweptMu.Lock()
	c.sweptSums.delete(sweptKeyOf(e.StorageKey))
	c.sweptMu.Unlock()
	return s.Delete(c.ctx, e.StorageKey)
}

// retire rewrites every stored token of credentials other than keep as its fact: the
// credentials changed, and a token of other credentials must never be served, but what is
// known of it still bounds what Naver answers later.
func (c *tokenCache) retire(s logical.Storage, keep string) error {
	c.stores.wait() // a token still being stored would escape the listing below
	keys, err := logical.CollectKeysWithPrefix(c.ctx, s, tokenStoragePrefix)
	if err != nil {
		return fmt.Errorf("listing cached tokens: %w", err)
	}
	for _, k := range keys {
		entry, err := s.Get(c.ctx, k)
		if err != nil {
			return fmt.Errorf("reading cached token: %w", err)
		}
		if entry == nil {
			continue
		}
		tok, err := decodeToken(entry)
		if err != nil || tok.Retired != "" || tok.AccessToken == "" || tok.Credentials == keep {
			continue // unreadable entries are the sweep's; facts are kept as they are
		}
		fact := *tok
		fact.AccessToken, fact.Retired = "", retiredCredentials
		if err := c.putToken(s, &fact); err != nil {
			return fmt.Errorf("retiring cached token: %w", err)
		}
	}
	return nil
}

// periodic runs the core's periodic work until it is done or ctx's deadline.
func (c *tokenCache) periodic(ctx context.Context, s logical.Storage) {
	c.periodicMu.Lock()
	defer c.periodicMu.Unlock()
	// Deadlines are wall-clock time, whatever clock the cache reckons tokens by.
	deadline := time.Now().Add(periodicBudget)
	if d, ok := ctx.Deadline(); ok && d.Add(-periodicMargin).Before(deadline) {
		deadline = d.Add(-periodicMargin)
	}
	// Writes under way end first: one that fails is written again by this run, not by the
	// next (a restart meanwhile would lose it). Not past the deadline: a write that stalls is
	// written again by the next run.
	c.stores.waitUntil(deadline)
	done := make(chan struct{})
	c.waitMu.Lock()
	c.tickDone = done
	c.waitMu.Unlock()
	c.step(s, core.Tick{Now: c.now()})
	select {
	case <-done: // most runs renew nothing: no timer
		c.step(nil, core.TickEnd{Now: c.now()})
		return
	default:
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		// The renewals go on behind us, bounded by request_timeout; Vault's periodic call
		// must not wait for them.
	case <-ctx.Done():
	}
	c.step(nil, core.TickEnd{Now: c.now()})
}

// rolesKnown reports whether the core knows every stored role.
func (c *tokenCache) rolesKnown() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.RolesKnown()
}

// storageHandle is the mount's storage, from the last request (nil: none yet).
func (c *tokenCache) storageHandle() logical.Storage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.storage
}

// ensureCounts reads the application's stored counts into the core unless it has them, so
// that status reports the hour's requests across a restart.
func (c *tokenCache) ensureCounts(ctx context.Context, s logical.Storage, clientID string) {
	c.mu.Lock()
	known := c.m.CountsKnown()
	c.mu.Unlock()
	if !known {
		c.step(s, loadCounts(ctx, s, clientID, c.now))
	}
}

// cached is the token the core serves for key, or nil (for tests).
func (c *tokenCache) cached(key tokenKey) *cachedToken {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m.Cached(key)
}
