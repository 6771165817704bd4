package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// The alphabet's share of a schedule (Params.Alphabet): drawn from the operations the
// backend declares (alphabet.go), the storage operations and prefixes it uses, and the
// gates where one operation can be held while another runs. It has an RNG stream of its
// own, so a seed's workload (schedule.go) stays the schedule it was before.

// Action kinds of the alphabet.
const (
	actAPI          = "api"           // S: an operation ID; Params, Args; B: one value is invalid
	actOnboard      = "onboard-storm" // N reads of new accounts through role Role, one every D; S: pool, guess or mixed
	actRestartStorm = "restart-storm" // N times: a restart, then a read of a new seller; one every D
	actLease        = "lease"         // B: renew, else revoke, the lease of the last token read
)

// alphabetPool is how many sellers of the many-seller pool authorised each application
// when the alphabet runs (onboarding and restart storms read them).
const alphabetPool = 40

// Storage prefixes the backend keeps its entries under, and the operations on them; a
// storage failure or a gate is one operation on one prefix (TestStoragePrefixesAreKnown
// fails if the backend writes under another).
var (
	storagePrefixes = []string{"config", "roles/", "tokens/", "applications/"}
	storageOps      = []string{"get", "put", "delete", "list"}
)

// gates lists every point where a concurrent action can hold its first request: each
// storage operation on each prefix, on the way to Naver (send) and on the way back (net).
func gates() []string {
	var out []string
	for _, op := range storageOps {
		for _, p := range storagePrefixes {
			out = append(out, op+":"+p)
		}
	}
	return append(out, "send:", "net:")
}

// pairKinds are the kinds of action a concurrent pair is made of: every declared
// operation, and the entry points that are not API paths (a restart, Vault's periodic
// call, an invalidation from another node).
func pairKinds() []string {
	var out []string
	for _, o := range mustDeclaredOps() {
		out = append(out, actAPI+":"+o.ID)
	}
	return append(out, actRestart, actPeriodicNow, actInvalidate)
}

// alphabetGen draws the alphabet's actions for one application.
type alphabetGen struct {
	rng *rand.Rand
	p   Params
	app int
	ops []apiOp
}

// generateAlphabet draws the alphabet's actions of a run.
func generateAlphabet(seed uint64, p Params) []Action {
	if p.Alphabet <= 0 {
		return nil
	}
	horizon := time.Duration(p.Days * float64(24*time.Hour))
	var acts []Action
	for app := 0; app < p.Apps; app++ {
		g := &alphabetGen{rng: rand.New(rand.NewPCG(seed, 0xa1fa+uint64(app))), p: p, app: app, ops: mustDeclaredOps()}
		every := time.Duration(float64(time.Hour) / p.Alphabet)
		for t := g.exp(every); t < horizon; t += g.exp(every) {
			for _, a := range g.event(t) {
				if a.At < horizon {
					acts = append(acts, a)
				}
			}
		}
	}
	return acts
}

func (g *alphabetGen) exp(mean time.Duration) time.Duration {
	return time.Duration(g.rng.ExpFloat64() * float64(mean))
}

// event draws one event at t: one or more actions.
func (g *alphabetGen) event(t time.Duration) []Action {
	switch n := g.rng.IntN(100); {
	case n < 34:
		return g.restore(g.apiAction(t, "", g.rng.IntN(10) == 0))
	case n < 46:
		return g.episode(t)
	case n < 52:
		return g.flap(t)
	case n < 72:
		p := g.pair(t)
		out := []Action{p}
		// A delete in a pair is followed by its re-creation, as elsewhere.
		for _, m := range []*Action{p.First, p.Then} {
			if r := g.restore(*m); len(r) > 1 {
				out = append(out, r[1:]...)
			}
		}
		return out
	case n < 80:
		return []Action{g.storageFault(t, storagePrefixes)}
	case n < 85:
		return g.retryAfterStorm(t)
	case n < 88:
		return []Action{g.onboard(t)}
	case n < 90:
		return []Action{g.restartStorm(t)}
	default:
		return []Action{{At: t, Kind: actLease, App: g.app, B: g.rng.IntN(2) == 0}}
	}
}

