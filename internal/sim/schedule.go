package sim

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"
)

// An Action is one thing that happens in a simulated world at a moment of its clock: a
// token read, an operator's request, a fault of Naver or of storage, a restart. A seed
// expands to a schedule of actions; shrinking a failure removes actions from it.
type Action struct {
	At   time.Duration // since the start of the run
	Kind string
	App  int
	Role string
	// N, D, S and B are the action's parameters; what they mean depends on Kind.
	N int
	D time.Duration
	S string
	B bool
	// Concurrent actions: Then runs while this one waits at the gate named by Gate
	// ("get:tokens/", "get:roles/<name>", "put:tokens/", "list:roles/", "send:" before a
	// request reaches Naver, "net:" after its answer), after Skip earlier hits. First, when
	// set, is the action that waits (a generated pair); otherwise S names its kind.
	Then  *Action
	First *Action
	Gate  string
	Skip  int
	// Params and Args are a generated API action's path parameters and fields (actAPI).
	Params map[string]string
	Args   map[string]any
}

func (a Action) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s app%d %s", fmtOffset(a.At), a.App, a.Kind)
	if a.Role != "" {
		fmt.Fprintf(&b, " role=%s", a.Role)
	}
	if a.N != 0 {
		fmt.Fprintf(&b, " n=%d", a.N)
	}
	if a.D != 0 {
		fmt.Fprintf(&b, " d=%s", a.D)
	}
	if a.S != "" {
		fmt.Fprintf(&b, " s=%s", a.S)
	}
	if a.B {
		b.WriteString(" b=true")
	}
	for _, k := range sortedKeys(a.Params) {
		fmt.Fprintf(&b, " {%s}=%s", k, a.Params[k])
	}
	for _, k := range sortedKeys(a.Args) {
		fmt.Fprintf(&b, " %s=%v", k, a.Args[k])
	}
	if a.First != nil {
		f := *a.First
		f.At = a.At
		fmt.Fprintf(&b, " [%s]", strings.TrimPrefix(f.String(), fmtOffset(a.At)+" "))
	}
	if a.Then != nil {
		t := *a.Then
		t.At = a.At
		fmt.Fprintf(&b, " | at gate %s (skip %d): %s", a.Gate, a.Skip, strings.TrimPrefix(t.String(), fmtOffset(a.At)+" "))
	}
	return b.String()
}

func fmtOffset(d time.Duration) string {
	day := d / (24 * time.Hour)
	d -= day * 24 * time.Hour
	return fmt.Sprintf("d%d+%02d:%02d:%02d", day, d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second)
}

// Action kinds. Reads and operator requests go through the backend as Vault would send
// them; faults change the emulator or the storage under the backend for a while.
const (
	actRead        = "read"         // token/<role>
	actReadBurst   = "read-burst"   // N reads of token/<role>, one a second (a retrying app)
	actRoleCreate  = "role-create"  // S: account ("" = SELF); N: ttl seconds; B: lease=false
	actRoleAccount = "role-account" // switch the role to account S ("" = SELF)
	actRoleTTL     = "role-ttl"     // ttl=N seconds
	actRoleLease   = "role-lease"   // lease=!B
	actRoleDelete  = "role-delete"
	actRoleDamage  = "role-damage"             // an entry this plugin cannot read: S = "future" or "garbage"
	actDrop        = "token-drop"              // DELETE token/<role>; B: the token is dead at Naver first (a seller re-authorised)
	actDropRestart = "token-drop-then-restart" // a drop, and the plugin restarts before the next read
	actRestartDrop = "restart-then-token-drop" // a restart, and a drop before the next read
	actRotate      = "rotate"                  // the secret is re-issued at Naver, then written to config
	actConfigTune  = "config-tune"             // rewrite fields other than the credentials (S names them)
	actBaseURL     = "config-base-url-cosmetic"
	actConfigDel   = "config-delete"
	actConfigNew   = "config-create" // B: verify_connection
	actInvalidate  = "invalidate"    // S: config, role or token
	actRestart     = "restart"       // a new backend over the same storage
	actStatus      = "status"        // an operator reads status, status/<role> and metrics

	faultOutage    = "fault-outage"   // S: 5xx, 429, 429-retry-after or stall, for D
	faultBurst     = "fault-burst"    // the next N token requests answer S
	faultLatency   = "fault-latency"  // every request takes N ms (B: random up to N) for D
	faultReused    = "fault-reused"   // reused-token mode (expires_in 10800 on a handed-back token) for D
	faultJWT       = "fault-jwt"      // JWT tokens with exp, for D
	faultLifetime  = "fault-lifetime" // Naver issues tokens living N seconds, for D
	faultStorage   = "fault-storage"  // storage ops S fail one in N, for D
	actConcurrent  = "concurrent"     // this action, with Then at its Gate
	actPeriodicNow = "periodic-extra" // an extra periodic run (Vault may run it late or twice)
	faultPrefix    = "fault-"
)

