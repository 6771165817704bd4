//go:build acceptance

package acceptance

import (
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/harness"
)

// tenantPolicy is the name examples/policy-tenant.hcl is written under, as in the README.
const tenantPolicy = "navercommerce-tenant"

// TestTenantPolicyFromIdentity: one templated policy (examples/policy-tenant.hcl) serves every
// tenant of a many-seller role. Two tenants' apps log in, one by AppRole and one by userpass,
// as entities set up the way the README's "Tenants by identity" shows; each reads its own
// seller's token, and is refused the other's seller, the role's bare path, status and the
// drop, with nothing asked of Naver for a refused request.
func TestTenantPolicyFromIdentity(t *testing.T) {
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.enableAudit(t)
	v.configure(t, "navercommerce", em)
	v.cli(t, "write", "navercommerce/roles/sellers", "type=SELLER", "allowed_account_ids=ncp_*")
	v.cli(t, "policy", "write", tenantPolicy, filepath.Join(repoRoot(t), "examples", "policy-tenant.hcl"))
	v.cli(t, "auth", "enable", "approle")
	v.cli(t, "auth", "enable", "userpass")

	tenants := []struct {
		name, account string
		login         func(t *testing.T, v *vaultProc, entity, name string) *api.Client
	}{
		{"tenant-ncp_alpha", "ncp_alpha", appRoleTenant},
		{"tenant-ncp_beta", "ncp_beta", userpassTenant},
	}
	apps := make([]*api.Client, len(tenants))
	for i, tn := range tenants {
		entity := tenantEntity(t, v, tn.name, "naver_account_id="+tn.account)
		apps[i] = tn.login(t, v, entity, tn.name)
	}
	before := em.stats(t)

	for i, tn := range tenants {
		app, other := apps[i], tenants[1-i].account
		t.Run(tn.name, func(t *testing.T) {
			s, err := app.Logical().Read("navercommerce/token/sellers/" + tn.account)
			if err != nil {
				t.Fatalf("%s reading its own seller %s: %v", tn.name, tn.account, err)
			}
			tok, err := v.parseToken(s)
			if err != nil || tok.AccountID != tn.account {
				t.Fatalf("%s's read: account %q, %v", tn.name, tok.AccountID, err)
			}
			if status, body := em.callAPI(t, tok.AccessToken); status != http.StatusOK || body["accountId"] != tn.account {
				t.Errorf("the emulator's API answered %d %v to %s's token", status, body, tn.account)
			}
			requireDenied(t, app, []tenantRequest{
				{"read", "navercommerce/token/sellers/" + other},
				{"read", "navercommerce/token/sellers"},
				{"read", "navercommerce/token/sellers/"},
				{"read", "navercommerce/status"},
				{"read", "navercommerce/status/sellers"},
				{"read", "navercommerce/status/sellers/" + tn.account},
				{"delete", "navercommerce/token/sellers/" + tn.account},
				{"delete", "navercommerce/token/sellers/" + other},
				{"read", "navercommerce/config"},
				{"list", "navercommerce/roles"},
				{"read", "navercommerce/metrics"},
				// Its own entity: a tenant that could write its metadata could name any seller.
				{"update", "identity/entity/name/" + tn.name},
			})
		})
	}

	st := em.stats(t)
	for _, tn := range tenants {
		if n := st.Keys[em.key("SELLER", tn.account)].Requests; n != 1 {
			t.Errorf("Naver was asked %d times for %s, want 1 (the tenant's own read)", n, tn.account)
		}
	}
	if st.TokenRequests != before.TokenRequests+len(tenants) || len(st.Violations) > 0 {
		t.Errorf("token requests %d → %d, want one per tenant; violations %v", before.TokenRequests, st.TokenRequests, st.Violations)
	}

	// The policy is rendered on every request: a tenant moved to another seller (one
	// metadata write) reads the new seller with the token it has, and no longer the old one.
	v.cli(t, "write", "identity/entity/name/"+tenants[0].name, "metadata=naver_account_id=ncp_gamma")
	if s, err := apps[0].Logical().Read("navercommerce/token/sellers/ncp_gamma"); err != nil || s == nil {
		t.Errorf("after the move, %s reading ncp_gamma: %v (response %v)", tenants[0].name, err, s)
	} else if tok, err := v.parseToken(s); err != nil || tok.AccountID != "ncp_gamma" {
		t.Errorf("after the move, %s read account %q: %v", tenants[0].name, tok.AccountID, err)
	}
	requireDenied(t, apps[0], []tenantRequest{{"read", "navercommerce/token/sellers/" + tenants[0].account}})
	// A tenant whose entity is deleted loses its seller at once, with the token it has.
	v.cli(t, "delete", "identity/entity/name/"+tenants[1].name)
	requireDenied(t, apps[1], []tenantRequest{{"read", "navercommerce/token/sellers/" + tenants[1].account}})
}

