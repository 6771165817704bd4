package sim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// The alphabet reaches every operation the backend declares: the generator draws each,
// with values for every path parameter, and the backend routes each (no "unsupported path
// or operation"). A path or operation the backend gains fails this test until the
// generator can make actions of it.
func TestAlphabetCoversTheAPI(t *testing.T) {
	ops, err := declaredOps()
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) < 16 {
		t.Fatalf("the OpenAPI document declares %d operations; want at least the 16 the README lists", len(ops))
	}
	g := &alphabetGen{rng: rand.New(rand.NewPCG(1, 2)), p: DefaultParams(), app: 0, ops: ops}
	drawn := map[string]int{}
	for i := 0; i < 20000; i++ {
		drawn[g.apiAction(0, "", i%10 == 0).S]++
	}
	var unknownFields []string
	for _, o := range ops {
		if drawn[o.ID] == 0 {
			t.Errorf("%s %s (%s): the generator never draws it", o.Method, o.Path, o.ID)
		}
		for _, p := range o.Params {
			if _, ok := domainOf(o, p, true); !ok {
				t.Errorf("%s %s: path parameter {%s} has no values (fieldDomains[%q])", o.Method, o.Path, p, "param "+p)
			}
		}
		for f := range o.Fields {
			if _, ok := domainOf(o, f, false); !ok {
				unknownFields = append(unknownFields, o.ID+" "+f)
			}
		}
	}
	sort.Strings(unknownFields)
	if len(unknownFields) > 0 {
		// Drawn by their schema's type: reached, but with values that may mean little.
		t.Logf("fields drawn by type only (give them a domain in fieldDomains): %v", unknownFields)
	}

	// Every operation is routed: a valid action of each runs on a configured mount.
	w := newWorld(1, Params{Days: 1, Apps: 1, RolesPerApp: 2, Accounts: 2, Alphabet: 1})
	a := w.apps[0]
	w.do(Action{Kind: actConfigNew, App: 0})
	w.do(Action{Kind: actRoleCreate, App: 0, Role: roleName(0), S: accountID(0, 0)})
	w.ensureManyRole(a, sellersRole)
	for _, o := range ops {
		act := g.apiActionOf(o, 0, roleName(0), false)
		if _, ok := act.Params["account_id"]; ok {
			act.Params["name"], act.Params["account_id"] = sellersRole, manySellerID(0, 1)
		}
		data := map[string]any{}
		for k, v := range act.Args {
			data[k] = w.resolve(a, v)
		}
		_, err, _ := a.request(o.Op, o.requestPath(act.Params), data)
		if errors.Is(err, logical.ErrUnsupportedPath) || errors.Is(err, logical.ErrUnsupportedOperation) {
			t.Errorf("%s %s → %s: %v", o.Method, o.requestPath(act.Params), o.Op, err)
		}
	}
	a.backend().Cleanup(context.Background())
}

// Every pair of pairKinds at every gate can be drawn: the pairs are generated, not picked.
func TestEveryPairCanBeDrawn(t *testing.T) {
	kinds, gs := pairKinds(), gates()
	if want := len(mustDeclaredOps()) + 3; len(kinds) != want {
		t.Errorf("%d kinds of pair member, want every declared operation and restart, periodic, invalidate (%d)", len(kinds), want)
	}
	if want := len(storageOps)*len(storagePrefixes) + 2; len(gs) != want {
		t.Errorf("%d gates, want %d: every storage operation on every prefix, send and net", len(gs), want)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	seen := map[string]bool{}
	for i := 0; i < 200000; i++ {
		f, gate, s := drawPair(rng, kinds, gs)
		seen[f+" @"+gate+" "+s] = true
	}
	if want := len(kinds) * len(gs) * len(kinds); len(seen) != want {
		t.Errorf("%d of %d pairs drawn", len(seen), want)
	}
	// The pairs made of them hold their first action at the gate, the second to run there.
	g := &alphabetGen{rng: rand.New(rand.NewPCG(5, 6)), p: DefaultParams(), app: 0, ops: mustDeclaredOps()}
	member := map[string]bool{}
	for _, k := range kinds {
		member[k] = true
	}
	for i := 0; i < 300; i++ {
		p := g.pair(0)
		for _, m := range []*Action{p.First, p.Then} {
			k := m.Kind
			if k == actAPI {
				k = actAPI + ":" + m.S
			}
			if !member[k] {
				t.Fatalf("pair member %s is not a pair kind", m)
			}
		}
	}
}

// Every storage operation fails on every prefix somewhere in the alphabet's faults.
func TestStorageFaultsCoverEveryOperationAndPrefix(t *testing.T) {
	g := &alphabetGen{rng: rand.New(rand.NewPCG(5, 6)), p: DefaultParams(), app: 0, ops: mustDeclaredOps()}
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		seen[g.storageFault(0, storagePrefixes).S] = true
	}
	for _, op := range storageOps {
		for _, p := range storagePrefixes {
			if !seen[op+"@"+p] {
				t.Errorf("no storage fault of %s on %s", op, p)
			}
		}
	}
}

// The backend keeps everything under the prefixes the alphabet fails and gates: a prefix it
// gains fails this test until storagePrefixes names it.
func TestStoragePrefixesAreKnown(t *testing.T) {
	p := DefaultParams()
	p.Days = 0.25
	_, w := runWorld(7, p, generate(7, p))
	for _, a := range w.apps {
		keys, err := logical.CollectKeys(context.Background(), a.storage)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys {
			known := false
			for _, prefix := range storagePrefixes {
				known = known || strings.HasPrefix(k, prefix)
			}
			if !known {
				t.Errorf("app%d stores %q, under no prefix of storagePrefixes %v", a.idx, k, storagePrefixes)
			}
		}
	}
}

// A seed's workload is the schedule it was before the alphabet: the alphabet's actions come
// from a stream of their own, so the corpus's seeds keep what they found.
func TestAlphabetLeavesTheWorkloadAlone(t *testing.T) {
	p := DefaultParams()
	p.Days = 1
	with := generate(11, p)
	p.Alphabet = 0
	without := generate(11, p)
	i := 0
	for _, a := range with {
		if i < len(without) && a.String() == without[i].String() {
			i++
		}
	}
	if i != len(without) {
		t.Errorf("the workload's action %d (%s) is not in the schedule with the alphabet", i, without[i])
	}
	if len(with) <= len(without) {
		t.Errorf("the alphabet added no action (%d, %d)", len(with), len(without))
	}
}

// Generated values are resolved as the world is when the action runs, and the secrets among
// them are watched for in every answer and log.
func TestResolveSymbols(t *testing.T) {
	w := newWorld(1, DefaultParams())
	a := w.apps[0]
	for _, tc := range []struct {
		in   any
		want string
	}{
		{symClient, a.clientID},
		{symSecret, a.secret},
		{"$base/", baseURL + "/"},
		{symUnreachable, unreachableURL},
		{42, "42"},
	} {
		if got := fmt.Sprint(w.resolve(a, tc.in)); got != tc.want {
			t.Errorf("resolve(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if proxy := fmt.Sprint(w.resolve(a, symProxy)); !w.secrets[w.proxyPassword(a)] || !strings.Contains(proxy, w.proxyPassword(a)) {
		t.Errorf("the proxy's password is not watched for as a secret (%s)", proxy)
	}
	if s := w.wrongSecret(a); !w.secrets[s] || s == a.secret {
		t.Errorf("the wrong secret is not a secret of its own")
	}
}
