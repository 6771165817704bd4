package core

import (
	"fmt"
	"time"
)

// keyState is everything the machine knows of one key. A mount holds one for each seller
// it serves (10,000 and more), so what most keys never have — failures, waiters — is held
// behind pointers that stay nil until they do, and the flags are kept together.
type keyState struct {
	key        Key
	spreadHash uint64

	// token is the token served (nil when none is); fact is what is known of the key's
	// latest token: the token itself, or the fact of one no longer served. Whatever Naver
	// answers is bounded by it. When token is set, fact is token.
	token *Token
	fact  *Token
	// stored is the sweep's summary of the key's entry when the key came into memory, until
	// memory knows the entry itself (a load landed, or a write): forgotten again, the key
	// leaves it behind (it counts in the automatic budget, status lists it).
	stored *Token
	// The key's storage writes, one at a time: writing is the one in flight (0: none).
	writing WriteID

	// loaded: storage was read since memory last forgot the key; loading: a Load is out.
	loaded  bool
	loading bool
	// dirty says memory changed since the entry that is (or was last) written; unstored
	// says the last write failed (the periodic run writes again).
	dirty    bool
	unstored bool
	// unnamedMark: no role names the key; its entry says so (for a restart or rollback);
	// markWhenLoaded: the sweep found its entry unmarked, and reads it to mark it.
	unnamedMark    bool
	markWhenLoaded bool
	// evictStored: evict the key from memory once its entry is stored.
	evictStored bool
	renewQueued bool
	// named is keyNamed's answer while the roles' generation is namedGen.
	named    bool
	namedGen uint32

	// minLife is the most min_remaining_ttl of the roles read through the key since it
	// was cached: its token is renewed before it has less left.
	minLife  time.Duration
	lastRead time.Time

	// fails is what the key's failures left (nil: nothing; see failed and setFailed).
	fails     *keyFailures
	lastError *KeyError

	// issuedAt is when Naver last issued the key a token (zero: never, as far as known).
	issuedAt time.Time
	// refused: Naver's last answer for the key refused its account as not authorised. Its
	// reads fail at once until refused.Until; after that the next read asks again, and until
	// then the key stays refused (in status too: a seller to look into, not an outage).
	refused *AccountRefusedError

	inflight *request
	// waits is what waits on the key (nil: nothing; see wait and tidyWaits).
	waits *keyWaits
	log   requestLog
}

// keyFailures is what a key's failed requests left, and the pause after a handed-back
// token. It is nil in keyState while it is all zero (most keys never fail), so it is never
// changed in place: setFailed replaces it.
type keyFailures struct {
	failures       int      // consecutive failed requests
	failedWith     string   // credentials of the failures: back-offs bind only them
	lastFailure    *Failure // nil after a success; reads share it during the back-off
	backoffUntil   time.Time
	nextBackground time.Time
	notBefore      time.Time // Naver handed back the same token: do not ask before
}

// failed is what the key's failures left (all zero: nothing).
func (ks *keyState) failed() keyFailures {
	if ks.fails == nil {
		return keyFailures{}
	}
	return *ks.fails
}

// setFailed makes f what the key's failures left; all zero holds nothing.
func (ks *keyState) setFailed(f keyFailures) {
	if f == (keyFailures{}) {
		ks.fails = nil
		return
	}
	ks.fails = &f
}

// keyWaits is what waits on a key: reads and drops for its load, reads for its request,
// verifications for either, seeds for its load, drops' facts to be written, and the drops
// under way. It exists only while something waits (tidyWaits releases it).
type keyWaits struct {
	waitLoad   []ReadID
	waitReq    []ReadID
	dropsWait  []DropID
	verifyWait []VerifyID
	seedsWait  []Token
	dropQueue  []*pendingDrop
	dropping   int // drops of the key under way
}

// wait is what waits on the key, made when something is about to.
func (ks *keyState) wait() *keyWaits {
	if ks.waits == nil {
		ks.waits = &keyWaits{}
	}
	return ks.waits
}

// waitedOn reports whether anything waits on the key.
func (ks *keyState) waitedOn() bool {
	w := ks.waits
	return w != nil && len(w.waitLoad)+len(w.waitReq)+len(w.dropsWait)+len(w.verifyWait)+len(w.seedsWait)+len(w.dropQueue)+w.dropping > 0
}

