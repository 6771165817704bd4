package sim

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// operatorViewEvery: how often status, metrics, logs and storage are checked by default
// (Params.OperatorView; cheap checks run after every step).
const operatorViewEvery = 30 * time.Minute

// Params size a run.
type Params struct {
	Days        float64 // simulated time
	Apps        int     // applications (mounts), each with its own storage and backend
	RolesPerApp int     // role names per application
	Accounts    int     // seller accounts per application (keys: Accounts SELLER + 1 SELF)
	// ManySellers is how many more sellers each application reads through one many-seller
	// role (sellersRole, allowed_account_ids "ncp_app<i>_*"), as token/sellers/<account>.
	ManySellers int
	// ReadScale stretches the gaps between an app's reads while it is at work (0 or 1: the
	// default rates; 4: about a quarter of the reads); idle hours stay as they are. Fewer
	// reads still exercise every promise: what costs is the number of reads.
	ReadScale float64
	// ConfigBack: after an operator deletes the config, it is written again after about
	// this long (0: only when the operators' mix happens to, hours later on average). A
	// long run would otherwise spend a third of its key-days unconfigured.
	ConfigBack time.Duration
	// FastSignatures signs and verifies with a digest instead of bcrypt (both sides), for
	// the long campaign only: bcrypt would be most of its cost. The short campaign and the
	// corpus keep bcrypt.
	FastSignatures bool
	// OperatorView is how often status, metrics, logs and storage are checked (0:
	// operatorViewEvery). Operators' status actions check at random moments besides.
	OperatorView time.Duration
	// Alphabet is how many actions an hour, per application, are drawn from the alphabet
	// generated from the backend's API (alphabet.go, alphabet_schedule.go) besides the
	// workload above: single operations, episodes of operations on one role, concurrent
	// pairs, storage failures per operation and prefix, and storms. 0: none.
	Alphabet float64
	// CountRefusals reads the application budget's refusals from metrics before a backend
	// is replaced (the 10,000-seller week reports them). Off elsewhere: a metrics read
	// sweeps storage first, which no operator does before every restart, so a restart
	// would always find storage swept.
	CountRefusals bool
}

func (p Params) operatorViewEvery() time.Duration {
	if p.OperatorView > 0 {
		return p.OperatorView
	}
	return operatorViewEvery
}

// DefaultParams is the short campaign's size: every seed lives 2 days of 2 applications.
func DefaultParams() Params {
	return Params{Days: 2, Apps: 2, RolesPerApp: 6, Accounts: 4, Alphabet: 2}
}

// LongParams is make sim's size: every seed lives 10 days of one application of about 100
// keys: 6 single-account roles over 4 sellers and SELF, and 95 sellers read through one
// many-seller role, read at a tenth of the default rate while at work, a config deleted by
// an operator written again within about an hour, the operator view every hour (it was a
// fifth of a long run's cost every half hour).
func LongParams() Params {
	return Params{Days: 10, Apps: 1, RolesPerApp: 6, Accounts: 4, ManySellers: 95, ReadScale: 10, ConfigBack: time.Hour, FastSignatures: true, OperatorView: time.Hour, Alphabet: 0.5}
}

// keysPerApp is how many keys an application can read.
func (p Params) keysPerApp() int { return p.Accounts + 1 + p.ManySellers }

// sellerPool is how many sellers of the many-seller pool (ncp_app<i>_many<n>) authorised
// each application: the many-seller role's, or the generated alphabet's pool.
func (p Params) sellerPool() int {
	if p.Alphabet > 0 {
		return max(p.ManySellers, alphabetPool)
	}
	return p.ManySellers
}

// Stats is what a run did.
type Stats struct {
	KeyDays       float64
	Reads         int
	ReadsServed   int
	NaverRequests int
	// PeakAppHour is the most token requests one application sent in one clock hour.
	PeakAppHour int
	Faults      map[string]int
	// FailedReads counts failed reads by failedReadReason.
	FailedReads map[string]int
	Actions     int

	naverViolationsSeen int
	// cachedNamedKeys counts the keys of status's lists that cached-keys-named looked at.
	cachedNamedKeys int
}

// Result is one seed's run.
type Result struct {
	Seed       uint64
	Params     Params
	Stats      Stats
	Violations []Violation
	Schedule   []Action
	Elapsed    time.Duration
}

