//go:build acceptance

package acceptance

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// oddAccountID is valid for the plugin (printable, no white space, at most 128 characters)
// and hard on scripts: it starts with @ (vault write k=@v reads a file), holds a comma (a
// list separator), quotes, a backslash, and URL and shell metacharacters.
const oddAccountID = `@ncp_%41?b#c'd$e&f+g=h;i:j,k~l!m"n\o`

// roleDefinition is the role as `vault read` gives it (nil when there is none).
func roleDefinition(t *testing.T, v *vaultProc, name string) map[string]any {
	t.Helper()
	s, err := v.api.Logical().Read("navercommerce/roles/" + name)
	if err != nil {
		t.Fatalf("reading role %s: %v", name, err)
	}
	if s == nil {
		return nil
	}
	return s.Data
}

// exitCode is the exit status of a finished command's error (0 for nil).
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

// TestOperationsMoveRoleCopiesTheWholeDefinition: move-role.sh copies every field of a role
// as `vault read` shows it — a single-account role with every field set, a many-seller role
// with a glob list, a SELF role — so the copy reads back equal and serves the same cached
// tokens; a second copy changes nothing; retire deletes the old role, and nothing asks
// Naver. The script names no field of a role: fields a later version adds move too.
func TestOperationsMoveRoleCopiesTheWholeDefinition(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	admin := []string{adminToken(t, v)}

	tests := []struct {
		name, from, to string
		fields         map[string]any
		tokenPath      string // below the role: "" or "/<account_id>"
		want           map[string]any
	}{
		{
			name: "single account, every field", from: "store", to: "shop",
			fields: map[string]any{"type": "SELLER", "account_id": oddAccountID, "ttl": "2h", "lease": false, "min_remaining_ttl": "20m"},
			want:   map[string]any{"account_id": oddAccountID, "allowed_account_ids": []any{}, "ttl": json.Number("7200"), "lease": false, "min_remaining_ttl": json.Number("1200")},
		},
		{
			name: "many sellers, glob list", from: "sellers", to: "tenants",
			fields:    map[string]any{"type": "SELLER", "allowed_account_ids": "partner_7,ncp_mv_*", "ttl": "1h", "min_remaining_ttl": "5m"},
			tokenPath: "/ncp_mv_abc",
			want:      map[string]any{"account_id": "", "allowed_account_ids": []any{"ncp_mv_*", "partner_7"}, "lease": true, "min_remaining_ttl": json.Number("300")},
		},
		{
			name: "SELF", from: "app", to: "app-renamed",
			fields: map[string]any{"type": "SELF", "ttl": "30m"},
			want:   map[string]any{"type": "SELF", "account_id": "", "allowed_account_ids": []any{}, "ttl": json.Number("1800")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := v.api.Logical().Write("navercommerce/roles/"+tt.from, tt.fields); err != nil {
				t.Fatal(err)
			}
			before := v.readToken(t, "navercommerce", tt.from+tt.tokenPath)
			requests := em.stats(t).TokenRequests

			out := mustRecipe(t, v, "move-role.sh", admin, "copy", tt.from, tt.to)
			from, to := roleDefinition(t, v, tt.from), roleDefinition(t, v, tt.to)
			if !reflect.DeepEqual(from, to) {
				t.Fatalf("after the copy, %s is %v, %s is %v", tt.from, from, tt.to, to)
			}
			for field, want := range tt.want {
				if !reflect.DeepEqual(to[field], want) {
					t.Errorf("the copy's %s is %#v, want %#v", field, to[field], want)
				}
			}
			if !strings.Contains(out, tt.to+" has "+tt.from+"'s definition") {
				t.Errorf("move-role.sh copy did not say it copied")
			}
			if tok := v.readToken(t, "navercommerce", tt.to+tt.tokenPath); tok.AccessToken != before.AccessToken || (tok.LeaseID != "") != (from["lease"] == true) {
				t.Errorf("the copy did not serve the cached token the same way (lease %q)", tok.LeaseID)
			}

			if out := mustRecipe(t, v, "move-role.sh", admin, "copy", tt.from, tt.to); !strings.Contains(out, "nothing to do") {
				t.Errorf("a second copy did not say there was nothing to do")
			}
			mustRecipe(t, v, "move-role.sh", admin, "retire", tt.from, tt.to)
			if def := roleDefinition(t, v, tt.from); def != nil {
				t.Errorf("the retired role %s is still there: %v", tt.from, def)
			}
			if tok := v.readToken(t, "navercommerce", tt.to+tt.tokenPath); tok.AccessToken != before.AccessToken {
				t.Error("retiring the old role dropped the shared token")
			}
			if n := em.stats(t).TokenRequests - requests; n != 0 {
				t.Errorf("%d token requests for the move, want none", n)
			}
		})
	}

	t.Run("the script names no field", func(t *testing.T) {
		data, err := os.ReadFile(filepath.Join(repoRoot(t), "examples", "operations", "move-role.sh"))
		if err != nil {
			t.Fatal(err)
		}
		v.write(t, "navercommerce/roles/probe", "type=SELLER", "account_id=ncp_probe")
		code := shellCode(string(data))
		for field := range roleDefinition(t, v, "probe") {
			if regexp.MustCompile(`\b` + regexp.QuoteMeta(field) + `\b`).MatchString(code) {
				t.Errorf("move-role.sh names the field %s outside its comments: a fixed list of fields misses those a later version adds", field)
			}
		}
	})
}

