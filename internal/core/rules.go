package core

import "time"

// The rules the machine keeps, from Naver's and the README's.
const (
	// RefreshWindow mirrors Naver's rule: a token with this much life left is handed back
	// unchanged by Naver, so asking earlier buys nothing; with less left Naver issues a new one.
	RefreshWindow = 30 * time.Minute
	// RenewSpreadWidth: keys renew at a stable point of Naver's window up to this far in,
	// always with RenewMinLife or more left.
	RenewSpreadWidth = 20 * time.Minute
	RenewMinLife     = 10 * time.Minute
	// minRefetchInterval: while its cached token is still good, a key asks at most this
	// often, whatever Naver's answers say of the token's life.
	minRefetchInterval = 10 * time.Second
	// sameTokenPause: when Naver hands back the token the cache already has, it thinks 30
	// minutes or more are left (its clock and ours disagree); the key waits this long.
	sameTokenPause = time.Minute
	// MinServableLife is the least life a token must have to be handed out at all; it also
	// keeps every lease at 10 s or more (Vault turns a lease TTL of 0 into 768 h).
	MinServableLife = 10 * time.Second
	// MinAheadLife: with background refresh on, a token in the 30-minute window that has at
	// least this much left is served at once while a new one is requested behind the read.
	MinAheadLife = 5 * time.Minute

	// Back-off after failed requests, for reads: FailureBackoff (RateLimitBackoff after a
	// 429), doubled per consecutive failure, at most maxBackoff; Naver's Retry-After if longer.
	FailureBackoff   = 5 * time.Second
	RateLimitBackoff = 30 * time.Second
	maxBackoff       = 5 * time.Minute
	// maxRetryAfter caps the wait a Retry-After of Naver's can ask for (a bad header must
	// not lock a key out for a day).
	maxRetryAfter = time.Hour
	// Back-off for background renewal across periodic runs.
	backgroundBackoff    = time.Minute
	maxBackgroundBackoff = time.Hour

	// RenewConcurrency bounds the background renewals of one periodic run in flight.
	RenewConcurrency = 4

	// SweepInterval: how often storage is swept of entries nothing is known of any more.
	SweepInterval = time.Hour

	// TokenLifetime is how long Naver's tokens live: a key read within it is in use.
	TokenLifetime = 3 * time.Hour
	// IdleKeyLifetime: a key with no token, no read, no request and no refusal for this long
	// is forgotten (its request log with it: nothing in it counts any more).
	IdleKeyLifetime = 24 * time.Hour

	// PaceBurst attempts a failing key may send at once (a read and its default 2 retries);
	// after them one per pacing interval (see pacing).
	PaceBurst = 3

	// The automatic application budget per hour: AppBudgetFloor + AppBudgetPerKey × keys
	// Naver issued a token to that are in use.
	AppBudgetFloor  = 30
	AppBudgetPerKey = 2
	// BackgroundShare is the part of the application budget background renewals may use.
	BackgroundShare = 0.75

	// breakerThreshold consecutive failed requests of the application (no answer, 5xx, 429)
	// open the breaker: no key asks before it closes, but for one probe every
	// breakerBackoff, doubled per further failure, at most MaxBreakerBackoff.
	breakerThreshold  = 3
	breakerBackoff    = 30 * time.Second
	MaxBreakerBackoff = 5 * time.Minute

	// AppWindow is how long a request counts against the application's budget: counted per
	// minute, a request is kept one minute more than an hour, so no hour ever holds more.
	AppWindow = time.Hour + time.Minute
	// countReserve bounds how many requests one write of the application's counts stores
	// ahead of time (see appState.write).
	countReserve = 8

	// RefusedFor is how long an account Naver refused as not authorised is not asked for
	// again: its reads fail at once with Naver's reason meanwhile (a drop ends it sooner).
	RefusedFor = time.Hour
	// DefaultNewAccountsPerHour bounds, per many-seller role, the accounts that hold no
	// token from Naver and may be asked for in any hour.
	DefaultNewAccountsPerHour = 10
)