// opWeight makes token reads and writes more frequent than the operator's reads: what
// apps do most, and what changes state.
func opWeight(o apiOp) int {
	switch {
	case strings.HasPrefix(o.Path, "/token/") && o.Op == logical.ReadOperation:
		return 6
	case o.Op == logical.DeleteOperation && !strings.HasPrefix(o.Path, "/token/"):
		return 1
	case o.mutates():
		return 3
	}
	return 1
}

// pickOp draws a declared operation by opWeight.
func (g *alphabetGen) pickOp() apiOp {
	total := 0
	for _, o := range g.ops {
		total += opWeight(o)
	}
	n := g.rng.IntN(total)
	for _, o := range g.ops {
		if n -= opWeight(o); n < 0 {
			return o
		}
	}
	return g.ops[len(g.ops)-1]
}

// apiAction draws one API action at t; role, when set, is the {name} of its path.
func (g *alphabetGen) apiAction(t time.Duration, role string, invalid bool) Action {
	return g.apiActionOf(g.pickOp(), t, role, invalid)
}

func (g *alphabetGen) apiActionOf(op apiOp, t time.Duration, role string, invalid bool) Action {
	params, args := apiArgs(g.rng, op, invalid)
	for k, v := range params {
		params[k] = fmt.Sprint(g.value(v))
	}
	for k, v := range args {
		args[k] = g.value(v)
	}
	if _, ok := params["name"]; ok && role != "" && params["name"] != "bad name!" {
		params["name"] = role
	}
	if op.Path == "/config" && op.Method == "post" && !invalid {
		completeConfigWrite(g.rng, args)
	}
	return Action{At: t, Kind: actAPI, App: g.app, S: op.ID, Role: params["name"], Params: params, Args: args, B: invalid}
}

// completeConfigWrite: a change of base_url takes client_secret in the same write (README);
// a generated write usually says so, and usually verifies it.
func completeConfigWrite(rng *rand.Rand, args map[string]any) {
	if _, ok := args["base_url"]; ok && rng.IntN(5) != 0 {
		if _, has := args["client_secret"]; !has {
			args["client_secret"] = symSecret
		}
	}
	if _, ok := args["client_secret"]; ok && rng.IntN(4) == 0 {
		args["client_id"] = symClient
	}
}

// value resolves the symbols of a generated value that depend only on the application
// (role names, accounts); those that depend on the world (secrets, the client ID, base
// URLs) are resolved when the action runs (world.resolve).
func (g *alphabetGen) value(v any) any {
	s, ok := v.(string)
	if !ok || !strings.Contains(s, "$") {
		return v
	}
	pool := g.p.sellerPool()
	repl := map[string]func() string{
		"$many-glob": func() string { return fmt.Sprintf("ncp_app%d_many*", g.app) },
		"$many-list": func() string {
			return manySellerID(g.app, g.rng.IntN(pool)) + "," + manySellerID(g.app, g.rng.IntN(pool))
		},
		"$many-role": func() string { return sellersRole },
		"$wild-role": func() string { return wildRole },
		"$role":      func() string { return roleName(g.rng.IntN(g.p.RolesPerApp)) },
		"$many":      func() string { return manySellerID(g.app, g.rng.IntN(pool)) },
		"$guess":     func() string { return guessID(g.app, g.rng.IntN(1000)) },
		"$seller":    func() string { return accountID(g.app, g.rng.IntN(max(g.p.Accounts, 1))) },
	}
	for _, sym := range []string{"$many-glob", "$many-list", "$many-role", "$wild-role", "$role", "$many", "$guess", "$seller"} {
		if i := strings.Index(s, sym); i >= 0 { // only then draw: a draw moves the seed's sequence
			s = s[:i] + repl[sym]() + s[i+len(sym):]
		}
	}
	return s
}

