//go:build acceptance

package acceptance

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Operations recipes in their many-seller form: one role serving many sellers, each
// seller's token at token/<role>/<account_id>.

// sellerAccountID is an account ID with characters that URLs and shells treat specially,
// valid for the plugin and allowed by the glob "ncp_*" (no comma, so the CLI's
// allowed_account_ids=a,b form could list it too).
const sellerAccountID = `ncp_%41?b#c'd$e&f+g=h;i:j@k~l!m`

// TestOperationsDropTokenOneSeller: drop-token.sh with ROLE and ACCOUNT_ID drops one seller's
// token of a many-seller role once Naver refuses it, names role and account in what it
// prints, and leaves the other sellers' tokens alone; a seller whose token Naver accepts is
// not dropped.
func TestOperationsDropTokenOneSeller(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/sellers", "type=SELLER", "allowed_account_ids=ncp_*")
	refused := v.readToken(t, "navercommerce", "sellers/"+sellerAccountID)
	other := v.readToken(t, "navercommerce", "sellers/ncp_other")
	admin := adminToken(t, v)
	env := func(account string) []string {
		return []string{"ROLE=sellers", "ACCOUNT_ID=" + account, "NAVER_COMMERCE_API_URL=" + em.URL, admin}
	}

	out, err := recipe(t, v, "drop-token.sh", env("ncp_other"))
	if err == nil || !strings.Contains(out, "Naver answered 200, not 401, to the token of role sellers, SELLER account ncp_other: not dropping it") {
		t.Fatalf("drop-token.sh dropped a token Naver accepts, or did not name role and account (err %v)", err)
	}

	// A path in ROLE or ACCOUNT_ID ("a/b", ".."), which the CLI would resolve to another
	// path, is refused before anything is read.
	for _, bad := range [][]string{
		{"ROLE=sellers/ncp_other", "NAVER_COMMERCE_API_URL=" + em.URL, admin},
		append(env(".."), "ROLE=sellers"),
		append(env("ncp_other"), "ROLE=.."),
	} {
		out, err := recipe(t, v, "drop-token.sh", bad)
		if code := exitCode(t, err); code != 2 || !strings.Contains(out, "is not one name: give the role as ROLE and a seller as ACCOUNT_ID") {
			t.Errorf("drop-token.sh with %v exited %d:\n%s", bad[:1], code, out)
		}
	}

	em.killToken(t, refused.AccessToken)
	out = mustRecipe(t, v, "drop-token.sh", env(sellerAccountID))
	if want := "dropped: role sellers, SELLER account " + sellerAccountID + ": cached=false"; !strings.Contains(out, want) {
		t.Errorf("drop-token.sh did not print %q", want)
	}
	fresh := v.readToken(t, "navercommerce", "sellers/"+sellerAccountID)
	if status, body := em.callAPI(t, fresh.AccessToken); fresh.AccessToken == refused.AccessToken || status != http.StatusOK || body["accountId"] != sellerAccountID {
		t.Errorf("after the drop, the seller's read got the refused token again or one the API refuses (%d %v)", status, body)
	}
	if tok := v.readToken(t, "navercommerce", "sellers/ncp_other"); tok.AccessToken != other.AccessToken {
		t.Error("dropping one seller's token replaced another seller's")
	}
	if n := em.stats(t).Keys[em.key("SELLER", "ncp_other")].Requests; n != 1 {
		t.Errorf("%d token requests for the other seller, want its first only", n)
	}
}