// take empties a list of what waits and returns what it held: those are dealt with now,
// and what comes to wait meanwhile waits anew (tidyWaits once done).
func take[T any](l *[]T) []T {
	out := *l
	*l = nil
	return out
}

// tidyWaits releases what waits on the key once nothing does.
func (ks *keyState) tidyWaits() {
	if !ks.waitedOn() {
		ks.waits = nil
	}
}

// KeyError is a key's last failure, as status reports it.
type KeyError struct {
	At  time.Time
	Err error
}

// servable is the key's token if it may be served under credentials.
func (ks *keyState) servable(credentials string) *Token {
	if ks.token.Servable(credentials) {
		return ks.token
	}
	return nil
}

// failureFor is the key's last failure if it was made with credentials.
func (ks *keyState) failureFor(credentials string) *Failure {
	if ks.fails == nil || ks.fails.failedWith != credentials {
		return nil
	}
	return ks.fails.lastFailure
}

// renewalFailure is the key's last failure with credentials if it came after tok was
// fetched: a failure to renew tok, which a read serving tok reports. An older failure (before
// a verification or a load brought tok) says nothing of it.
func (ks *keyState) renewalFailure(credentials string, tok *Token) *Failure {
	f := ks.failureFor(credentials)
	if f == nil || !f.At.After(tok.FetchedAt) {
		return nil
	}
	return f
}

// learn makes f the key's known fact unless a newer one is known. The same token is newer
// retired than served: a drop of it is later knowledge than the token. Of two tokens fetched
// at the same instant, the one learnt last is newer (what Naver answered last), unless f
// comes from storage (fromStorage), which may be older than memory.
func (ks *keyState) learn(f *Token, fromStorage bool) bool {
	old := ks.fact
	switch {
	case old == nil, f.FetchedAt.After(old.FetchedAt):
	case f.FetchedAt.Equal(old.FetchedAt) && f.Fingerprint == old.Fingerprint:
		if old.Retired != "" && f.Retired == "" {
			return false
		}
	case f.FetchedAt.Equal(old.FetchedAt) && !fromStorage:
	default:
		return false
	}
	ks.fact = f
	if ks.token != nil && ks.token != f && (f.Retired != "" || f.FetchedAt.After(ks.token.FetchedAt)) {
		ks.token = nil
	}
	return true
}

// pendingRead is a read waiting for its answer.
type pendingRead struct {
	id      ReadID
	ks      *keyState
	role    string
	minLife time.Duration
	// newAccounts is the role's bound on accounts without a token (0: not a many-seller read).
	newAccounts int
}

// result is what a request (or a decision not to send one) gives the reads waiting on it.
type result struct {
	token *Token
	// fetched: the token came from a request made for this read (or one it joined).
	fetched bool
	// renewErr: renewing failed (or was not allowed) but the token still had life to serve.
	renewErr *Failure
	// backingOff: renewErr is an earlier failure shared during its back-off.
	backingOff bool
	err        error
	// noted: the renewal's end was counted already (complete does it for a request).
	noted bool
}

func (m *Machine) read(e Read) {
	if m.closing {
		m.emit(Fail{Read: e.ID, Err: ErrClosing})
		return
	}
	if m.cfg == nil {
		m.emit(Fail{Read: e.ID, Err: ErrNotConfigured})
		return
	}
	ks := m.key(e.Key)
	r := &pendingRead{id: e.ID, ks: ks, role: e.Role, minLife: max(e.MinLife, MinServableLife)}
	r.newAccounts = e.NewAccountsPerHour
	ks.minLife = max(ks.minLife, r.minLife)
	if e.Now.Sub(ks.lastRead) > time.Second || ks.lastRead.IsZero() {
		ks.lastRead = e.Now
	}
	m.reads[r.id] = r
	m.evalRead(r, e.Now)
}

func (m *Machine) readGone(e ReadGone) {
	r, ok := m.reads[e.ID]
	if !ok {
		return
	}
	delete(m.reads, e.ID)
	if w := r.ks.waits; w != nil {
		w.waitLoad = removeID(w.waitLoad, e.ID)
		w.waitReq = removeID(w.waitReq, e.ID)
		r.ks.tidyWaits()
	}
}

func removeID[T comparable](ids []T, id T) []T {
	for i, x := range ids {
		if x == id {
			return append(ids[:i:i], ids[i+1:]...)
		}
	}
	return ids
}