// Failed reports whether a promise broke.
func (r Result) Failed() bool { return len(r.Violations) > 0 }

// Run simulates one seed.
func Run(seed uint64, p Params) Result {
	return runSchedule(seed, p, generate(seed, p))
}

func runSchedule(seed uint64, p Params, acts []Action) Result {
	r, _ := runWorld(seed, p, acts)
	return r
}

// runWorld runs a schedule and returns the world too, for figures beyond Stats.
func runWorld(seed uint64, p Params, acts []Action) (Result, *world) {
	start := time.Now()
	w := newWorld(seed, p)
	horizon := epoch.Add(time.Duration(p.Days * float64(24*time.Hour)))
	nextPeriodic := epoch.Add(periodicInterval)
	nextCheck := epoch.Add(p.operatorViewEvery())
	keysSeen := map[string]bool{}
	step := func(at time.Time, do func()) {
		w.advanceTo(at)
		do()
		for _, a := range w.apps {
			a.backend().WaitIdle()
		}
		w.expireFaults()
		w.checkNaver()
		if !w.now().Before(nextCheck) {
			nextCheck = w.now().Add(p.operatorViewEvery())
			w.forgetExpiredTokens()
			for _, a := range w.apps {
				w.checkOperatorView(a)
				w.checkStorage(a)
			}
		}
	}
	i := 0
	for {
		next := horizon
		if i < len(acts) {
			next = epoch.Add(acts[i].At)
		}
		for !nextPeriodic.After(next) && nextPeriodic.Before(horizon) {
			step(nextPeriodic, func() {
				for _, a := range w.apps {
					w.periodic(a)
				}
			})
			nextPeriodic = nextPeriodic.Add(periodicInterval)
		}
		if i >= len(acts) {
			break
		}
		act := acts[i]
		i++
		step(epoch.Add(act.At), func() { w.do(act) })
		w.stats.Actions++
		if act.Kind == actRead {
			if m := w.apps[act.App].readModel(act.Role); m.exists && !m.damaged {
				keysSeen[fmt.Sprint(act.App)+"|"+m.key()] = true
			}
		}
	}
	for _, a := range w.apps {
		w.checkOperatorView(a)
	}
	w.checkNaver()
	for _, a := range w.apps {
		a.countRefusals()
		b, view := a.current()
		view.closed.Store(true)
		b.Cleanup(context.Background())
	}
	w.stats.KeyDays = float64(len(keysSeen)) * p.Days
	for _, n := range w.hourly {
		w.stats.PeakAppHour = max(w.stats.PeakAppHour, n)
	}
	sort.SliceStable(w.violations, func(i, j int) bool { return w.violations[i].At.Before(w.violations[j].At) })
	return Result{Seed: seed, Params: p, Stats: w.stats, Violations: w.violations, Schedule: acts, Elapsed: time.Since(start)}, w
}

// forgetExpiredTokens drops what the world knows of tokens that died at Naver a day ago:
// on a long run they would be most of its memory, and markDropped walks them. A read
// served one of them still breaks token-valid (a token Naver never issued, or no longer has).
func (w *world) forgetExpiredTokens() {
	w.mu.Lock()
	defer w.mu.Unlock()
	cut := w.now().Add(-24 * time.Hour)
	for tok, iss := range w.issued {
		if iss.expires.Before(cut) {
			delete(w.issued, tok)
			delete(w.lostTokens, tok)
		}
	}
}

func (w *world) expireFaults() {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	for _, f := range w.faults {
		if now.Before(f.until) {
			continue
		}
		switch f.kind {
		case faultReused:
			if !w.faultActive(faultReused, now) && w.seed%3 != 1 {
				w.emu.SetReusedTokenFullLifetime(false)
			}
		case faultJWT:
			if !w.faultActive(faultJWT, now) {
				w.emu.SetJWTTokens(false)
			}
		case faultLifetime:
			if !w.faultActive(faultLifetime, now) {
				w.emu.SetTokenLifetime(3 * time.Hour)
			}
		}
	}
	// Ended faults stay listed for a day: calmSince reads when they ended.
	kept := w.faults[:0]
	for _, f := range w.faults {
		if now.Sub(f.until) < 24*time.Hour {
			kept = append(kept, f)
		}
	}
	w.faults = kept
}