// TestOperationsCheckStatusManySellers: check-status.sh checks a many-seller role's sellers
// (ROLE), every page of them, or one seller (ROLE and ACCOUNT_ID), each line naming the
// account and the role; the first line sums up; the exit status is the worst seller's; a
// status it cannot read is UNKNOWN (3), never OK.
func TestOperationsCheckStatusManySellers(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{ExtraArgs: []string{"-penalty=false"}})
	v := startDevVaultWithEngine(t)
	// No verification: the mount holds the sellers' keys only, no SELF key.
	v.configure(t, "navercommerce", em, "verify_connection=false")
	v.write(t, "navercommerce/roles/sellers", "type=SELLER", "allowed_account_ids=ncp_*")
	v.write(t, "navercommerce/roles/store", "type=SELLER", "account_id=ncp_single")
	sellers := []string{"ncp_a", "ncp_b", "ncp_c", sellerAccountID, "ncp_single"}
	for _, s := range sellers {
		v.readToken(t, "navercommerce", "sellers/"+s)
	}
	v.readToken(t, "navercommerce", "store")
	policy, err := filepath.Abs(filepath.Join("..", "examples", "policy-operator.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	v.cli(t, "policy", "write", "navercommerce-operator", policy)
	operator := "VAULT_TOKEN=" + strings.TrimSpace(v.cli(t, "token", "create", "-policy=navercommerce-operator", "-field=token"))

	check := func(t *testing.T, env []string, wantExit int, want, notWant []string) string {
		t.Helper()
		out, err := recipe(t, v, "check-status.sh", append([]string{operator}, env...))
		if code := exitCode(t, err); code != wantExit {
			t.Errorf("check-status.sh %v exited %d, want %d", env, code, wantExit)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("check-status.sh %v: the output lacks %q", env, w)
			}
		}
		for _, w := range notWant {
			if strings.Contains(out, w) {
				t.Errorf("check-status.sh %v: the output has %q", env, w)
			}
		}
		return out
	}
	okLine := func(account, roles string) string {
		return "OK SELLER " + account + " (roles: " + roles + "): expires "
	}

	t.Run("healthy, page by page", func(t *testing.T) {
		var want []string
		for _, s := range sellers[:4] {
			want = append(want, okLine(s, "sellers"))
		}
		// ncp_single is read through both roles.
		want = append(want, okLine("ncp_single", "sellers,store"), "OK: 5 key(s): 5 OK (mount navercommerce, role sellers)")
		out := check(t, []string{"ROLE=sellers", "PAGE_SIZE=2"}, 0, want, nil)
		if n := strings.Count(out, "\nOK SELLER "); n != 5 {
			t.Errorf("%d key lines for the role's 5 sellers:\n%s", n, out)
		}
		check(t, []string{"PAGE_SIZE=1"}, 0, append(want[:5:5], "OK: 5 key(s): 5 OK (mount navercommerce)"), nil)
		check(t, []string{"ROLE=store"}, 0, []string{okLine("ncp_single", "sellers,store"), "OK: 1 key(s): 1 OK (mount navercommerce, role store)"}, []string{"ncp_a"})
	})

	// Naver fails from now on: a seller read for the first time has no token.
	em.fault(t, map[string]any{"status": 503, "code": "GW.SERVICE_UNAVAILABLE", "count": 1000})
	if _, err := v.readTokenErr("navercommerce", "sellers/ncp_cold"); err == nil {
		t.Fatal("a token read succeeded while Naver fails every request")
	}
	waitFor(t, 10*time.Second, 200*time.Millisecond, "the failed read in status", func() (bool, error) {
		out, _ := recipe(t, v, "check-status.sh", []string{operator, "ROLE=sellers", "ACCOUNT_ID=ncp_cold"})
		return strings.Contains(out, "CRITICAL SELLER ncp_cold"), nil
	})

	t.Run("one seller failing", func(t *testing.T) {
		check(t, []string{"ROLE=sellers", "PAGE_SIZE=2"}, 2, []string{
			"CRITICAL: 6 key(s): 1 CRITICAL, 5 OK (mount navercommerce, role sellers)",
			"CRITICAL SELLER ncp_cold (roles: sellers): no token, ", "HTTP 503 GW.SERVICE_UNAVAILABLE trace ",
			okLine("ncp_a", "sellers"),
		}, nil)
		check(t, []string{"ROLE=sellers", "ACCOUNT_ID=ncp_cold"}, 2, []string{
			"CRITICAL: 1 key(s): 1 CRITICAL (mount navercommerce, role sellers, account ncp_cold)",
			"CRITICAL SELLER ncp_cold (roles: sellers): no token",
		}, []string{"ncp_a"})
		check(t, []string{"ROLE=sellers", "ACCOUNT_ID=" + sellerAccountID}, 0, []string{
			"OK: 1 key(s): 1 OK (mount navercommerce, role sellers, account " + sellerAccountID + ")",
			okLine(sellerAccountID, "sellers"),
		}, []string{"ncp_cold"})
		check(t, []string{"ROLE=store"}, 0, []string{okLine("ncp_single", "sellers,store")}, []string{"ncp_cold"})
	})

	t.Run("what it cannot read is UNKNOWN", func(t *testing.T) {
		// The UNKNOWN line (what a monitoring system shows) carries Vault's reason.
		out := check(t, []string{"ROLE=sellers", "ACCOUNT_ID=other_1"}, 3, nil, []string{"OK"})
		if got, want := firstLine(out, "UNKNOWN: "), `UNKNOWN: cannot read the status of mount navercommerce, role sellers, account other_1: account_id "other_1" is not one of the sellers role "sellers" allows`; !strings.HasPrefix(got, want) {
			t.Errorf("check-status.sh of a seller the role does not allow says %q, want %q", got, want)
		}
		check(t, []string{"ACCOUNT_ID=ncp_a"}, 3, []string{"UNKNOWN: ACCOUNT_ID needs ROLE"}, nil)
		check(t, []string{"ROLE=sellers", "ACCOUNT_ID=.."}, 3, []string{`UNKNOWN: ".." is not one name`}, []string{"OK"})
		check(t, []string{"ROLE=sellers/ncp_a"}, 3, []string{`UNKNOWN: "sellers/ncp_a" is not one name`}, []string{"OK"})
		out = check(t, []string{"ROLE=nosuchrole"}, 3, nil, nil)
		if got := firstLine(out, "UNKNOWN: "); !strings.Contains(got, `role "nosuchrole" does not exist`) {
			t.Errorf("check-status.sh of a role that does not exist says %q", got)
		}
		proxy := startVaultProxy(t, v)
		// Vault answers the first page and is down for the second: no verdict from half the keys.
		proxy.then(cut, forward)
		check(t, []string{"VAULT_ADDR=" + proxy.URL, "VAULT_MAX_RETRIES=0", "ROLE=sellers", "PAGE_SIZE=2"}, 3,
			[]string{"UNKNOWN: cannot read the status of mount navercommerce, role sellers"}, []string{"OK:", "CRITICAL:"})
	})
}