// evalRead decides what read r gets now: a token at once, a wait for a load or a request,
// or a failure.
func (m *Machine) evalRead(r *pendingRead, now time.Time) {
	ks := r.ks
	if m.cfg == nil {
		m.failRead(r, ErrNotConfigured)
		return
	}
	creds := m.cfg.Credentials
	tok := ks.servable(creds)
	if tok == nil && !ks.loaded {
		m.load(ks)
		w := ks.wait()
		w.waitLoad = append(w.waitLoad, r.id)
		return
	}
	if tok != nil && !m.isDue(ks, tok, now) {
		// Not due at its point in the window (a config write may have moved the point past
		// a renewal that failed): a failing renewal is still said, as status says stale.
		m.serveRead(r, result{token: tok, renewErr: ks.renewalFailure(creds, tok)}, now)
		return
	}
	if tok != nil && m.cfg.Ahead && tok.Life(now) >= max(MinAheadLife, r.minLife) {
		// Served at once while the renewal runs behind the read: the read reports the
		// last renewal's failure, as the renewal behind it has not ended yet.
		m.serveRead(r, result{token: tok, renewErr: ks.renewalFailure(creds, tok)}, now)
		m.renewBehind(ks, now, false)
		return
	}
	if ks.inflight != nil {
		w := ks.wait()
		w.waitReq = append(w.waitReq, r.id)
		return
	}
	res, sent := m.decide(ks, now, false, r)
	if sent {
		w := ks.wait()
		w.waitReq = append(w.waitReq, r.id)
		return
	}
	m.resolveRead(r, res, now)
}

// renewBehind starts the key's renewal behind a read or for the periodic run, unless one is
// running; the outcome feeds the background-renewal metric.
func (m *Machine) renewBehind(ks *keyState, now time.Time, fromTick bool) bool {
	if ks.inflight != nil {
		return false
	}
	res, sent := m.decide(ks, now, true, nil)
	if sent {
		ks.inflight.fromTick = fromTick
		return true
	}
	if !res.noted {
		m.noteRenewal(res)
	}
	return false
}

// noteRenewal counts a background renewal that ended (or never started).
func (m *Machine) noteRenewal(res result) {
	switch {
	case res.fetched:
		m.emit(Metric{Name: MetricRenewal})
	case res.err != nil:
		m.emit(Metric{Name: MetricRenewal, Err: res.err})
	case res.renewErr != nil && !res.backingOff:
		m.emit(Metric{Name: MetricRenewal, Err: res.renewErr})
	}
}

// isDue reports whether the key's token is to be renewed at now: past its point in Naver's
// window, or with less life than a role reading it asks for.
func (m *Machine) isDue(ks *keyState, tok *Token, now time.Time) bool {
	return now.After(m.renewAt(ks, tok)) || tok.Life(now) < ks.minLife
}

func (m *Machine) renewAt(ks *keyState, tok *Token) time.Time {
	return tok.RenewAt(SpreadOffset(ks.spreadHash, m.spread()))
}

// decide is what a read (r) or a background renewal does about a key whose token is not
// simply served: serve what is cached, share the last failure, or send a request (sent:
// the request is in flight, the read waits for it).
func (m *Machine) decide(ks *keyState, now time.Time, background bool, r *pendingRead) (res result, sent bool) {
	creds := m.cfg.Credentials
	current := ks.servable(creds)
	if current != nil && !m.isDue(ks, current, now) {
		return result{token: current}, false
	}
	servable := current != nil && current.Life(now) >= MinServableLife
	failure := ks.failureFor(creds)
	fails := ks.failed()
	backoffUntil := fails.backoffUntil
	if failure == nil {
		// A failure of other credentials owes these no back-off.
		backoffUntil = time.Time{}
	}
	if ks.refused != nil && ks.refused.Until.After(now.Add(RefusedFor)) {
		ks.refused.Until = now.Add(RefusedFor) // the clock stepped back: an hour from now at most
	}
	if ks.refused != nil && now.Before(ks.refused.Until) {
		// Naver refused the account: nothing is asked before the refusal's hour ends (or a
		// drop), also to renew a token that still has life; that one is served meanwhile.
		if servable {
			return result{token: current, renewErr: &Failure{Err: ks.refused, At: ks.refused.At, refusal: true}, backingOff: true}, false
		}
		return result{err: ks.refused}, false
	}
	if servable && (now.Sub(current.FetchedAt) < minRefetchInterval || now.Before(fails.notBefore)) {
		return result{token: current, renewErr: failure}, false
	}
	if servable && failure != nil && now.Before(m.recoverySpreadPoint(ks, current)) {
		// Naver is back, and this token has time to spare: its renewal waits for its point
		// in the recovery's spread.
		return result{token: current, renewErr: failure, backingOff: true}, false
	}
	recovered := failure != nil && now.Before(backoffUntil) && m.naverBackFor(ks, failure, now)
	if now.Before(backoffUntil) && !recovered {
		replay := &Failure{Err: failure.Err, At: failure.At, Replayed: true, RetryAt: backoffUntil, outcome: failure.outcome}
		if servable {
			return result{token: current, renewErr: replay, backingOff: true}, false
		}
		return result{err: replay}, false
	}
	req := m.newRequest(ks, now, background, nil, current)
	req.unpaced = recovered
	if r != nil && r.newAccounts > 0 && ks.issuedAt.IsZero() {
		req.tryRole, req.tryLimit = r.role, r.newAccounts
	}
	if m.startRequest(req, now) {
		return result{}, true
	}
	// Refused before anything was sent (budgets, breaker, counts): the request ended.
	return req.res, false
}

