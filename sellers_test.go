package navercommerce

// Issue 18 items 3 and 4: one role for many sellers, and operator views that scale.

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/core"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

func TestManySellerRoleWriteRules(t *testing.T) {
	env := newTestEnv(t)
	bad := []struct {
		name   string
		data   map[string]any
		naming []string
	}{
		{"both account_id and allowed_account_ids", map[string]any{"type": "SELLER", "account_id": "ncp_a", "allowed_account_ids": "ncp_*"}, []string{"account_id", "allowed_account_ids"}},
		{"SELF with allowed_account_ids", map[string]any{"type": "SELF", "allowed_account_ids": "ncp_*"}, []string{"allowed_account_ids"}},
		{"an entry with a space", map[string]any{"type": "SELLER", "allowed_account_ids": []string{"ncp_a", "ncp b"}}, []string{"allowed_account_ids", `"ncp b"`}},
		{"an entry too long", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_" + strings.Repeat("a", 200)}, []string{"allowed_account_ids", "128"}},
		{"too many entries", map[string]any{"type": "SELLER", "allowed_account_ids": manyIDs(maxAllowedAccountIDs + 1)}, []string{"allowed_account_ids", "at most"}},
		{"neither", map[string]any{"type": "SELLER", "allowed_account_ids": ""}, []string{"account_id or allowed_account_ids"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := env.write("roles/sellers", tt.data)
			msg := errorText(resp, err)
			if httpStatus(resp, err) != http.StatusBadRequest {
				t.Fatalf("want 400, got %d %q", httpStatus(resp, err), msg)
			}
			for _, n := range tt.naming {
				if !strings.Contains(msg, n) {
					t.Errorf("error %q does not name %s", msg, n)
				}
			}
			if entry, _ := env.storage.Get(context.Background(), "roles/sellers"); entry != nil {
				t.Fatal("a refused write stored a role")
			}
		})
	}

	// Sorted, without repeats; stored in format 2, which an older plugin refuses rather than
	// reading it as a SELLER role with no account.
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_b,ncp_a*,ncp_b"})
	want := map[string]any{"type": "SELLER", "account_id": "", "allowed_account_ids": []string{"ncp_a*", "ncp_b"}, "ttl": int64(0), "lease": true, "min_remaining_ttl": int64(0), "max_new_accounts_per_hour": 0}
	if r := env.mustRead("roles/sellers"); !reflect.DeepEqual(r.Data, want) {
		t.Errorf("role = %v, want %v", r.Data, want)
	}
	if f := env.storedFormat(roleStoragePrefix + "sellers"); f != float64(2) {
		t.Errorf("many-seller role stored in format %v, want 2", f)
	}
	// Switching to one account needs the list cleared explicitly, as SELF needs account_id cleared.
	resp, err := env.write("roles/sellers", map[string]any{"account_id": "ncp_one"})
	if msg := errorText(resp, err); !strings.Contains(msg, `allowed_account_ids=""`) {
		t.Errorf("switching to one account with the list set: %q", msg)
	}
	env.mustWrite("roles/sellers", map[string]any{"account_id": "ncp_one", "allowed_account_ids": ""})
	if f := env.storedFormat(roleStoragePrefix + "sellers"); f != float64(1) {
		t.Errorf("single-account role stored in format %v, want 1 (readable by older plugins)", f)
	}
}

func manyIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("ncp_%d", i)
	}
	return ids
}

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"*", "ncp_abc", true},
		{"ncp_*", "ncp_abc", true},
		{"ncp_*", "ncp_", true},
		{"ncp_*", "ncx_abc", false},
		{"*_abc", "ncp_abc", true},
		{"ncp_*_x*z", "ncp_1_xyz", true},
		{"ncp_*_x*z", "ncp_1_xy", false},
		{"a*a", "a", false},
		{"a*a", "aa", true},
		{"ncp_abc", "ncp_abc", true},
		{"ncp_abc", "ncp_abcd", false},
		{"ncp_?bc", "ncp_abc", false}, // only * is special
	}
	for _, tt := range tests {
		if got := core.GlobMatch(tt.pattern, tt.s); got != tt.want {
			t.Errorf("GlobMatch(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
	}
}

// One role serves many sellers; each seller's token is read at its own path, so a policy can
// grant one seller to one tenant. Accounts the role does not allow cost nothing at Naver.
func TestManySellerRoleReads(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_a*,ncp_exact", "ttl": "1h"})
	env.mustWrite("roles/one", map[string]any{"type": "SELLER", "account_id": "ncp_abc"})

	abc := env.readToken("sellers/ncp_abc")
	if abc.Data["account_id"] != "ncp_abc" || abc.Data["type"] != "SELLER" || abc.Secret == nil || abc.Secret.TTL != time.Hour {
		t.Errorf("token/sellers/ncp_abc: %v %+v", abc.Data, abc.Secret)
	}
	exact := env.readToken("sellers/ncp_exact")
	if exact.Data["access_token"] == abc.Data["access_token"] || env.requestsFor("SELLER", "ncp_abc") != 1 || env.requestsFor("SELLER", "ncp_exact") != 1 {
		t.Error("each seller must get its own token, with one request each")
	}
	// The single-account role of the same seller shares the cached token.
	if one := env.readToken("one"); one.Data["access_token"] != abc.Data["access_token"] || env.requestsFor("SELLER", "ncp_abc") != 1 {
		t.Error("a single-account role of the same seller did not share the token")
	}

	requests := env.naver.TokenRequests()
	refused := []struct {
		path   string
		naming []string
	}{
		{"token/sellers", []string{"serves many sellers", "token/sellers/<account_id>"}},
		{"token/sellers/", []string{"account_id is required"}},
		{"token/sellers/ncp_zzz", []string{`"ncp_zzz"`, "not one of the sellers"}},
		{"token/sellers/ncp a", []string{`"ncp a"`, "white space"}},
		{"token/sellers/ncp_a*", []string{`"ncp_a*"`, "not a pattern"}},
		{"token/sellers/ncp_abc/", []string{`"ncp_abc/"`, "without /"}},
		{"token/sellers/" + "ncp_a" + strings.Repeat("x", 130), []string{"account_id", "128"}},
		{"token/one/ncp_abc", []string{"serves one account", "token/one"}},
		{"token/nope/ncp_abc", []string{`role "nope" does not exist`}},
	}
	for _, tt := range refused {
		for _, op := range []logical.Operation{logical.ReadOperation, logical.DeleteOperation} {
			resp, err := env.request(env.b, op, tt.path, nil)
			msg := errorText(resp, err)
			if httpStatus(resp, err) != http.StatusBadRequest {
				t.Errorf("%s %s: want 400, got %d %q", op, tt.path, httpStatus(resp, err), msg)
				continue
			}
			for _, n := range tt.naming {
				if !strings.Contains(msg, n) {
					t.Errorf("%s %s: error %q does not say %q", op, tt.path, msg, n)
				}
			}
		}
	}
	if env.naver.TokenRequests() != requests {
		t.Error("a refused account reached Naver")
	}
	for _, k := range env.b.tokens.memoryKeys() {
		if a := k.AccountID; a != "ncp_abc" && a != "ncp_exact" && a != "" {
			t.Errorf("a refused account %q is kept in the cache", a)
		}
	}
	env.b.WaitIdle() // a read's token is stored after its answer
	if keys, _ := env.storage.List(context.Background(), tokenStoragePrefix); len(keys) != 3 {
		t.Errorf("stored tokens %v, want the SELF one and the two sellers'", keys)
	}

	// Status of one seller, and of the role as a whole.
	if s := env.mustRead("status/sellers/ncp_abc"); s.Data["cached"] != true || s.Data["account_id"] != "ncp_abc" ||
		!reflect.DeepEqual(s.Data["roles"], []string{"one", "sellers"}) {
		t.Errorf("status/sellers/ncp_abc: %v", s.Data)
	}
	if s, err := env.read("status/sellers/ncp_zzz"); httpStatus(s, err) != http.StatusBadRequest || !strings.Contains(errorText(s, err), "ncp_zzz") {
		t.Errorf("status of a disallowed seller: %d %q", httpStatus(s, err), errorText(s, err))
	}
	whole := env.mustRead("status/sellers")
	if whole.Data["known_keys"] != 2 || whole.Data["cached_keys"] != 2 || !reflect.DeepEqual(whole.Data["allowed_account_ids"], []string{"ncp_a*", "ncp_exact"}) ||
		len(whole.Warnings) != 1 || !strings.Contains(whole.Warnings[0], "status/sellers/<account_id>") {
		t.Errorf("status/sellers: %v %q", whole.Data, whole.Warnings)
	}
	if list := statusKeys(t, env.statusList(map[string]any{"role": "sellers"})); len(list) != 2 || list["SELLER|ncp_exact"] == nil {
		t.Errorf("status role=sellers lists %v", list)
	}

	// A restart serves the stored token: no request.
	env.b = env.newBackend()
	if again := env.readToken("sellers/ncp_abc"); again.Data["access_token"] != abc.Data["access_token"] || env.requestsFor("SELLER", "ncp_abc") != 1 {
		t.Error("after a restart a seller's stored token was not served")
	}

	// Narrowing the role stops serving, and evicts, the sellers it no longer names (unless
	// another role names them).
	env.readToken("sellers/ncp_axe")
	env.mustWrite("roles/sellers", map[string]any{"allowed_account_ids": "ncp_exact"})
	if resp, err := env.read("token/sellers/ncp_axe"); httpStatus(resp, err) != http.StatusBadRequest {
		t.Errorf("a seller the role no longer allows was served: %d", httpStatus(resp, err))
	}
	env.periodic(context.Background())
	if stored := env.storedToken("SELLER", "ncp_axe"); env.cachedToken("SELLER", "ncp_axe") != nil || stored == nil || !stored.Unnamed {
		t.Error("the token of a seller no role names any more was kept")
	}
	if env.storedToken("SELLER", "ncp_abc") == nil || env.storedToken("SELLER", "ncp_exact") == nil {
		t.Error("a token that a role still names was evicted")
	}
	env.assertCompliant()

	// Dropping one seller's token leaves the others.
	if resp, err := env.request(env.b, logical.DeleteOperation, "token/sellers/ncp_exact", map[string]any{"force": true}); errorText(resp, err) != "" {
		t.Fatal(errorText(resp, err))
	}
	if stored := env.storedToken("SELLER", "ncp_exact"); env.cachedToken("SELLER", "ncp_exact") != nil || stored == nil || stored.Retired != retiredDropped || !env.storedToken("SELLER", "ncp_abc").Servable(stored.Credentials) {
		t.Error("the drop did not drop exactly the seller's token")
	}
}

// countingStorage counts Gets by key prefix.
type countingStorage struct {
	logical.Storage
	mu   sync.Mutex
	gets map[string]int
}

func (c *countingStorage) Get(ctx context.Context, key string) (*logical.StorageEntry, error) {
	c.mu.Lock()
	if c.gets == nil {
		c.gets = make(map[string]int)
	}
	prefix, _, _ := strings.Cut(key, "/")
	c.gets[prefix]++
	c.mu.Unlock()
	return c.Storage.Get(ctx, key)
}

func (c *countingStorage) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.gets
	c.gets = nil
	return out
}