// generate expands a seed into a schedule.
func generate(seed uint64, p Params) []Action {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	horizon := time.Duration(p.Days * float64(24*time.Hour))
	var acts []Action
	add := func(a Action) {
		if a.At < horizon {
			acts = append(acts, a)
		}
	}
	exp := func(mean time.Duration) time.Duration {
		return time.Duration(rng.ExpFloat64() * float64(mean))
	}
	readScale := 1.0
	if p.ReadScale > 0 {
		readScale = p.ReadScale
	}
	// reads adds the reads of one reader of token/<name>: active spells (an app at work)
	// separated by idle hours.
	reads := func(app int, name string) {
		t := exp(time.Hour)
		for t < horizon {
			spell := exp(4 * time.Hour)
			every := []time.Duration{2 * time.Minute, 10 * time.Minute, 45 * time.Minute}[rng.IntN(3)]
			every = time.Duration(float64(every) * readScale)
			for end := t + spell; t < end && t < horizon; t += time.Second + exp(every) {
				add(Action{At: t, Kind: actRead, App: app, Role: name})
			}
			t += exp([]time.Duration{30 * time.Minute, 3 * time.Hour, 14 * time.Hour}[rng.IntN(3)])
		}
	}
	account := func(app int) string {
		if rng.IntN(5) == 0 {
			return ""
		}
		return accountID(app, rng.IntN(p.Accounts))
	}
	for app := 0; app < p.Apps; app++ {
		add(Action{At: 0, Kind: actConfigNew, App: app, B: rng.IntN(2) == 0})
		for r := 0; r < p.RolesPerApp; r++ {
			name := roleName(r)
			add(Action{At: exp(20 * time.Minute), Kind: actRoleCreate, App: app, Role: name, S: account(app), N: ttlChoice(rng), B: rng.IntN(4) == 0})
			reads(app, name)
		}
		// Operators, about every 3 hours per application.
		for t := exp(3 * time.Hour); t < horizon; t += exp(3 * time.Hour) {
			op := operatorAction(rng, p, app, t, account)
			add(op)
			if op.Kind == actConfigDel && p.ConfigBack > 0 {
				add(Action{At: t + exp(p.ConfigBack), Kind: actConfigNew, App: app, B: rng.IntN(2) == 0})
			}
		}
		if p.ManySellers > 0 {
			// The many-seller role is created at once, each of its sellers read like a role.
			add(Action{At: 0, Kind: actRoleCreate, App: app, Role: sellersRole, N: ttlChoice(rng), B: rng.IntN(4) == 0})
			for i := 0; i < p.ManySellers; i++ {
				reads(app, sellerPath(app, i))
			}
			// Its operators: a seller's token dropped (as often per seller as an operator
			// acts on a single-account role), and about twice a day the role itself: its
			// ttl or lease changed, or deleted and re-created within the hour.
			every := time.Duration(float64(3*time.Hour) * float64(p.RolesPerApp) / float64(p.ManySellers))
			for t := exp(every); t < horizon; t += exp(every) {
				add(Action{At: t, Kind: actDrop, App: app, Role: sellerPath(app, rng.IntN(p.ManySellers)), B: rng.IntN(2) == 0})
			}
			for t := exp(12 * time.Hour); t < horizon; t += exp(12 * time.Hour) {
				a := Action{At: t, App: app, Role: sellersRole}
				switch rng.IntN(3) {
				case 0:
					a.Kind, a.N = actRoleTTL, ttlChoice(rng)
				case 1:
					a.Kind, a.B = actRoleLease, rng.IntN(2) == 0
				default:
					a.Kind = actRoleDelete
					add(Action{At: t + exp(20*time.Minute), Kind: actRoleCreate, App: app, Role: sellersRole, N: ttlChoice(rng), B: rng.IntN(4) == 0})
				}
				add(a)
			}
		}
	}
	// Naver's and storage's faults, about every 4 hours.
	for t := exp(4 * time.Hour); t < horizon; t += exp(4 * time.Hour) {
		add(faultAction(rng, p, t))
	}
	// The alphabet's actions come from a stream of their own: the workload above is the
	// same schedule it was before the alphabet.
	acts = append(acts, generateAlphabet(seed, p)...)
	sort.SliceStable(acts, func(i, j int) bool { return acts[i].At < acts[j].At })
	return acts
}

func ttlChoice(rng *rand.Rand) int {
	return []int{0, 0, 0, 5, 60, 3600}[rng.IntN(6)]
}

func roleName(i int) string { return fmt.Sprintf("r%d", i) }

// sellersRole is the many-seller role's name; its sellers are read as sellers/<account>.
const sellersRole = "sellers"

// manySellerID is the account of the many-seller role's i-th seller (distinct from the
// single-account roles' sellers, matched by the role's glob).
func manySellerID(app, i int) string { return fmt.Sprintf("ncp_app%d_many%d", app, i) }

func sellerPath(app, i int) string { return sellersRole + "/" + manySellerID(app, i) }

func accountID(app, i int) string { return fmt.Sprintf("ncp_app%d_seller%d", app, i) }