// recoverySpreadPoint is when a key that failed in a storm renews its still-servable token
// once Naver is back for the application: at a point stable for the key within the
// renewal spread in force after the recovery, with MinAheadLife (or the life a role reading
// it asks for) still left. Zero or past: at once.
func (m *Machine) recoverySpreadPoint(ks *keyState, tok *Token) time.Time {
	recoveredAt := m.app(ks.key.ClientID).recoveredAt
	if recoveredAt.IsZero() {
		return time.Time{}
	}
	margin := max(MinAheadLife, ks.minLife)
	width := min(m.spread(), tok.Life(recoveredAt)-margin)
	if width <= 0 || m.spreadWidth <= 0 {
		return time.Time{}
	}
	return recoveredAt.Add(time.Duration(float64(width) * float64(SpreadOffset(ks.spreadHash, m.spreadWidth)) / float64(m.spreadWidth)))
}

// naverBackFor reports whether a key backing off after failure may ask now because Naver
// came back for the application since: only after Naver failed (no answer or a 5xx; not a
// 429 or Retry-After, which ask for time), at least FailureBackoff after it, once per
// recovery, and never into the last burst of the key's hourly budget.
func (m *Machine) naverBackFor(ks *keyState, failure *Failure, now time.Time) bool {
	o := failure.outcome
	if failure.refusal || o.RetryAfter > 0 || o.Status == 429 || !o.failing() {
		return false
	}
	if now.Sub(failure.At) < FailureBackoff || !m.app(ks.key.ClientID).recoveredAt.After(failure.At) {
		return false
	}
	n, _ := ks.log.since(now, time.Hour)
	perHour := m.cfg.PerHour
	burst, _ := Pacing(perHour)
	return perHour <= 0 || n < perHour-burst
}

// resolveRead answers r with res's token (judged against r's least life) or error.
func (m *Machine) resolveRead(r *pendingRead, res result, now time.Time) {
	if res.err != nil {
		m.failRead(r, res.err)
		return
	}
	m.serveRead(r, res, now)
}

func (m *Machine) serveRead(r *pendingRead, res result, now time.Time) {
	// The request may have taken a while, or been joined late: judge the token now.
	if left := res.token.Life(now); left < r.minLife {
		switch {
		case res.renewErr != nil && left < MinServableLife:
			m.failRead(r, res.renewErr)
		case res.renewErr != nil:
			m.failRead(r, &LifeError{Left: left, MinLife: r.minLife, Renewal: res.renewErr})
		default:
			m.failRead(r, &LifeError{Left: left, MinLife: r.minLife})
		}
		return
	}
	delete(m.reads, r.id)
	m.emit(Serve{Read: r.id, Token: res.token, Warning: res.renewErr, Fetched: res.fetched})
}

func (m *Machine) failRead(r *pendingRead, err error) {
	delete(m.reads, r.id)
	m.emit(Fail{Read: r.id, Err: err})
}

// LifeError: the token has too little life left for the read.
type LifeError struct {
	Left    time.Duration
	MinLife time.Duration
	Renewal *Failure
}

func (e *LifeError) Error() string {
	left := max(e.Left, 0).Round(time.Second)
	if e.Renewal != nil {
		return fmt.Sprintf("the token has only %s left, less than the role's min_remaining_ttl, and renewing it failed: %v", left, e.Renewal)
	}
	return fmt.Sprintf("the token has only %s left", left)
}

