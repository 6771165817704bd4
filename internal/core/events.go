package core

import (
	"fmt"
	"time"
)

// An Event is something that happened, handed to Machine.Step. Every event says when.
type Event interface {
	at() time.Time
	String() string
}

// IDs name what an event or effect is about: a read waiting for its answer, a request to
// Naver, a drop, a verification, a storage write. The plugin makes read, drop and
// verification IDs (unique per machine); the machine makes request and write IDs.
type (
	ReadID   uint64
	ReqID    uint64
	DropID   uint64
	VerifyID uint64
	WriteID  uint64
)

// Read: a token read of key through role arrived. MinLife is the least life the role asks
// a token to have (its min_remaining_ttl); the machine keeps at least MinServableLife.
type Read struct {
	Now     time.Time
	ID      ReadID
	Key     Key
	Role    string
	MinLife time.Duration
	// NewAccountsPerHour is set on a read through a many-seller role: the role's bound on
	// accounts without a token from Naver asked for in an hour.
	NewAccountsPerHour int
}

// ReadGone: the read's caller stopped waiting (its request was cancelled).
type ReadGone struct {
	Now time.Time
	ID  ReadID
}

// Drop: an operator asked to drop the key's token (DELETE token/...). Without Force, Naver
// is asked first whether it still accepts the token (a Probe effect).
type Drop struct {
	Now   time.Time
	ID    DropID
	Key   Key
	Force bool
}

// ProbeResult: Naver's verdict on the token a drop asked about (Alive), or Err when Naver
// could not tell.
type ProbeResult struct {
	Now   time.Time
	Drop  DropID
	Alive bool
	Err   error
}

// Outcome classifies a failed answer of Naver for the machine; the error itself is opaque.
type Outcome struct {
	// Status is the HTTP status; 0 when Naver did not answer.
	Status int
	// RetryAfter is Naver's Retry-After (0: none, or one that asks for no wait).
	RetryAfter time.Duration
	// AccountRefused: Naver refused the request's account as not authorised by the seller.
	AccountRefused bool
	// Answer is Naver's answer in words (status, code, message, trace ID), without the
	// plugin's advice: what status reports as the reason of a refusal.
	Answer string
}

// failing reports whether the outcome is Naver (or the way to it) failing: no answer, a
// 5xx or a 429. A refusal (another 4xx) tells that Naver answers.
func (o Outcome) failing() bool {
	return o.Status == 0 || o.Status == 429 || o.Status >= 500
}

// Issued is a token as Naver's answer gave it, with its lives already reckoned by the
// plugin from when the request was sent (ExpiresAt) and its answer arrived (LatestExpiry).
type Issued struct {
	AccessToken  string
	TokenType    string
	ExpiresAt    time.Time
	LatestExpiry time.Time
}

// Answer: a request the machine sent (see Send) ended. With Err nil, Token is what Naver
// issued; otherwise Outcome classifies Err. NotSent: nothing reached Naver (the
// application's counts could not be stored, or signing failed).
type Answer struct {
	Now     time.Time
	Req     ReqID
	Token   *Issued
	Err     error
	Outcome Outcome
	NotSent bool
}

// AttemptAsk: a request wants to send another attempt (a retry). Check only asks whether one
// may follow, without counting it (the verdict comes back as an AttemptVerdict).
type AttemptAsk struct {
	Now   time.Time
	Req   ReqID
	Check bool
}

// AttemptSending: an attempt the core let go (the first or a retry) leaves for Naver now.
// The key counts it from now, not from when it was decided: the write of the counts it
// waited for may have taken a while, and no hour at Naver may hold more than the key's budget.
type AttemptSending struct {
	Now time.Time
	Req ReqID
}

// Loaded: the key's storage entry, as a Load effect asked (Entry nil: none). Err: reading
// failed.
type Loaded struct {
	Now   time.Time
	Key   Key
	Entry *Token
	Err   error
}

// Written: a Store or Delete effect of the machine ended.
type Written struct {
	Now   time.Time
	Write WriteID
	Err   error
}

// CountsLoaded: the application's stored counts (nil: none), as LoadCounts asked. Lost:
// the entry did not decode (it is overwritten by the next write).
type CountsLoaded struct {
	Now      time.Time
	ClientID string
	Counts   *Counts
	Lost     bool
	Err      error
}

// CountsWritten: a StoreCounts effect ended.
type CountsWritten struct {
	Now   time.Time
	Write WriteID
	Err   error
}

// ConfigSet: the config in force is cfg (nil: none). Written says a write on this node set
// it (rather than a load at a start or after another node's change). A change of
// credentials forgets every token in memory; one written here also retires the tokens of
// the credentials before it (their entries are then retired by the plugin).
type ConfigSet struct {
	Now     time.Time
	Config  *Config
	Written bool
	// RetireOthers: the write changed the secret (or the application), which ends at Naver
	// every token of the secret before it: the stored tokens of every other credentials are
	// retired, and a token of those that arrives later is stored as its fact only.
	RetireOthers bool
}

// Verify: a config write asks for new credentials to be verified with a SELF token
// request, unless the SELF token cached under them is one Naver would hand back.
type Verify struct {
	Now    time.Time
	ID     VerifyID
	Config Config
}

// Seed: the SELF token that verified a config write, to be cached.
type Seed struct {
	Now   time.Time
	Token Token
}

// RolesLoaded: every stored role, read at a start (unreadable ones are absent: they name
// nothing).
type RolesLoaded struct {
	Now   time.Time
	Roles map[string]Role
}