// TestTenantPolicyMetadataEdgeCases: what the templated policy grants an entity whose
// metadata is missing, empty or not one account ID: nothing (403), or a path the engine
// refuses (400), except where a value holds a policy wildcard. Vault takes such a value as
// written (`*` at the end, or `+`, grants other sellers), which is why the README says to
// check the value before writing it and never to let a tenant write it; OpenBao leaves a
// path out when the value holds `*`, `+` or `/`.
func TestTenantPolicyMetadataEdgeCases(t *testing.T) {
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	v.cli(t, "write", "navercommerce/roles/sellers", "type=SELLER", "allowed_account_ids=ncp_*")
	v.cli(t, "policy", "write", tenantPolicy, filepath.Join(repoRoot(t), "examples", "policy-tenant.hcl"))
	v.cli(t, "auth", "enable", "userpass")
	// Another tenant's seller, whose token is cached: what an entity must not reach.
	v.readToken(t, "navercommerce", "sellers/ncp_other")
	openBao := v.env.server == harness.ServerOpenBao

	deniedEverywhere := func(account string) []tenantRequest {
		return []tenantRequest{
			{"read", "navercommerce/token/sellers/ncp_other"},
			{"read", "navercommerce/token/sellers/" + account},
			{"read", "navercommerce/token/sellers"},
			{"read", "navercommerce/status"},
			{"delete", "navercommerce/token/sellers/ncp_other"},
		}
	}
	tests := []struct {
		name     string
		metadata []string // key=value pairs on the entity
		denied   []tenantRequest
		// engineRefused: reads Vault's policy lets through to the engine, which refuses them
		// (400); OpenBao's leaves them out (403).
		engineRefused []string
		// wildcard: sellers the entity reads on Vault although its metadata names none of
		// them; OpenBao refuses them.
		wildcard []string
	}{
		{name: "no metadata", metadata: nil, denied: deniedEverywhere("ncp_nometa")},
		{name: "other keys only", metadata: []string{"team=ncp_other"}, denied: deniedEverywhere("ncp_other")},
		{name: "empty value", metadata: []string{"naver_account_id="},
			denied: append(deniedEverywhere("ncp_empty"), tenantRequest{"read", "navercommerce/token/sellers/"})},
		{name: "slash", metadata: []string{"naver_account_id=ncp_slash/ncp_other"},
			denied:        append(deniedEverywhere("ncp_slash"), tenantRequest{"read", "navercommerce/token/sellers/ncp_slash/"}),
			engineRefused: []string{"navercommerce/token/sellers/ncp_slash/ncp_other"}},
		{name: "template in the value", metadata: []string{"naver_account_id={{identity.entity.name}}"},
			denied: deniedEverywhere("tenant-template_in_the_value")},
		{name: "glob", metadata: []string{"naver_account_id=*"}, wildcard: []string{"ncp_other"}},
		{name: "glob suffix", metadata: []string{"naver_account_id=ncp_o*"}, wildcard: []string{"ncp_other"}},
		{name: "segment wildcard", metadata: []string{"naver_account_id=+"}, wildcard: []string{"ncp_other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := "tenant-" + strings.ReplaceAll(tt.name, " ", "_")
			app := userpassTenant(t, v, tenantEntity(t, v, name, tt.metadata...), name)
			before := em.stats(t).TokenRequests
			requireDenied(t, app, tt.denied)
			for _, path := range tt.engineRefused {
				if openBao {
					requireDenied(t, app, []tenantRequest{{"read", path}})
					continue
				}
				_, err := app.Logical().Read(path)
				requireStatus(t, err, http.StatusBadRequest, "ncp_slash/ncp_other")
			}
			for _, account := range tt.wildcard {
				path := "navercommerce/token/sellers/" + account
				if openBao {
					requireDenied(t, app, []tenantRequest{{"read", path}})
					continue
				}
				s, err := app.Logical().Read(path)
				if err != nil || s == nil {
					t.Errorf("metadata %v: reading %s: %v; the README warns that this value grants it", tt.metadata, account, err)
					continue
				}
				if tok, err := v.parseToken(s); err != nil || tok.AccountID != account {
					t.Errorf("metadata %v: read of %s answered %q, %v", tt.metadata, account, tok.AccountID, err)
				}
			}
			if after := em.stats(t).TokenRequests; after != before {
				t.Errorf("the entity's requests asked Naver %d times, want none", after-before)
			}
		})
	}
}

