package core

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Token types, as Naver names them.
const (
	TypeSelf   = "SELF"
	TypeSeller = "SELLER"
)

// Key identifies a token at Naver: roles naming the same account share it.
type Key struct {
	ClientID  string `json:"client_id"`
	Type      string `json:"type"`
	AccountID string `json:"account_id,omitempty"`
}

func (k Key) String() string { return k.ClientID + "|" + k.Type + "|" + k.AccountID }

// StorageKey names the key's storage entry without putting identifiers in a path.
func (k Key) StorageKey() string { return k.StoreID().StorageKey() }

// StorageKey is the storage key that spells the ID.
func (id StoreID) StorageKey() string { return TokenPrefix + hex.EncodeToString(id[:]) }

// StoreID is what a key's storage key spells in hex. Maps of every key in memory are keyed
// by it rather than by the storage key: 16 bytes in place, not a 39-byte string each.
type StoreID [16]byte

// StoreID is the ID of the key's storage entry.
func (k Key) StoreID() StoreID {
	// Hashed from a buffer on the stack: every lookup of a key in memory computes it.
	var buf [96]byte
	s := append(append(append(append(append(buf[:0], k.ClientID...), '|'), k.Type...), '|'), k.AccountID...)
	sum := sha256.Sum256(s)
	return StoreID(sum[:16])
}

// ParseStoreID is the ID a storage key spells; ok is false when it is not a key's storage
// key (StorageKey spells it in lower-case hex only).
func ParseStoreID(storageKey string) (id StoreID, ok bool) {
	h, found := strings.CutPrefix(storageKey, TokenPrefix)
	if !found || len(h) != 2*len(id) || strings.ToLower(h) != h {
		return id, false
	}
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return id, false
	}
	return id, true
}

// TokenPrefix is where the entries of tokens live in storage.
const TokenPrefix = "tokens/"

// Token is a token with what the machine needs to know of it, or, once it is no longer
// served (dropped, unusable, of credentials that changed), the fact of it: the token string
// is then gone (AccessToken empty, Retired says why) and only its fingerprint and lives
// remain, so that whatever Naver answers later for the key is bounded by them. It is also
// the stored form of a key's entry (the plugin adds the format). Values are never modified
// once the machine holds them.
type Token struct {
	Format       int       `json:"format,omitempty"`
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	ExpiresAt    time.Time `json:"expires_at"`
	LatestExpiry time.Time `json:"latest_expiry,omitzero"`
	Key          Key       `json:"key"`
	// Credentials ties the token to the config it was fetched with.
	Credentials string `json:"credentials"`
	// FetchedAt is when the token was requested.
	FetchedAt time.Time `json:"fetched_at"`
	// Fingerprint identifies the token without holding it (see Fingerprint).
	Fingerprint string `json:"fingerprint,omitempty"`
	// Retired, when set, says why the token is no longer served; AccessToken is then empty.
	Retired string `json:"retired,omitempty"`
	// Unnamed marks a token whose key no role named when it stopped being cached.
	Unnamed bool `json:"unnamed,omitempty"`
	// RefusedUntil and RefusedReason: Naver refused the key's account as not authorised;
	// reads fail at once with the reason until then (or a drop).
	RefusedUntil  time.Time `json:"refused_until,omitzero"`
	RefusedReason string    `json:"refused_reason,omitempty"`
}

// Why a token is no longer served (Token.Retired).
const (
	RetiredDropped     = "dropped"     // an operator dropped it
	RetiredUnusable    = "unusable"    // Naver issued it with too little life to serve
	RetiredCredentials = "credentials" // the config's credentials changed
	RetiredExpired     = "expired"     // it expired before its key stopped counting in the application budget
)

// Fingerprint is a one-way digest of a token, so a fact can recognise a token Naver hands
// back without keeping the token itself.
func Fingerprint(token string) string {
	sum := sha256.Sum256([]byte("navercommerce-token\x00" + token))
	return hex.EncodeToString(sum[:16])
}

// Servable reports whether the token may be served under credentials.
func (t *Token) Servable(credentials string) bool {
	return t != nil && t.Retired == "" && t.AccessToken != "" && t.Credentials == credentials
}

// retired is the fact of t once it is no longer served: everything but the token itself.
func (t *Token) retired(why string) *Token {
	f := *t
	f.AccessToken, f.Retired = "", why
	return &f
}

// KnownUntil is when nothing known of the entry matters any more. A fact also matters while
// its key counts in the automatic application budget (countsUntil), so that the next process
// counts the key too: a token may expire, or be dropped, long before that.
func (t *Token) KnownUntil() time.Time {
	until := t.ExpiresAt
	if t.LatestExpiry.After(until) {
		until = t.LatestExpiry
	}
	if t.RefusedUntil.After(until) {
		until = t.RefusedUntil
	}
	if c := t.countsUntil(); t.AccessToken == "" && c.After(until) {
		until = c
	}
	return until
}

