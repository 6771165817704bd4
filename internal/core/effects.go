package core

import (
	"fmt"
	"time"
)

// An Effect is what the machine asks the plugin to do, handed out by Machine.Ready in the
// order the machine decided them.
type Effect interface {
	String() string
}

// Serve answers read Read with Token. Warning, when set, is why the token is served stale
// (its renewal failed, or was not allowed); Fetched says a request made for this read (or
// joined by it) brought it.
type Serve struct {
	Read    ReadID
	Token   *Token
	Warning *Failure
	Fetched bool
}

// Fail answers read Read with Err.
type Fail struct {
	Read ReadID
	Err  error
}

// Send starts a token request for Key with the config of Credentials, retries at most
// Retries. Verify is set for a verification (of credentials not yet stored). Cleared says
// the first attempt may go at once; otherwise it waits for an AttemptVerdict.
type Send struct {
	Req         ReqID
	Key         Key
	Credentials string
	Verify      VerifyID
	Background  bool
	Retries     int
	Cleared     bool
}

// AttemptVerdict says whether request Req may send its next attempt (Go), or why not.
type AttemptVerdict struct {
	Req ReqID
	Go  bool
	Err error
}

// Load reads the key's storage entry and reports it as Loaded.
type Load struct{ Key Key }

// Store writes Entry under its key's storage key and reports Written.
type Store struct {
	Write WriteID
	Entry Token
}

// Delete deletes the entry at StorageKey and reports Written. Unless it is of a key the
// machine writes (Key set), the entry is deleted only if it is still the one the sweep read.
type Delete struct {
	Write      WriteID
	StorageKey string
	Key        *Key
}

// LoadCounts reads the application's stored request counts and reports CountsLoaded.
type LoadCounts struct{ ClientID string }

// StoreCounts writes the application's request counts and reports CountsWritten.
type StoreCounts struct {
	Write    WriteID
	ClientID string
	Counts   Counts
}

// Probe asks Naver whether it still accepts Token (for a drop) and reports ProbeResult.
type Probe struct {
	Drop        DropID
	Key         Key
	Token       string
	Credentials string
}

// DropOutcome is what a drop did.
type DropOutcome int

const (
	Dropped        DropOutcome = iota // the token is no longer served; the next read asks Naver
	NoToken                           // no token was cached for the key
	StillAlive                        // Naver still accepts the token: it is kept and served
	Renewed                           // a new token replaced the one checked meanwhile: kept
	RefusalCleared                    // the key held no token, and Naver's refusal of its account is forgotten
)

// DropDone answers drop Drop. BackoffUntil is when reads of the key ask Naver again (zero:
// at once).
type DropDone struct {
	Drop         DropID
	Outcome      DropOutcome
	BackoffUntil time.Time
	Err          error
}

// VerifyDone answers verification Verify: Fresh (the SELF token cached under the
// credentials is one Naver would hand back: only the way to Naver needs proving), or the
// Token Naver issued, or Err.
type VerifyDone struct {
	Verify VerifyID
	Fresh  bool
	Token  *Token
	Err    error
}

// Retire rewrites every stored token of credentials other than Keep as its fact: the
// credentials changed on this node.
type Retire struct{ Keep string }

// Sweep reads the next part of storage's entries of tokens (listing them first if no sweep
// is under way), reporting them as Swept; the last part is Done.
type Sweep struct{}

// TickDone: the periodic run may return (its renewals are started, or its deadline passed).
type TickDone struct{}

// Log is a line for the plugin's log; never a token, a signature or the secret.
type Log struct {
	Warn bool
	Msg  string
	Args []any
}

// Metric counts one thing for the plugin's metrics (see the Metric* names).
type Metric struct {
	Name string
	Err  error
}

// Metric names.
const (
	MetricRenewal          = "background-renewal" // Err: nil for a renewal that succeeded
	MetricBudgetRefused    = "budget-refused"
	MetricAppBudgetRefused = "app-budget-refused"
	MetricBreakerRefused   = "breaker-refused"
	MetricRequested        = "requested" // a request reached Naver; Err: its failure
)

func (e Serve) String() string {
	return fmt.Sprintf("serve#%d %s warning=%t fetched=%t", e.Read, e.Token.Key, e.Warning != nil, e.Fetched)
}
func (e Fail) String() string { return fmt.Sprintf("fail#%d: %v", e.Read, e.Err) }
func (e Send) String() string {
	return fmt.Sprintf("send#%d %s background=%t verify=%d cleared=%t", e.Req, e.Key, e.Background, e.Verify, e.Cleared)
}
func (e AttemptVerdict) String() string {
	return fmt.Sprintf("attempt-verdict#%d go=%t err=%v", e.Req, e.Go, e.Err)
}
func (e Load) String() string { return "load " + e.Key.String() }
func (e Store) String() string {
	return fmt.Sprintf("store#%d %s retired=%q", e.Write, e.Entry.Key, e.Entry.Retired)
}
func (e Delete) String() string {
	return fmt.Sprintf("delete#%d %s", e.Write, e.StorageKey)
}
func (e LoadCounts) String() string  { return "load-counts " + e.ClientID }
func (e StoreCounts) String() string { return fmt.Sprintf("store-counts#%d %s", e.Write, e.ClientID) }
func (e Probe) String() string       { return fmt.Sprintf("probe#%d %s", e.Drop, e.Key) }
func (e DropDone) String() string {
	return fmt.Sprintf("drop-done#%d outcome=%d err=%v", e.Drop, e.Outcome, e.Err)
}
func (e VerifyDone) String() string {
	return fmt.Sprintf("verify-done#%d fresh=%t token=%t err=%v", e.Verify, e.Fresh, e.Token != nil, e.Err)
}
func (e Retire) String() string   { return "retire keep=" + e.Keep }
func (e Sweep) String() string    { return "sweep" }
func (e TickDone) String() string { return "tick-done" }
func (e Log) String() string      { return "log " + e.Msg }
func (e Metric) String() string   { return "metric " + e.Name }