// shellCode is a shell script without its comment lines and trailing " # ..." comments.
func shellCode(script string) string {
	var b strings.Builder
	for _, line := range strings.Split(script, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if i := strings.Index(line, " # "); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line + "\n")
	}
	return b.String()
}

// TestOperationsMoveRoleRefusesDifferences: retire leaves the old role alone when the new
// one differs in any field, and says which; copy never overwrites another role; a role
// that does not exist cannot be copied; FROM and TO must differ.
func TestOperationsMoveRoleRefusesDifferences(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	admin := []string{adminToken(t, v)}
	v.write(t, "navercommerce/roles/store", "type=SELLER", "account_id=ncp_ops_diff", "lease=false", "min_remaining_ttl=20m")
	v.write(t, "navercommerce/roles/sellers", "type=SELLER", "allowed_account_ids=ncp_a*,ncp_b")

	refused := func(t *testing.T, wantExit int, want []string, args ...string) {
		t.Helper()
		out, err := recipe(t, v, "move-role.sh", admin, args...)
		if code := exitCode(t, err); code != wantExit {
			t.Errorf("move-role.sh %s exited %d, want %d", strings.Join(args, " "), code, wantExit)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("move-role.sh %s: the output lacks %q", strings.Join(args, " "), w)
			}
		}
	}
	unchanged := func(t *testing.T, name string, want map[string]any) {
		t.Helper()
		if got := roleDefinition(t, v, name); !reflect.DeepEqual(got, want) {
			t.Errorf("role %s changed: %v, was %v", name, got, want)
		}
	}

	t.Run("retire after the copy changed", func(t *testing.T) {
		mustRecipe(t, v, "move-role.sh", admin, "copy", "store", "shop")
		v.write(t, "navercommerce/roles/shop", "min_remaining_ttl=5m")
		before := roleDefinition(t, v, "store")
		refused(t, 1, []string{"not deleting store", "min_remaining_ttl: 1200 in store, 300 in shop"}, "retire", "store", "shop")
		unchanged(t, "store", before)
	})
	t.Run("retire into a many-seller role with another list", func(t *testing.T) {
		mustRecipe(t, v, "move-role.sh", admin, "copy", "sellers", "tenants")
		v.write(t, "navercommerce/roles/tenants", "allowed_account_ids=ncp_a*")
		before := roleDefinition(t, v, "sellers")
		refused(t, 1, []string{"not deleting sellers", `allowed_account_ids: ["ncp_a*","ncp_b"] in sellers, ["ncp_a*"] in tenants`}, "retire", "sellers", "tenants")
		unchanged(t, "sellers", before)
	})
	t.Run("retire into a role of another kind", func(t *testing.T) {
		before := roleDefinition(t, v, "sellers")
		refused(t, 1, []string{"not deleting sellers", `account_id: "" in sellers, "ncp_ops_diff" in store`}, "retire", "sellers", "store")
		unchanged(t, "sellers", before)
	})
	t.Run("copy onto another role", func(t *testing.T) {
		v.write(t, "navercommerce/roles/other", "type=SELLER", "account_id=ncp_ops_other")
		before := roleDefinition(t, v, "other")
		refused(t, 1, []string{"other exists with another definition; not overwriting it", `"ncp_ops_diff" in store, "ncp_ops_other" in other`}, "copy", "store", "other")
		unchanged(t, "other", before)
	})
	t.Run("copy of a role that does not exist", func(t *testing.T) {
		refused(t, 1, []string{"cannot read role missing"}, "copy", "missing", "new")
		if def := roleDefinition(t, v, "new"); def != nil {
			t.Errorf("a copy of nothing created %v", def)
		}
	})
	t.Run("retire into a role that does not exist", func(t *testing.T) {
		before := roleDefinition(t, v, "store")
		refused(t, 1, []string{"cannot read role missing"}, "retire", "store", "missing")
		unchanged(t, "store", before)
	})
	t.Run("FROM and TO the same", func(t *testing.T) {
		before := roleDefinition(t, v, "store")
		refused(t, 2, []string{"usage"}, "retire", "store", "store")
		unchanged(t, "store", before)
	})
}