// status/<role> reads that role only: with thousands of roles, reading them all to list the
// roles naming a key made it slow (issue 18: 240 ms at 2,000 sellers). status reads roles
// once after a start, to find unreadable ones, and then no more.
func TestStatusReadsOnlyTheRoleAskedAbout(t *testing.T) {
	env := newTestEnv(t)
	storage := &countingStorage{Storage: &logical.InmemStorage{}}
	env.storage = storage
	env.b = env.newBackend()
	env.configure()
	for i := range 50 {
		env.mustWrite(fmt.Sprintf("roles/r%d", i), map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("ncp_%d", i)})
	}
	env.readToken("r7")
	env.mustRead("status") // the first after a start reads every role once
	storage.reset()

	if r := env.mustRead("status/r7"); r.Data["cached"] != true {
		t.Fatalf("status/r7: %v", r.Data)
	}
	if n := storage.reset()["roles"]; n != 1 {
		t.Errorf("status/r7 read %d roles, want 1", n)
	}
	env.mustRead("status")
	env.statusList(nil)
	if n := storage.reset()["roles"]; n != 0 {
		t.Errorf("status read %d roles, want none", n)
	}
}

// status answers a summary by default and lists keys a page at a time or by filter, so its
// answer stays small with thousands of sellers.
func TestStatusSummaryPagesAndFilters(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("config", map[string]any{"max_retries": 0})
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "ncp_*"})
	const sellers = 25
	for i := range sellers {
		env.readToken(fmt.Sprintf("sellers/ncp_%02d", i))
	}
	env.naver.InjectFault(navercommercetest.Fault{Status: 503})
	if resp, err := env.read("token/sellers/ncp_fail"); httpStatus(resp, err) != http.StatusBadGateway {
		t.Fatalf("failing read: %d %s", httpStatus(resp, err), errorText(resp, err))
	}

	summary := env.mustRead("status")
	if _, listed := summary.Data["keys"]; listed {
		t.Error("status lists keys by default")
	}
	want := map[string]any{
		"known_keys": sellers + 2, "cached_keys": sellers + 1, "failing_keys": 1,
		"requests_last_hour": sellers + 2, "requests_last_24h": sellers + 2, "busiest_key_requests_last_hour": 1,
		"key_states": map[string]any{"cached": sellers + 1, "stale": 0, "failing": 1, "refused": 0, "idle": 0}, "refused_keys": 0,
	}
	for k, v := range want {
		if !reflect.DeepEqual(summary.Data[k], v) {
			t.Errorf("status %s = %#v, want %#v", k, summary.Data[k], v)
		}
	}

	// Pages of 10: every key once, in order, and next_after only while more follow.
	var seen []string
	after := ""
	for page := 0; ; page++ {
		filters := map[string]any{"limit": 10}
		if after != "" {
			filters["after"] = after
		}
		resp := env.statusList(filters)
		for _, k := range resp.Data["keys"].([]map[string]any) {
			seen = append(seen, k["type"].(string)+"|"+k["account_id"].(string))
		}
		next, _ := resp.Data["next_after"].(string)
		if next == "" {
			break
		}
		if page > 5 {
			t.Fatal("paging does not end")
		}
		after = next
	}
	if len(seen) != sellers+2 || !sort.StringsAreSorted(seen) || len(slices.Compact(slices.Clone(seen))) != len(seen) {
		t.Errorf("pages listed %d keys %v, want %d, sorted, each once", len(seen), seen, sellers+2)
	}

	// The application's requests include those of keys evicted since: Naver counted them.
	env.mustWrite("roles/one", map[string]any{"type": "SELLER", "account_id": "other_gone"})
	env.readToken("one")
	if resp, err := env.request(env.b, logical.DeleteOperation, "roles/one", nil); errorText(resp, err) != "" {
		t.Fatal(errorText(resp, err))
	}
	if s := env.mustRead("status"); s.Data["requests_last_hour"] != sellers+3 || s.Data["known_keys"] != sellers+2 {
		t.Errorf("after evicting a key: requests_last_hour %v (want %d), known_keys %v", s.Data["requests_last_hour"], sellers+3, s.Data["known_keys"])
	}

	failing := env.statusList(map[string]any{"failing": true})
	if keys := statusKeys(t, failing); len(keys) != 1 || keys["SELLER|ncp_fail"]["state"] != "failing" || failing.Data["known_keys"] != 1 {
		t.Errorf("failing=true: %v", failing.Data)
	}
	one := env.statusList(map[string]any{"account_id": "ncp_07"})
	if keys := statusKeys(t, one); len(keys) != 1 || keys["SELLER|ncp_07"]["cached"] != true {
		t.Errorf("account_id=ncp_07: %v", one.Data)
	}

	for _, tt := range []struct {
		data  map[string]any
		field string
	}{
		{map[string]any{"limit": 0}, "limit"},
		{map[string]any{"limit": maxStatusLimit + 1}, "limit"},
		{map[string]any{"after": "nonsense"}, "after"},
		{map[string]any{"account_id": "ncp x"}, "account_id"},
		{map[string]any{"role": "nope"}, "role"},
	} {
		resp, err := env.request(env.b, logical.ReadOperation, "status", tt.data)
		if httpStatus(resp, err) != http.StatusBadRequest || !strings.Contains(errorText(resp, err), tt.field) {
			t.Errorf("status %v: want a 400 naming %s, got %d %q", tt.data, tt.field, httpStatus(resp, err), errorText(resp, err))
		}
	}
}

// Metrics stay a fixed set of series whatever the number of sellers: no per-key label.
func TestMetricsSeriesDoNotGrowWithSellers(t *testing.T) {
	env := newTestEnv(t)
	env.configure()
	env.mustWrite("roles/sellers", map[string]any{"type": "SELLER", "allowed_account_ids": "*"})
	env.readToken("sellers/ncp_first")
	series := func() []string {
		var out []string
		for s := range parseExposition(t, env.scrapeMetrics()) {
			out = append(out, s)
		}
		sort.Strings(out)
		return out
	}
	before := series()
	for i := range 30 {
		env.readToken(fmt.Sprintf("sellers/ncp_%d", i))
	}
	if after := series(); !slices.Equal(before, after) {
		t.Errorf("series with 1 seller %v, with 31 %v", before, after)
	}
}