// wildRole is a many-seller role the alphabet may make allow every seller ("*").
const wildRole = "any"

// guessID is an account that never authorised application app: Naver refuses it.
func guessID(app, i int) string { return fmt.Sprintf("ncp_app%d_manyguess%d", app, i) }

// episode draws a few actions on one role within minutes, perhaps beginning with a fault:
// the steps a situation of several operations needs happen close enough together to meet.
func (g *alphabetGen) episode(t time.Duration) []Action {
	roles := []string{sellersRole, wildRole}
	for i := 0; i < g.p.RolesPerApp; i++ {
		roles = append(roles, roleName(i))
	}
	role := roles[g.rng.IntN(len(roles))]
	var acts []Action
	switch g.rng.IntN(4) {
	case 0, 1:
		// The storage of what the episode acts on: its role, and its key's token.
		acts = append(acts, g.storageFault(t, []string{"roles/", "tokens/"}))
	case 2:
		a := faultAction(g.rng, g.p, t)
		a.App = g.app
		if a.Kind == faultStorage {
			a = g.storageFault(t, []string{"roles/", "tokens/"})
		}
		a.D = min(a.D, 20*time.Minute)
		acts = append(acts, a)
	}
	// The operations on one role: those whose path names it, drawn alike.
	var onRole []apiOp
	for _, o := range g.ops {
		if slices.Contains(o.Params, "name") {
			onRole = append(onRole, o)
		}
	}
	n := 3 + g.rng.IntN(6)
	for i := 0; i < n; i++ {
		t += time.Second + g.exp(2*time.Minute)
		switch g.rng.IntN(12) {
		case 0:
			acts = append(acts, Action{At: t, Kind: actRestart, App: g.app})
		case 1:
			acts = append(acts, Action{At: t, Kind: actPeriodicNow, App: g.app})
		default:
			op := onRole[g.rng.IntN(len(onRole))]
			acts = append(acts, g.restore(g.apiActionOf(op, t, role, g.rng.IntN(12) == 0))...)
		}
	}
	return acts
}

// restore follows a delete of the config or a role with its re-creation within the hour,
// as an operator (or Terraform's destroy-then-create) would: a run would otherwise spend
// most of its hours unconfigured, or without roles, and test little.
func (g *alphabetGen) restore(a Action) []Action {
	op, _ := opByID(a.S)
	if a.B || op.Op != logical.DeleteOperation {
		return []Action{a}
	}
	switch {
	case op.Path == "/config":
		return []Action{a, {At: a.At + time.Second + g.exp(10*time.Minute), Kind: actConfigNew, App: g.app, B: g.rng.IntN(2) == 0}}
	case strings.HasPrefix(op.Path, "/roles/") && g.rng.IntN(4) != 0:
		writeOp, _ := g.writeRoleOp()
		again := g.apiActionOf(writeOp, a.At+time.Second+g.exp(20*time.Minute), a.Params["name"], false)
		again.Args["type"] = "SELLER"
		if g.rng.IntN(5) == 0 {
			again.Args["type"], again.Args["account_id"] = "SELF", ""
			delete(again.Args, "allowed_account_ids")
		} else if _, many := again.Args["allowed_account_ids"]; !many || again.Args["allowed_account_ids"] == "" {
			again.Args["account_id"] = accountID(g.app, g.rng.IntN(max(g.p.Accounts, 1)))
			delete(again.Args, "allowed_account_ids")
		} else {
			again.Args["account_id"] = ""
		}
		return []Action{a, again}
	}
	return []Action{a}
}

// writeRoleOp is the declared operation that writes a role.
func (g *alphabetGen) writeRoleOp() (apiOp, bool) {
	for _, o := range g.ops {
		if o.Method == "post" && strings.HasPrefix(o.Path, "/roles/") {
			return o, true
		}
	}
	return apiOp{}, false
}

