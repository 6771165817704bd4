package core

import "time"

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