// RoleSet: role name now is role (nil: deleted, or unreadable).
type RoleSet struct {
	Now  time.Time
	Name string
	Role *Role
}

// EntryChanged: another node changed the entry at storage key (an invalidation).
type EntryChanged struct {
	Now        time.Time
	StorageKey string
}

// Tick: the periodic run came; it may run until Deadline.
type Tick struct {
	Now      time.Time
	Deadline time.Time
}

// Swept: entries the sweep read (see the Sweep effect); Done says it read the last, Failed
// that it could not read them all (listing failed, or the mount is going away).
type Swept struct {
	Now     time.Time
	Entries []SweptEntry
	Done    bool
	Failed  bool
}

// SweepNow: status wants to know what storage holds, and storage was not swept since the
// start: a sweep starts now unless one is under way.
type SweepNow struct{ Now time.Time }

// SweptEntry is one stored entry the sweep read: Token, or Undecodable with why (Newer: of a
// format this version cannot read).
type SweptEntry struct {
	StorageKey string
	// Token is the entry decoded; nil when it did not change since the last sweep read it,
	// which then gives only KnownUntil (see Token.KnownUntil) and IssuedAt (when Naver
	// answered the key with the entry's token, zero if it did not).
	Token       *Token
	KnownUntil  time.Time
	IssuedAt    time.Time
	Undecodable bool
	Newer       bool
}

// Closing: the mount is going away; nothing new is started.
type Closing struct{ Now time.Time }

func (e Read) at() time.Time           { return e.Now }
func (e ReadGone) at() time.Time       { return e.Now }
func (e Drop) at() time.Time           { return e.Now }
func (e ProbeResult) at() time.Time    { return e.Now }
func (e Answer) at() time.Time         { return e.Now }
func (e AttemptAsk) at() time.Time     { return e.Now }
func (e AttemptSending) at() time.Time { return e.Now }
func (e Loaded) at() time.Time         { return e.Now }
func (e Written) at() time.Time        { return e.Now }
func (e CountsLoaded) at() time.Time   { return e.Now }
func (e CountsWritten) at() time.Time  { return e.Now }
func (e ConfigSet) at() time.Time      { return e.Now }
func (e Verify) at() time.Time         { return e.Now }
func (e Seed) at() time.Time           { return e.Now }
func (e RolesLoaded) at() time.Time    { return e.Now }
func (e RoleSet) at() time.Time        { return e.Now }
func (e EntryChanged) at() time.Time   { return e.Now }
func (e Tick) at() time.Time           { return e.Now }
func (e Swept) at() time.Time          { return e.Now }
func (e Closing) at() time.Time        { return e.Now }
func (e SweepNow) at() time.Time       { return e.Now }

func (e Read) String() string     { return fmt.Sprintf("read#%d %s role=%s", e.ID, e.Key, e.Role) }
func (e ReadGone) String() string { return fmt.Sprintf("read-gone#%d", e.ID) }
func (e Drop) String() string {
	return fmt.Sprintf("drop#%d %s force=%t", e.ID, e.Key, e.Force)
}
func (e ProbeResult) String() string {
	return fmt.Sprintf("probe-result#%d alive=%t err=%v", e.Drop, e.Alive, e.Err)
}
func (e Answer) String() string {
	switch {
	case e.NotSent:
		return fmt.Sprintf("answer#%d not-sent: %v", e.Req, e.Err)
	case e.Err != nil:
		return fmt.Sprintf("answer#%d status=%d retry-after=%s refused=%t", e.Req, e.Outcome.Status, e.Outcome.RetryAfter, e.Outcome.AccountRefused)
	}
	return fmt.Sprintf("answer#%d token expires %s", e.Req, e.Token.ExpiresAt.Format(time.RFC3339))
}
func (e AttemptAsk) String() string     { return fmt.Sprintf("attempt#%d check=%t", e.Req, e.Check) }
func (e AttemptSending) String() string { return fmt.Sprintf("sending#%d", e.Req) }
func (e Loaded) String() string {
	return fmt.Sprintf("loaded %s entry=%t err=%v", e.Key, e.Entry != nil, e.Err)
}
func (e Written) String() string { return fmt.Sprintf("written#%d err=%v", e.Write, e.Err) }
func (e CountsLoaded) String() string {
	return fmt.Sprintf("counts-loaded %s err=%v", e.ClientID, e.Err)
}
func (e CountsWritten) String() string {
	return fmt.Sprintf("counts-written#%d err=%v", e.Write, e.Err)
}
func (e ConfigSet) String() string {
	if e.Config == nil {
		return "config-set none"
	}
	return fmt.Sprintf("config-set %s written=%t", e.Config.Credentials, e.Written)
}
func (e Verify) String() string { return fmt.Sprintf("verify#%d %s", e.ID, e.Config.Credentials) }
func (e Seed) String() string   { return fmt.Sprintf("seed %s", e.Token.Key) }
func (e RolesLoaded) String() string {
	return fmt.Sprintf("roles-loaded %d", len(e.Roles))
}
func (e RoleSet) String() string {
	return fmt.Sprintf("role-set %s deleted=%t", e.Name, e.Role == nil)
}
func (e EntryChanged) String() string { return "entry-changed " + e.StorageKey }
func (e Tick) String() string         { return "tick" }
func (e Swept) String() string {
	return fmt.Sprintf("swept %d done=%t", len(e.Entries), e.Done)
}
func (e Closing) String() string  { return "closing" }
func (e SweepNow) String() string { return "sweep-now" }