// pair draws two actions, the second run while the first waits at a gate: any two kinds
// of pairKinds at any gate, or (a third of the time) two reads of one key held on the way
// to Naver, where the single flight must make them share one request.
func (g *alphabetGen) pair(t time.Duration) Action {
	if g.rng.IntN(3) == 0 {
		op, _ := opByID(g.readOpID(g.rng.IntN(2) == 0))
		first := g.apiActionOf(op, t, "", false)
		second := first
		second.Params = map[string]string{}
		for k, v := range first.Params {
			second.Params[k] = v
		}
		return Action{At: t, Kind: actConcurrent, App: g.app, Role: first.Role, First: &first, Then: &second, Gate: "send:"}
	}
	kinds, gs := pairKinds(), gates()
	role := roleName(g.rng.IntN(g.p.RolesPerApp))
	if g.rng.IntN(3) == 0 {
		role = []string{sellersRole, wildRole}[g.rng.IntN(2)]
	}
	if g.rng.IntN(2) == 0 {
		// A read held on its way to Naver or back, while anything else runs: what a
		// request at Naver races is where tokens get lost (issue 25, items 2 and 7).
		seller := g.rng.IntN(3) == 0
		if seller {
			role = []string{sellersRole, wildRole}[g.rng.IntN(2)]
		}
		op, _ := opByID(g.readOpID(seller))
		first := g.apiActionOf(op, t, role, false)
		second := g.pairMember(kinds[g.rng.IntN(len(kinds))], t, role)
		return Action{At: t, Kind: actConcurrent, App: g.app, Role: role, First: &first, Then: &second, Gate: []string{"send:", "net:"}[g.rng.IntN(2)]}
	}
	f, gate, s := drawPair(g.rng, kinds, gs)
	first := g.pairMember(f, t, role)
	second := g.pairMember(s, t, role)
	return Action{At: t, Kind: actConcurrent, App: g.app, Role: role, First: &first, Then: &second, Gate: gate, Skip: g.rng.IntN(2)}
}

// drawPair draws a pair uniformly from every kind held at every gate while every kind runs.
func drawPair(rng *rand.Rand, kinds, gs []string) (first, gate, second string) {
	return kinds[rng.IntN(len(kinds))], gs[rng.IntN(len(gs))], kinds[rng.IntN(len(kinds))]
}

// flap writes one field of one write operation to one valid value, then to another, with
// reads in between and after: a setting changed and changed back (an address that does not
// answer, then the right one; a wrong secret, then the right one; a budget lowered, then
// raised; a role switched to another account and back).
func (g *alphabetGen) flap(t time.Duration) []Action {
	var writes []apiOp
	for _, o := range g.ops {
		if o.Method == "post" {
			writes = append(writes, o)
		}
	}
	op := writes[g.rng.IntN(len(writes))]
	type choice struct {
		field string
		d     domain
	}
	var fields []choice
	for _, name := range sortedKeys(op.Fields) {
		if d, ok := domainOf(op, name, false); ok && len(distinct(d.valid)) >= 2 {
			fields = append(fields, choice{name, d})
		}
	}
	if len(fields) == 0 {
		return nil
	}
	c := fields[g.rng.IntN(len(fields))]
	values := distinct(c.d.valid)
	i := g.rng.IntN(len(values))
	j := (i + 1 + g.rng.IntN(len(values)-1)) % len(values)
	role := roleName(g.rng.IntN(g.p.RolesPerApp))
	var acts []Action
	for _, v := range []any{values[i], values[j]} {
		w := g.apiActionOf(op, t, role, false)
		w.Args = map[string]any{c.field: g.value(v)}
		if op.Path == "/config" {
			w.Args["verify_connection"] = g.rng.IntN(2) == 0
			if c.field == "base_url" || c.field == "client_secret" {
				w.Args["client_secret"] = symSecret
				if c.field == "client_secret" {
					w.Args["client_secret"] = v
				}
			}
		}
		acts = append(acts, w)
		for n := 2 + g.rng.IntN(5); n > 0; n-- {
			t += time.Second + g.exp(time.Minute)
			acts = append(acts, Action{At: t, Kind: actRead, App: g.app, Role: roleName(g.rng.IntN(g.p.RolesPerApp))})
		}
		t += time.Second + g.exp(5*time.Minute)
	}
	return acts
}