func (w *world) faultActive(kind string, now time.Time) bool {
	for _, f := range w.faults {
		if f.kind == kind && now.Before(f.until) {
			return true
		}
	}
	return false
}

func (w *world) periodic(a *app) {
	_, err, sf := a.request(logical.RollbackOperation, "", nil)
	if err != nil && !sf && !isCoded(err) {
		w.report(invNoInternalError, "periodic", "app%d periodic function failed: %v", a.idx, err)
	}
}

// do performs one action.
func (w *world) do(act Action) {
	a := w.apps[act.App]
	now := w.now()
	if strings.HasPrefix(act.Kind, faultPrefix) {
		w.startFault(act, now)
		return
	}
	switch act.Kind {
	case actRead:
		w.read(a, act.Role)
	case actReadBurst:
		for n := 0; n < act.N; n++ {
			w.read(a, act.Role)
			w.clock.Advance(time.Second)
		}
	case actPeriodicNow:
		w.periodic(a)
	case actConcurrent:
		w.concurrent(a, act)
	case actAPI:
		w.api(a, act)
	case actOnboard, actRestartStorm, actLease:
		w.storm(a, act)
	default:
		w.operate(a, act)
	}
}

// read reads token/<role> and checks the answer.
func (w *world) read(a *app, name string) { w.readWith(a, name, nil, false) }

// readWith reads token/<name> with the request's fields (a generated action's; invalid:
// one of them is a value the README refuses, so the read must fail).
func (w *world) readWith(a *app, name string, data map[string]any, invalid bool) {
	w.mu.Lock()
	model := a.readModel(name) // under the lock: the other action of a pair may write the role
	k := a.key(model.key())
	now := w.now()
	a.readStarted(k, now)
	failedBefore := k.everFetch && !k.lastOK && k.lastAt.After(k.resetAt) && k.inFlight == 0
	dropsBefore := w.dropsDone
	exp := w.expectAtOnce(a, model, now)
	pairBefore := w.pairActive
	w.mu.Unlock()
	start, restarts := w.now(), a.restarts.Load()
	resp, err, sf := a.request(logical.ReadOperation, "token/"+name, data)
	a.backend().WaitIdle()
	// A read whose backend was shut down under it (a concurrent restart) may fail; its
	// failure is excused like a storage failure's.
	excused := sf || a.restarts.Load() != restarts || invalid
	if invalid && err == nil && resp != nil && !resp.IsError() {
		w.report(invBadInput, "read "+name, "app%d read token/%s with %v was served; the README refuses one of its values", a.idx, name, data)
	}
	w.mu.Lock()
	concurrent := pairBefore || w.pairActive
	w.mu.Unlock()
	w.checkRead(a, name, model, failedBefore, start, dropsBefore, resp, err, excused)
	if err != nil || resp == nil || resp.IsError() {
		if !excused {
			w.checkOldAddress(a, name, model, errText(resp, err))
		}
		return
	}
	tok, _ := resp.Data["access_token"].(string)
	if !excused {
		w.checkServedAtOnce(a, name, model, exp, tok)
	}
	w.mu.Lock()
	iss := w.issued[tok]
	lost := w.lostTokens[tok]
	var c issuedToken
	if iss != nil {
		c = *iss
	}
	if resp.Secret != nil {
		a.lastServed = resp
	}
	w.mu.Unlock()
	if iss != nil && !concurrent && !lost {
		w.checkServedAlive(a, name, model, &c, dropsBefore, start, resp)
	}
}

// startFault starts one of Naver's or storage's faults.
func (w *world) startFault(act Action, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.Faults[act.Kind]++
	if act.Kind == faultBurst {
		for n := 0; n < act.N; n++ {
			w.burst = append(w.burst, act.S)
		}
		return
	}
	w.faults = append(w.faults, activeFault{kind: act.Kind, app: act.App, until: now.Add(act.D), a: act})
	switch act.Kind {
	case faultReused:
		w.emu.SetReusedTokenFullLifetime(true)
	case faultJWT:
		w.emu.SetJWTTokens(true)
	case faultLifetime:
		w.emu.SetTokenLifetime(time.Duration(act.N) * time.Second)
	}
}