func (e *LifeError) Unwrap() error {
	if e.Renewal == nil {
		return nil
	}
	return e.Renewal
}

// load reads the key's entry from storage, once at a time.
func (m *Machine) load(ks *keyState) {
	if ks.loading {
		return
	}
	ks.loading = true
	m.emit(Load{Key: ks.key})
}

func (m *Machine) loaded(e Loaded) {
	ks := m.state(e.Key)
	if ks == nil {
		return
	}
	ks.loading = false
	if e.Err == nil {
		ks.stored = nil
	}
	if e.Err != nil {
		// Asking Naver without what storage knows of the token could be a needless
		// request, or serve a handed-back token past its death.
		err := &StorageError{What: "reading the cached token from storage", Err: e.Err}
		for _, id := range take(&ks.wait().waitLoad) {
			if r, ok := m.reads[id]; ok {
				m.failRead(r, err)
			}
		}
		for _, id := range take(&ks.wait().dropsWait) {
			if d, ok := m.drops[id]; ok {
				m.dropDone(d, DropDone{Err: &StorageError{What: "reading the cached token", Err: e.Err}})
			}
		}
		for _, id := range take(&ks.wait().verifyWait) {
			if v, ok := m.verifies[id]; ok {
				m.warn("reading what is known of the token failed", m.keyArgs(ks, "error", e.Err)...)
				m.runVerify(v, e.Now, true)
			}
		}
		ks.tidyWaits()
		return
	}
	ks.loaded = true
	if stored := e.Entry; stored != nil && stored.Key == e.Key {
		m.learnStored(ks, stored, e.Now)
	}
	if ks.markWhenLoaded {
		ks.markWhenLoaded = false
		if ks.fact != nil && !m.namedOrSelf(ks.key) {
			if !ks.unnamedMark {
				ks.unnamedMark = true
				m.persist(ks)
			}
			m.evict(ks) // read to be marked, not to be cached
		}
	}
	// Memory may know newer than storage (a token whose write failed, or is under way, when
	// the config was deleted): what it knows serves.
	if ks.token == nil && m.cfg != nil && ks.fact.Servable(m.cfg.Credentials) && ks.fact.Life(e.Now) > 0 && !ks.evictStored {
		ks.token = ks.fact
	}
	m.wake(ks, e.Now)
	if ks.token != nil && !m.namedOrSelf(ks.key) {
		// Its role was deleted while the load was out: the reads it waited for are served,
		// and the key stops being cached, as when a request races the delete.
		m.evict(ks)
	}
}

// learnStored makes a stored entry what memory knows of the key, unless memory knows newer.
func (m *Machine) learnStored(ks *keyState, stored *Token, now time.Time) {
	if stored.RefusedUntil.After(now) && ks.refused == nil {
		ks.refused = &AccountRefusedError{Account: ks.key.AccountID, At: stored.RefusedUntil.Add(-RefusedFor), Until: stored.RefusedUntil, Reason: refusedReason(stored.RefusedReason), Answer: stored.RefusedReason}
	}
	if stored.Fingerprint == "" && stored.AccessToken == "" {
		return // a refusal only
	}
	m.setIssued(ks, IssuedAt(stored))
	if stored.Unnamed {
		ks.unnamedMark = true
	}
	if !ks.learn(stored, true) {
		return
	}
	if m.cfg != nil && stored.Servable(m.cfg.Credentials) && stored.Life(now) > 0 {
		ks.token = stored
	}
}

// wake re-evaluates what waited for the key's load.
func (m *Machine) wake(ks *keyState, now time.Time) {
	for _, id := range take(&ks.wait().waitLoad) {
		if r, ok := m.reads[id]; ok {
			m.evalRead(r, now)
		}
	}
	for _, id := range take(&ks.wait().dropsWait) {
		if d, ok := m.drops[id]; ok {
			m.runDrop(d, now)
		}
	}
	for _, id := range take(&ks.wait().verifyWait) {
		if v, ok := m.verifies[id]; ok {
			m.runVerify(v, now, false)
		}
	}
	for _, t := range take(&ks.wait().seedsWait) {
		m.seed(Seed{Now: now, Token: t})
	}
	ks.tidyWaits()
}