func operatorAction(rng *rand.Rand, p Params, app int, t time.Duration, account func(int) string) Action {
	role := roleName(rng.IntN(p.RolesPerApp))
	a := Action{At: t, App: app, Role: role}
	switch n := rng.IntN(100); {
	case n < 10:
		a.Kind, a.S, a.N, a.B = actRoleCreate, account(app), ttlChoice(rng), rng.IntN(4) == 0
	case n < 22:
		a.Kind, a.S = actRoleAccount, account(app)
	case n < 27:
		a.Kind, a.N = actRoleTTL, ttlChoice(rng)
	case n < 30:
		a.Kind, a.B = actRoleLease, rng.IntN(2) == 0
	case n < 40:
		a.Kind = actRoleDelete
	case n < 42:
		a.Kind, a.S = actRoleDamage, []string{"future", "garbage"}[rng.IntN(2)]
	case n < 50:
		a.Kind, a.B = actDrop, rng.IntN(2) == 0
	case n < 52:
		a.Kind, a.B = actDropRestart, rng.IntN(2) == 0
	case n < 54:
		a.Kind, a.B = actRestartDrop, rng.IntN(2) == 0
	case n < 58:
		a.Kind = actRotate
	case n < 64:
		a.Kind, a.S = actConfigTune, []string{"background_refresh", "max_retries", "max_token_requests_per_hour", "request_timeout"}[rng.IntN(4)]
		a.N = rng.IntN(3)
	case n < 66:
		a.Kind = actBaseURL
	case n < 69:
		a.Kind = actConfigDel
	case n < 73:
		a.Kind, a.B = actConfigNew, rng.IntN(2) == 0
	case n < 78:
		a.Kind, a.S = actInvalidate, []string{"config", "role", "token"}[rng.IntN(3)]
	case n < 86:
		a.Kind = actRestart
	case n < 90:
		a.Kind = actStatus
	default:
		return concurrentAction(rng, p, app, t, account)
	}
	return a
}

// concurrentAction pairs two requests so that the second runs while the first waits at a
// storage or network gate: the interleavings a review finds by hand.
func concurrentAction(rng *rand.Rand, p Params, app int, t time.Duration, account func(int) string) Action {
	role := roleName(rng.IntN(p.RolesPerApp))
	first := Action{At: t, Kind: actConcurrent, App: app, Role: role, Skip: rng.IntN(2)}
	switch rng.IntN(6) {
	case 0: // after a restart, a read loads the stored token while the operator drops it (dead at Naver)
		first.S, first.Gate = actRead, "get:tokens/"
		first.Then = &Action{Kind: actDrop, App: app, Role: role, B: true}
	case 1: // a read is at Naver while its role is deleted
		first.S, first.Gate = actRead, "net:"
		first.Then = &Action{Kind: actRoleDelete, App: app, Role: role}
	case 2: // two writes to one role: an account switch races a ttl change
		first.S, first.Gate = actRoleAccount, "get:roles/"+role
		first.N = rng.IntN(p.Accounts)
		first.Then = &Action{Kind: actRoleTTL, App: app, Role: role, N: ttlChoice(rng)}
	case 3: // a read loads the stored token while the plugin restarts (a restart while a
		// request is at Naver is not in the mix: the token Naver issued is lost with the
		// process, and the next request is needless whatever the plugin does)
		first.S, first.Gate = actRead, "get:tokens/"
		first.Then = &Action{Kind: actRestart, App: app}
	case 4: // after a restart, the periodic run loads tokens from storage while the operator drops one
		first.S, first.Gate = actPeriodicNow, "get:tokens/"
		first.Then = &Action{Kind: actDrop, App: app, Role: role, B: true}
	default: // a read is at Naver while its role switches account
		first.S, first.Gate = actRead, "net:"
		first.Then = &Action{Kind: actRoleAccount, App: app, Role: role, S: account(app)}
	}
	return first
}

func faultAction(rng *rand.Rand, p Params, t time.Duration) Action {
	a := Action{At: t, App: rng.IntN(p.Apps)}
	dur := []time.Duration{2 * time.Minute, 20 * time.Minute, 90 * time.Minute, 5 * time.Hour}[rng.IntN(4)]
	switch n := rng.IntN(100); {
	case n < 25:
		a.Kind, a.D, a.S = faultOutage, dur, []string{"5xx", "429", "429-retry-after", "stall"}[rng.IntN(4)]
	case n < 40:
		a.Kind, a.N, a.S = faultBurst, 1+rng.IntN(8), []string{"500", "503", "429", "429-retry-after"}[rng.IntN(4)]
	case n < 52:
		a.Kind, a.D, a.N, a.B = faultLatency, dur, []int{300, 3000, 9000, 20000}[rng.IntN(4)], rng.IntN(2) == 0
	case n < 67:
		a.Kind, a.D = faultReused, 3*dur
	case n < 75:
		a.Kind, a.D = faultJWT, 3*dur
	case n < 86:
		a.Kind, a.D, a.N = faultLifetime, dur, []int{4, 20 * 60}[rng.IntN(2)]
	default:
		a.Kind, a.D, a.N = faultStorage, min(dur, 20*time.Minute), 2+rng.IntN(6)
		a.S = []string{"put", "get", "delete", "put,get,delete,list"}[rng.IntN(4)]
	}
	return a
}