// tenantEntity writes an entity the way the README onboards a tenant (the tenant policy and
// the given metadata) and returns its ID.
func tenantEntity(t *testing.T, v *vaultProc, name string, metadata ...string) string {
	t.Helper()
	args := []string{"write", "identity/entity", "name=" + name, "policies=" + tenantPolicy}
	for _, m := range metadata {
		args = append(args, "metadata="+m)
	}
	v.cli(t, args...)
	return strings.TrimSpace(v.cli(t, "read", "-field=id", "identity/entity/name/"+name))
}

// appRoleTenant gives the entity an AppRole login (its alias is named by the role ID), logs
// in as the tenant's app would, and returns the app's client.
func appRoleTenant(t *testing.T, v *vaultProc, entity, name string) *api.Client {
	t.Helper()
	v.cli(t, "write", "auth/approle/role/"+name, "token_ttl=1h")
	roleID := strings.TrimSpace(v.cli(t, "read", "-field=role_id", "auth/approle/role/"+name+"/role-id"))
	accessor := strings.TrimSpace(v.cli(t, "read", "-field=accessor", "sys/auth/approle"))
	v.cli(t, "write", "identity/entity-alias", "name="+roleID, "canonical_id="+entity, "mount_accessor="+accessor)
	secretID := strings.TrimSpace(v.cli(t, "write", "-f", "-field=secret_id", "auth/approle/role/"+name+"/secret-id"))
	return tenantLogin(t, v, entity, "auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID})
}

// userpassTenant gives the entity a userpass login (its alias is named by the user name).
func userpassTenant(t *testing.T, v *vaultProc, entity, name string) *api.Client {
	t.Helper()
	password := randomHex(12)
	v.cli(t, "write", "auth/userpass/users/"+name, "password="+password)
	accessor := strings.TrimSpace(v.cli(t, "read", "-field=accessor", "sys/auth/userpass"))
	v.cli(t, "write", "identity/entity-alias", "name="+name, "canonical_id="+entity, "mount_accessor="+accessor)
	return tenantLogin(t, v, entity, "auth/userpass/login/"+name, map[string]any{"password": password})
}

// tenantLogin logs in at path and returns a client with the new token, which must belong to
// entity and carry the tenant policy only through it.
func tenantLogin(t *testing.T, v *vaultProc, entity, path string, data map[string]any) *api.Client {
	t.Helper()
	c, err := v.api.Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.ClearToken()
	s, err := c.Logical().Write(path, data)
	if err != nil || s == nil || s.Auth == nil {
		t.Fatalf("login at %s: %v", path, err)
	}
	if s.Auth.EntityID != entity {
		t.Fatalf("login at %s: entity %q, want %q (the alias is not the entity's)", path, s.Auth.EntityID, entity)
	}
	for _, p := range s.Auth.TokenPolicies {
		if p == tenantPolicy {
			t.Fatalf("login at %s: the token itself carries %s; the test wants it from the entity", path, tenantPolicy)
		}
	}
	c.SetToken(s.Auth.ClientToken)
	return c
}

type tenantRequest struct{ op, path string }

// requireDenied asserts that each request is refused with 403 permission denied.
func requireDenied(t *testing.T, c *api.Client, reqs []tenantRequest) {
	t.Helper()
	for _, r := range reqs {
		var err error
		switch r.op {
		case "read":
			_, err = c.Logical().Read(r.path)
		case "list":
			_, err = c.Logical().List(r.path)
		case "delete":
			_, err = c.Logical().Delete(r.path)
		case "update":
			_, err = c.Logical().Write(r.path, map[string]any{"metadata": "naver_account_id=ncp_other"})
		default:
			t.Fatalf("unknown operation %q", r.op)
		}
		var re *api.ResponseError
		if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s: want 403 permission denied, got %v", r.op, r.path, err)
		}
	}
}