// publish makes tok (of credentials creds) what is known of the key, in memory and storage.
// A token of credentials no longer in force is stored, not served: as it is when the config
// was deleted or changed elsewhere (a config with those credentials serves it again), as
// its fact when a write on this node replaced them.
func (m *Machine) publish(ks *keyState, tok *Token, now time.Time) {
	current := m.cfg != nil && m.cfg.Credentials == tok.Credentials
	if !current && m.superseded[tok.Credentials] && tok.Retired == "" {
		tok = tok.retired(RetiredCredentials)
	}
	if !ks.learn(tok, false) {
		return
	}
	m.setIssued(ks, IssuedAt(tok))
	if tok.Retired == "" && current {
		ks.token = tok
		ks.unnamedMark = false
	}
	m.persist(ks)
	if ks.token != nil && !m.namedOrSelf(ks.key) {
		// No role names the key (its role was deleted while the request ran): it stops
		// being cached once its token is stored.
		m.evict(ks)
	}
}

// keyNamed is namedOrSelf(ks.key), kept in ks until the roles or the config change (a
// periodic run asks it of every key each minute).
func (m *Machine) keyNamed(ks *keyState) bool {
	if ks.namedGen != m.roles.gen {
		ks.named, ks.namedGen = m.namedOrSelf(ks.key), m.roles.gen
	}
	return ks.named
}

// namedOrSelf reports whether the key is to stay cached: a role names it, the roles are not
// known yet, or it is the application's SELF key (the token that verified the config is
// cached on purpose: a SELF role will read it).
func (m *Machine) namedOrSelf(k Key) bool {
	if !m.roles.known || k.Type == TypeSelf || m.cfg == nil {
		return true
	}
	return m.roles.named(m.cfg.ClientID, k)
}

// entry is what storage should hold for the key: its latest fact, with the refusal of its
// account and whether a role names it.
func (ks *keyState) entry(credentials string) (Token, bool) {
	var e Token
	switch {
	case ks.fact != nil:
		e = *ks.fact
	case ks.refused != nil:
		e = Token{Key: ks.key, Credentials: credentials}
	default:
		return Token{}, false
	}
	e.Unnamed = ks.unnamedMark && e.Retired == ""
	e.RefusedUntil, e.RefusedReason = time.Time{}, ""
	if ks.refused != nil {
		e.RefusedUntil, e.RefusedReason = ks.refused.Until, ks.refused.Text()
	}
	return e, true
}

// persist writes the key's entry, after the write in flight if there is one.
func (m *Machine) persist(ks *keyState) {
	ks.dirty = true
	m.flush(ks)
}

// flush starts the key's next write, if none is in flight: a drop's fact first (the drop
// waits for it), else the key's entry if memory changed since the last write.
func (m *Machine) flush(ks *keyState) {
	if ks.writing != 0 {
		return
	}
	for ks.waits != nil && len(ks.waits.dropQueue) > 0 {
		d := ks.waits.dropQueue[0]
		ks.waits.dropQueue = ks.waits.dropQueue[1:]
		ks.tidyWaits()
		if _, ok := m.drops[d.id]; !ok {
			continue
		}
		entry := *d.tok.retired(RetiredDropped)
		entry.Unnamed, entry.RefusedUntil, entry.RefusedReason = false, time.Time{}, ""
		m.startWrite(ks, &pendingWrite{ks: ks, entry: entry, drops: []DropID{d.id}})
		return
	}
	if !ks.dirty {
		return
	}
	entry, ok := ks.entry(ks.lastCreds(m))
	ks.dirty = false
	if !ok {
		// Nothing left to keep (a refusal dropped, say): storage forgets it too.
		m.startWrite(ks, &pendingWrite{ks: ks, delete: true})
		return
	}
	m.startWrite(ks, &pendingWrite{ks: ks, entry: entry})
}

func (m *Machine) startWrite(ks *keyState, w *pendingWrite) {
	ks.stored = nil
	id := WriteID(m.id())
	ks.writing = id
	m.writes[id] = w
	if w.delete {
		k := ks.key
		m.emit(Delete{Write: id, StorageKey: k.StorageKey(), Key: &k})
		return
	}
	m.emit(Store{Write: id, Entry: w.entry})
}

func (ks *keyState) lastCreds(m *Machine) string {
	if m.cfg != nil {
		return m.cfg.Credentials
	}
	return m.lastCreds
}