// TestOperationsMoveRoleVaultDownMidway: whichever request of a step Vault stops answering
// at (its connections cut), the step fails and leaves the roles as they were or with the
// copy complete — never the old role deleted, never a partial copy — and running the step
// again once Vault is back completes it.
func TestOperationsMoveRoleVaultDownMidway(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	proxy := startVaultProxy(t, v)
	admin := adminToken(t, v)
	viaProxy := []string{admin, "VAULT_ADDR=" + proxy.URL, "VAULT_MAX_RETRIES=0"}
	v.write(t, "navercommerce/roles/sellers", "type=SELLER", "allowed_account_ids=ncp_down_*", "lease=false", "min_remaining_ttl=20m")
	source := roleDefinition(t, v, "sellers")

	for _, step := range []string{"copy", "retire"} {
		for served := 0; ; served++ {
			if served > 10 {
				t.Fatalf("move-role.sh %s never succeeded through the proxy", step)
			}
			// The state before the step: no copy yet (copy), or the copy complete (retire).
			v.cli(t, "delete", "navercommerce/roles/tenants")
			if step == "retire" {
				v.write(t, "navercommerce/roles/tenants", "type=SELLER", "allowed_account_ids=ncp_down_*", "lease=false", "min_remaining_ttl=20m")
			}
			proxy.then(cut, forwardFirst(served)...)
			out, err := recipe(t, v, "move-role.sh", viaProxy, step, "sellers", "tenants")
			if err == nil {
				t.Logf("move-role.sh %s took %d requests", step, served)
				if served == 0 {
					t.Fatalf("move-role.sh %s succeeded with Vault down", step)
				}
				break
			}
			label := fmt.Sprintf("%s with Vault down after %d requests", step, served)
			if exitCode(t, err) == 0 || !strings.Contains(out, "move-role: ") && !strings.Contains(out, "Error") {
				t.Errorf("%s: failed without saying so:\n%s", label, out)
			}
			if got := roleDefinition(t, v, "sellers"); !reflect.DeepEqual(got, source) {
				t.Fatalf("%s: the old role is now %v", label, got)
			}
			if got := roleDefinition(t, v, "tenants"); got != nil && !reflect.DeepEqual(got, source) {
				t.Fatalf("%s: a partial copy %v", label, got)
			}
			// Vault is back: the same step again completes the move.
			mustRecipe(t, v, "move-role.sh", []string{admin}, step, "sellers", "tenants")
			if step == "retire" {
				if got := roleDefinition(t, v, "sellers"); got != nil {
					t.Fatalf("%s, run again: the old role is still there", label)
				}
				v.write(t, "navercommerce/roles/sellers", "type=SELLER", "allowed_account_ids=ncp_down_*", "lease=false", "min_remaining_ttl=20m")
			} else if got := roleDefinition(t, v, "tenants"); !reflect.DeepEqual(got, source) {
				t.Fatalf("%s, run again: the copy is %v", label, got)
			}
		}
	}
}