// distinct returns the distinct values of vs, in order.
func distinct(vs []any) []any {
	var out []any
	seen := map[string]bool{}
	for _, v := range vs {
		k := fmt.Sprint(v)
		if !seen[k] {
			seen[k] = true
			out = append(out, v)
		}
	}
	return out
}

// readOpID is the ID of the token read of a role (seller: of one seller of a many-seller role).
func (g *alphabetGen) readOpID(seller bool) string {
	for _, o := range g.ops {
		if o.Op == logical.ReadOperation && strings.HasPrefix(o.Path, "/token/") && strings.Contains(o.Path, "{account_id}") == seller {
			return o.ID
		}
	}
	return ""
}

// pairMember makes an action of a pairKinds kind at t on role.
func (g *alphabetGen) pairMember(kind string, t time.Duration, role string) Action {
	if id, ok := strings.CutPrefix(kind, actAPI+":"); ok {
		op, _ := opByID(id)
		return g.apiActionOf(op, t, role, false)
	}
	a := Action{At: t, Kind: kind, App: g.app, Role: role}
	if kind == actInvalidate {
		a.S = []string{"config", "role", "token"}[g.rng.IntN(3)]
	}
	return a
}

// storageFault draws a failure of one storage operation on one of prefixes.
func (g *alphabetGen) storageFault(t time.Duration, prefixes []string) Action {
	op, prefix := storageOps[g.rng.IntN(len(storageOps))], prefixes[g.rng.IntN(len(prefixes))]
	return Action{At: t, Kind: faultStorage, App: g.app, S: op + "@" + prefix, N: 1 + g.rng.IntN(4),
		D: []time.Duration{2 * time.Minute, 5 * time.Minute, 20 * time.Minute}[g.rng.IntN(3)]}
}

// retryAfterStorm: Naver answers a few of the key's requests 429 with a Retry-After, and
// its app retries every second.
func (g *alphabetGen) retryAfterStorm(t time.Duration) []Action {
	role := roleName(g.rng.IntN(g.p.RolesPerApp))
	ra := []int{10, 45, 90, 200, 400}[g.rng.IntN(5)]
	return []Action{
		{At: t, Kind: faultBurst, App: g.app, N: 1 + g.rng.IntN(3), S: fmt.Sprintf("429-retry-after=%d", ra)},
		{At: t, Kind: actDrop, App: g.app, Role: role, N: 1, B: true},
		{At: t + time.Second, Kind: actReadBurst, App: g.app, Role: role, N: min(ra+30, 200)},
	}
}

// onboard: many reads of accounts new to the plugin through a many-seller role, quickly:
// sellers who authorised the application, guesses Naver refuses, or both.
func (g *alphabetGen) onboard(t time.Duration) Action {
	role := []string{sellersRole, wildRole}[g.rng.IntN(2)]
	return Action{At: t, Kind: actOnboard, App: g.app, Role: role, N: []int{15, 40, 80}[g.rng.IntN(3)],
		D: time.Duration(1+g.rng.IntN(3)) * time.Second, S: []string{"pool", "guess", "mixed"}[g.rng.IntN(3)], Skip: g.rng.IntN(1000)}
}

// restartStorm: a crash loop, each process reading one seller before it dies.
func (g *alphabetGen) restartStorm(t time.Duration) Action {
	return Action{At: t, Kind: actRestartStorm, App: g.app, Role: sellersRole, N: []int{10, 25, 60}[g.rng.IntN(3)],
		D: time.Duration(2+g.rng.IntN(3)) * time.Second, Skip: g.rng.IntN(alphabetPool)}
}