// pendingWrite is a storage write of the machine in flight.
type pendingWrite struct {
	ks     *keyState
	entry  Token
	delete bool
	// drops wait for this write to land (a drop's fact).
	drops []DropID
	// swept: the sweep's rewrite of an expired token's entry as its fact; was is what
	// memory knew of the key before it.
	swept bool
	was   *Token
}

func (m *Machine) written(e Written) {
	w, ok := m.writes[e.Write]
	if !ok {
		return
	}
	delete(m.writes, e.Write)
	ks := w.ks
	if ks == nil {
		return // a delete of an entry no key in memory owns
	}
	ks.writing = 0
	switch {
	case len(w.drops) > 0:
		for _, id := range w.drops {
			if d, ok := m.drops[id]; ok {
				if e.Err != nil {
					m.dropFailed(d, ks, e.Err)
				} else {
					m.dropApplied(d, ks, e.Now)
				}
			}
		}
	case w.delete:
		if e.Err != nil {
			m.warn("deleting a stale cached token failed", "error", e.Err)
		}
	case w.swept && e.Err != nil:
		// Storage still holds the expired token, which counts the key as well; the next
		// sweep rewrites it (a periodic run's retry every minute would be a write storm
		// while storage refuses writes).
		// Memory goes back to the token storage holds (so a forgotten key's summary is the
		// token, which the next sweep finds stale again); a key known only from the sweep
		// keeps the fact, not loaded (the next sweep decodes the entry, its time being past).
		if ks.fact != nil && ks.fact.Retired == RetiredExpired && !ks.dirty {
			if w.was != nil {
				ks.fact = w.was
			}
			// Not loaded, as after an eviction: the fact is an expired token, which nothing
			// may take for the cache (a config write caches a loaded servable fact).
			ks.loaded = false
		}
		m.warn("keeping the fact of an expired token failed; the next sweep tries again", m.keyArgs(ks, "error", e.Err)...)
	case e.Err != nil:
		// The token (or what is known of it) is good; only the copy for restarts is
		// missing: the periodic run writes it again (not at once: storage is failing).
		ks.unstored, ks.dirty = true, true
		m.warn("storing token failed; it is cached in memory only", m.keyArgs(ks, "error", e.Err)...)
		if ks.waits != nil && len(ks.waits.dropQueue) > 0 {
			m.flush(ks)
		}
		return
	case !ks.dirty:
		ks.unstored = false
	}
	m.flush(ks)
	if ks.writing == 0 && ks.evictStored {
		m.evict(ks)
	}
}

// evict stops caching a key in memory (its token expired, or no role names it): it is not
// renewed any more, and a read loads it from storage again. A token memory holds but
// storage may not (a write failed or is under way) is stored first.
func (m *Machine) evict(ks *keyState) {
	if ks.token == nil {
		ks.evictStored = false
		return
	}
	if ks.writing != 0 || ks.dirty || ks.unstored {
		ks.evictStored = true
		m.flush(ks)
		return
	}
	ks.evictStored = false
	if !m.namedOrSelf(ks.key) && !ks.unnamedMark {
		m.unnamed[ks.key] = true
	}
	ks.token = nil
	ks.loaded = false
}

// keyArgs are a log line's fields for ks — its type, its account and the roles that name it,
// so that an operator of a hundred sellers can act on it — followed by more.
func (m *Machine) keyArgs(ks *keyState, more ...any) []any {
	args := []any{"type", ks.key.Type}
	if ks.key.AccountID != "" {
		args = append(args, "account_id", ks.key.AccountID)
	}
	if m.cfg != nil && m.roles.known {
		args = append(args, "roles", m.roles.naming(m.cfg.ClientID, ks.key))
	}
	return append(args, more...)
}

// newRequest makes a token request of the key (not started).
func (m *Machine) newRequest(ks *keyState, now time.Time, background bool, v *pendingVerify, current *Token) *request {
	req := &request{id: ReqID(m.id()), ks: ks, background: background, verify: v, current: current}
	if v != nil {
		req.cfg = v.cfg
	} else {
		req.cfg = *m.cfg
	}
	fails := ks.failed()
	req.single = fails.failures > 0 && fails.failedWith == req.cfg.Credentials
	return req
}

