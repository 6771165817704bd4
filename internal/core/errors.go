package core

import (
	"errors"
	"fmt"
	"time"
)

// Failure is a key's last failed request (or one a budget refused), as reads see it.
type Failure struct {
	Err error
	At  time.Time
	// Replayed is set when a read shares the failure during its back-off, which ends at
	// RetryAt: nothing was asked for that read.
	Replayed bool
	RetryAt  time.Time

	outcome Outcome // how Naver failed
	refusal bool    // nothing was sent: a budget, the breaker or the counts said no
}

func (f *Failure) Error() string {
	if f.Replayed {
		return fmt.Sprintf("not asking Naver again before %s: the request at %s failed: %v",
			f.RetryAt.UTC().Format(time.RFC3339), f.At.UTC().Format(time.RFC3339), f.Err)
	}
	return f.Err.Error()
}

func (f *Failure) Unwrap() error { return f.Err }

// BudgetError is a request not sent because the key spent its hourly budget, or (Paced)
// because its requests are spread over the hour while Naver fails for it.
type BudgetError struct {
	Limit     int
	NextAfter time.Time
	Paced     bool
}

func (e *BudgetError) Error() string {
	if e.Paced {
		burst, interval := Pacing(e.Limit)
		return fmt.Sprintf("not asking Naver before %s: Naver is failing, and meanwhile a token's requests are spread over the hour (max_token_requests_per_hour %d: %d at once, then one every %s)",
			e.NextAfter.UTC().Format(time.RFC3339), e.Limit, burst, interval.Round(time.Second))
	}
	return fmt.Sprintf("not asking Naver: this token has had %d requests in the last hour, the limit set by max_token_requests_per_hour; the next is allowed at %s",
		e.Limit, e.NextAfter.UTC().Format(time.RFC3339))
}

// AppBudgetError is a request not sent because the application spent its hourly budget.
type AppBudgetError struct {
	Limit      int
	Background bool
	NextAfter  time.Time
}

func (e *AppBudgetError) Error() string {
	who := "this application"
	if e.Background {
		who = "background renewals of this application (the rest is kept for reads)"
	}
	return fmt.Sprintf("not asking Naver: %s had %d token requests in the last hour, the application budget (max_application_requests_per_hour); the next is allowed at %s",
		who, e.Limit, e.NextAfter.UTC().Format(time.RFC3339))
}

// BreakerError is a request not sent because Naver has been failing for the application.
type BreakerError struct {
	Failures int
	Until    time.Time
	Last     error
}

func (e *BreakerError) Error() string {
	return fmt.Sprintf("not asking Naver before %s: its last %d answers to this application were failures (the last: %v); one request tries again then",
		e.Until.UTC().Format(time.RFC3339), e.Failures, e.Last)
}

func (e *BreakerError) Unwrap() error { return e.Last }

// CountsError is a request not sent because the application's counts could not be read
// from or written to storage: every request sent is counted in storage first.
type CountsError struct{ Err error }

func (e *CountsError) Error() string {
	return fmt.Sprintf("not asking Naver: storage failed keeping the application's request counts: %v", e.Err)
}

func (e *CountsError) Unwrap() error { return e.Err }

// AccountRefusedError is a read of an account Naver refused as not authorised, within
// RefusedFor of the refusal: nothing is asked.
type AccountRefusedError struct {
	Account string
	At      time.Time
	Until   time.Time
	// Reason is Naver's refusal (kept as its text across restarts).
	Reason error
	// Answer is Naver's answer in words, without advice (status shows it).
	Answer string
}

// Text is Naver's answer, as status and storage keep it.
func (e *AccountRefusedError) Text() string {
	if e.Answer != "" {
		return e.Answer
	}
	return e.Reason.Error()
}

func (e *AccountRefusedError) Error() string {
	return fmt.Sprintf("Naver refused account %s at %s as not authorised by the seller (%v); not asking again before %s, unless the token is dropped first",
		e.Account, e.At.UTC().Format(time.RFC3339), e.Reason, e.Until.UTC().Format(time.RFC3339))
}

func (e *AccountRefusedError) Unwrap() error { return e.Reason }

// NewAccountsError is a request not sent because a many-seller role asked for too many
// accounts without a token from Naver within the last hour.
type NewAccountsError struct {
	Role      string
	Limit     int
	NextAfter time.Time
}

func (e *NewAccountsError) Error() string {
	next := "when one of the requests for such accounts now under way ends: try again in a few seconds"
	if !e.NextAfter.IsZero() {
		next = "the next is allowed at " + e.NextAfter.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("not asking Naver: role %q has asked, in the last hour or now, for %d accounts that had no token from Naver and got none, its limit (max_new_accounts_per_hour; a typo'd or revoked seller account costs the whole application requests); %s",
		e.Role, e.Limit, next)
}

// StorageError is a read of storage that failed where the machine cannot go on without it.
type StorageError struct {
	What string
	Err  error
}

func (e *StorageError) Error() string { return fmt.Sprintf("%s: %v", e.What, e.Err) }
func (e *StorageError) Unwrap() error { return e.Err }

// ErrNotConfigured: the mount has no config.
var ErrNotConfigured = errors.New("the secrets engine is not configured")

// ErrClosing: the mount is going away.
var ErrClosing = errors.New("the secrets engine is shutting down")

// errNoRetry stops retries of a request sent while Naver was failing.
var errNoRetry = errors.New("no retries while Naver is failing")

// refusal reports whether err is a request not sent because a budget, the breaker or the
// counts said no: it sent nothing, so it is no failure of Naver's.
func refusal(err error) bool {
	var be *BudgetError
	var ab *AppBudgetError
	var br *BreakerError
	var ce *CountsError
	var ne *NewAccountsError
	return errors.As(err, &be) || errors.As(err, &ab) || errors.As(err, &br) || errors.As(err, &ce) || errors.As(err, &ne)
}

// refusedReason is Naver's refusal as loaded from storage: its text.
type refusedReason string

func (r refusedReason) Error() string { return string(r) }