// countsUntil is when the key stops counting in the automatic application budget for this
// token: a token's life after Naver answered with it (zero: Naver issued none).
func (t *Token) countsUntil() time.Time {
	if at := IssuedAt(t); !at.IsZero() {
		return at.Add(TokenLifetime)
	}
	return time.Time{}
}

// Life is how long the token can still be used, as far as we can be sure.
func (t *Token) Life(now time.Time) time.Duration { return t.ExpiresAt.Sub(now) }

// NaverLife is the most life Naver may think the token has: the 30-minute rule is judged on it.
func (t *Token) NaverLife(now time.Time) time.Duration {
	if t.LatestExpiry.IsZero() { // stored before the field existed
		return t.ExpiresAt.Sub(now)
	}
	return t.LatestExpiry.Sub(now)
}

// RenewAt is when the token is renewed: at offset into Naver's 30-minute window (when
// Naver issues a new token), never before the window opens, always with RenewMinLife left.
func (t *Token) RenewAt(offset time.Duration) time.Time {
	latest := t.LatestExpiry
	if latest.IsZero() {
		latest = t.ExpiresAt
	}
	at := latest.Add(-RefreshWindow + offset)
	if last := t.ExpiresAt.Add(-RenewMinLife); at.After(last) {
		at = last
	}
	if first := latest.Add(-RefreshWindow); at.Before(first) {
		at = first
	}
	return at
}

// SpreadHash is the hash a key's offset into Naver's window is taken from: FNV-1a of
// k.String(), computed in place (the periodic run asks it of every key every minute).
func (k Key) SpreadHash() uint64 {
	h := uint64(fnvOffset64)
	h = fnv1a(h, k.ClientID)
	h = fnv1a(h, "|")
	h = fnv1a(h, k.Type)
	h = fnv1a(h, "|")
	h = fnv1a(h, k.AccountID)
	return h
}

// SpreadOffset is the key's stable offset into Naver's window, from 0 to width.
func SpreadOffset(hash uint64, width time.Duration) time.Duration {
	if width <= 0 {
		return 0
	}
	return time.Duration(hash % uint64(width))
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

func fnv1a(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return h
}

// Config is what the mount's config says about getting tokens.
type Config struct {
	ClientID string
	// Credentials fingerprints client ID, secret and base URL: tokens belong to it.
	Credentials string
	// Endpoint names where requests go (base URL and proxy): the breaker belongs to it.
	Endpoint   string
	Ahead      bool          // background refresh
	PerHour    int           // max token requests per key per hour
	AppPerHour int           // max token requests of the application per hour; 0: automatic
	Spread     time.Duration // renewal_spread
	// Timeout bounds one request, retries included: a probe holds the breaker that long.
	Timeout    time.Duration
	MaxRetries int
}

// Role is what the machine needs of a role: which keys it names, and what its reads ask.
type Role struct {
	Type      string
	AccountID string
	// Allowed makes a many-seller role: account IDs or globs where * matches any run.
	Allowed []string
	// MinLife is the role's min_remaining_ttl (0: none).
	MinLife time.Duration
	// NewAccountsPerHour bounds the accounts of a many-seller role that hold no token from
	// Naver and may be asked for in any hour (0: DefaultNewAccountsPerHour).
	NewAccountsPerHour int
}

// ManySellers reports whether the role serves many sellers.
func (r *Role) ManySellers() bool { return len(r.Allowed) > 0 }

// Allows reports whether a many-seller role allows account.
func (r *Role) Allows(account string) bool {
	if account == "" {
		return false
	}
	for _, p := range r.Allowed {
		if GlobMatch(p, account) {
			return true
		}
	}
	return false
}

// Names reports whether a read through the role (of clientID's application) can be of key.
func (r *Role) Names(clientID string, key Key) bool {
	if key.ClientID != clientID || key.Type != r.Type {
		return false
	}
	if r.ManySellers() {
		return r.Allows(key.AccountID)
	}
	return key.AccountID == r.AccountID
}

// GlobMatch reports whether s matches pattern, in which * matches any run of characters
// (also none) and every other character only itself.
func GlobMatch(pattern, s string) bool {
	first, rest, wild := strings.Cut(pattern, "*")
	if !wild {
		return pattern == s
	}
	middle, last := "", rest
	if i := strings.LastIndexByte(rest, '*'); i >= 0 {
		middle, last = rest[:i], rest[i+1:]
	}
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	// Leftmost matches of the middle parts are enough: * can absorb whatever is skipped.
	// Cut, not Split: every read of a many-seller role matches, and Split allocates.
	for middle != "" {
		var part string
		part, middle, _ = strings.Cut(middle, "*")
		i := strings.Index(s, part)
		if i < 0 {
			return false
		}
		s = s[i+len(part):]
	}
	return true
}