// request is a token request the machine started (or is starting).
type request struct {
	id         ReqID
	ks         *keyState
	cfg        Config
	background bool
	fromTick   bool
	verify     *pendingVerify
	// current is the token servable when the request was decided.
	current *Token
	single  bool // no retries: the key (or the application) is failing
	unpaced bool // Naver came back since the key failed: its first attempt skips the pace
	probe   bool // the breaker's probe
	// waitingCounts: the request waits for the application's counts to load.
	waitingCounts bool
	sent          bool
	attempts      int
	sentAt        time.Time
	countedAt     time.Time // when the key's log counts its last attempt (see attemptSending)
	appShare      int
	// tryRole: a many-seller role's read of an account without a token from Naver;
	// waitingTries: it waits for one of the role's tries under way to end.
	tryRole      string
	tryLimit     int
	waitingTries bool
	// waitingSweep: the automatic budget refused it while the stored tokens were not all
	// known; it waits for the sweep that learns them (sweepTried: once).
	waitingSweep bool
	sweepTried   bool
	// quiet: the application's budget refused it, as it refused the background renewal
	// before it, and that was said: its refusal is not logged again.
	quiet bool
	// res is what the request gave, once it ended.
	res result
}

// pendingVerify is a config write's verification.
type pendingVerify struct {
	id  VerifyID
	cfg Config
	ks  *keyState
}

func (m *Machine) verify(e Verify) {
	ks := m.key(Key{ClientID: e.Config.ClientID, Type: TypeSelf})
	v := &pendingVerify{id: e.ID, cfg: e.Config, ks: ks}
	m.verifies[e.ID] = v
	m.runVerify(v, e.Now, false)
}

// runVerify asks Naver for a SELF token with the new credentials, unless the one cached
// under them is a token Naver would hand back (a needless request; the credentials were
// proven when it was issued). loadFailed: what storage knows could not be read.
func (m *Machine) runVerify(v *pendingVerify, now time.Time, loadFailed bool) {
	ks := v.ks
	if !ks.loaded && !loadFailed {
		m.load(ks)
		w := ks.wait()
		w.verifyWait = append(w.verifyWait, v.id)
		return
	}
	for _, t := range []*Token{ks.token, ks.fact} {
		if t.Servable(v.cfg.Credentials) && t.NaverLife(now) >= RefreshWindow {
			delete(m.verifies, v.id)
			m.emit(VerifyDone{Verify: v.id, Fresh: true})
			return
		}
	}
	if ks.inflight != nil {
		w := ks.wait()
		w.verifyWait = append(w.verifyWait, v.id)
		return
	}
	// A config write of credentials whose verification Naver just failed shares that
	// failure during the back-off, as reads share a key's: asking again at once is what the
	// back-off exists to prevent.
	if f := m.verifyFailed[v.cfg.verifyKey()]; f != nil && now.Before(f.RetryAt) && !now.Before(f.At) {
		delete(m.verifies, v.id)
		m.emit(VerifyDone{Verify: v.id, Err: &Failure{Err: f.Err, At: f.At, Replayed: true, RetryAt: f.RetryAt, outcome: f.outcome}})
		return
	}
	req := m.newRequest(ks, now, false, v, nil)
	req.single = false
	if !m.startRequest(req, now) {
		delete(m.verifies, v.id)
		m.emit(VerifyDone{Verify: v.id, Err: req.res.err})
	}
}

func (m *Machine) seed(e Seed) {
	ks := m.key(e.Token.Key)
	if !ks.loaded && ks.fact == nil {
		m.load(ks)
		w := ks.wait()
		w.seedsWait = append(w.seedsWait, e.Token)
		return
	}
	tok := e.Token
	m.boundHandedBack(ks, &tok, e.Now)
	m.publish(ks, &tok, e.Now)
}

// boundHandedBack: if Naver handed back a token already known (cached, dropped, or of other
// credentials), it thinks 30 minutes or more are left. Its answer never extends what is
// known of the token's life, and the key does not ask again for a while.
func (m *Machine) boundHandedBack(ks *keyState, tok *Token, now time.Time) {
	known := ks.fact
	if known == nil || known.Fingerprint != tok.Fingerprint {
		return
	}
	if known.ExpiresAt.Before(tok.ExpiresAt) {
		tok.ExpiresAt = known.ExpiresAt
	}
	if !known.LatestExpiry.IsZero() && known.LatestExpiry.Before(tok.LatestExpiry) {
		tok.LatestExpiry = known.LatestExpiry
	}
	m.warn("naver handed back a token already known; not asking again for a while", m.keyArgs(ks, "retry_after", sameTokenPause)...)
	fails := ks.failed()
	fails.notBefore = now.Add(sameTokenPause)
	ks.setFailed(fails)
}
