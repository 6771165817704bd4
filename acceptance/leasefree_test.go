//go:build acceptance

package acceptance

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLeaseFreeRoles: a role with lease=false answers a token read with the same data as a
// leased role and no lease (no lease_id, lease_duration 0, not renewable), through the API
// and the CLI; the token is the account's cached one and works at the emulator; expires_in
// agrees with expires_at; and Vault keeps no lease for those reads, while each read of a
// leased role leaves one.
func TestLeaseFreeRoles(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	// Two roles on one account: they share one cached token.
	v.write(t, "navercommerce/roles/leased", "type=SELLER", "account_id=ncp_leasefree")
	v.write(t, "navercommerce/roles/free", "type=SELLER", "account_id=ncp_leasefree", "lease=false")

	for role, want := range map[string]bool{"leased": true, "free": false} {
		s, err := v.api.Logical().Read("navercommerce/roles/" + role)
		if err != nil || s == nil {
			t.Fatalf("read navercommerce/roles/%s: %v", role, err)
		}
		if got, ok := s.Data["lease"].(bool); !ok || got != want {
			t.Errorf("navercommerce/roles/%s shows lease=%v (%T), want %v", role, s.Data["lease"], s.Data["lease"], want)
		}
	}

	const reads = 3
	var free, leased token
	for range reads {
		free = v.readToken(t, "navercommerce", "free")
		readAt := time.Now()
		if free.LeaseID != "" || free.LeaseDuration != 0 || free.Renewable {
			t.Fatalf("a lease-free read has lease_id %q, lease_duration %d, renewable %v; want none, 0, false",
				free.LeaseID, free.LeaseDuration, free.Renewable)
		}
		if free.TokenType != "Bearer" || free.Type != "SELLER" || free.AccountID != "ncp_leasefree" {
			t.Errorf("a lease-free read has token_type %q, type %q, account_id %q", free.TokenType, free.Type, free.AccountID)
		}
		if free.ExpiresIn <= 0 || free.ExpiresIn > 3*60*60 {
			t.Errorf("expires_in %d, want within a 3-hour token's life", free.ExpiresIn)
		}
		// expires_at is whole seconds and expires_in is truncated: they agree within 2 s.
		if d := free.ExpiresAt.Sub(readAt.Add(time.Duration(free.ExpiresIn) * time.Second)); d < -2*time.Second || d > 2*time.Second {
			t.Errorf("expires_at %s and expires_in %d disagree by %s", free.ExpiresAt.Format(time.RFC3339), free.ExpiresIn, d)
		}

		leased = v.readToken(t, "navercommerce", "leased")
		if leased.LeaseID == "" || leased.LeaseDuration <= 0 || leased.Renewable {
			t.Fatalf("a leased read has lease_id %q, lease_duration %d, renewable %v; want a non-renewable lease",
				leased.LeaseID, leased.LeaseDuration, leased.Renewable)
		}
	}
	if free.AccessToken != leased.AccessToken {
		t.Errorf("two roles of one account got different tokens: lease-free reads do not share the cache")
	}
	if !em.valid(t, free.AccessToken) {
		t.Errorf("the lease-free token is not valid at the emulator")
	}
	if status, body := em.callAPI(t, free.AccessToken); status != 200 || body["accountId"] != "ncp_leasefree" {
		t.Errorf("the emulator's API answered %d %v to the lease-free token", status, body)
	}
	if n := em.stats(t).Keys[em.key("SELLER", "ncp_leasefree")].Requests; n != 1 {
		t.Errorf("%d reads of two roles made %d token requests, want 1", 2*reads, n)
	}

	// Vault's own record of leases: one per leased read, none for the lease-free ones.
	if got := leaseKeys(t, v, "navercommerce/token/leased/"); len(got) != reads {
		t.Errorf("%d leased reads left %d leases (%v), want %d", reads, len(got), got, reads)
	}
	if got := leaseKeys(t, v, "navercommerce/token/free/"); len(got) != 0 {
		t.Errorf("%d lease-free reads left leases: %v", reads, got)
	}
	if got := leaseKeys(t, v, "navercommerce/token/"); strings.Join(got, ",") != "leased/" {
		t.Errorf("leases under navercommerce/token/: %v, want only leased/", got)
	}

	// The CLI shows the same: no lease.
	out := v.cli(t, "read", "-format=json", "navercommerce/token/free")
	var cli struct {
		LeaseID       string         `json:"lease_id"`
		LeaseDuration int            `json:"lease_duration"`
		Renewable     bool           `json:"renewable"`
		Data          map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &cli); err != nil {
		t.Fatalf("vault read -format=json: %v", err)
	}
	tok, _ := cli.Data["access_token"].(string)
	noteSecret(tok, "an access token")
	if cli.LeaseID != "" || cli.LeaseDuration != 0 || cli.Renewable || tok != free.AccessToken {
		t.Errorf("vault read navercommerce/token/free: lease_id %q, lease_duration %d, renewable %v, same token %v",
			cli.LeaseID, cli.LeaseDuration, cli.Renewable, tok == free.AccessToken)
	}
	for _, field := range []string{"expires_at", "expires_in", "token_type", "type", "account_id"} {
		if _, ok := cli.Data[field]; !ok {
			t.Errorf("vault read navercommerce/token/free has no %s", field)
		}
	}
}

// TestLeaseFreeAgent: Vault Agent on a lease-free role re-reads it every
// static_secret_render_interval and renders a new token before the old one expires. With
// 40-second tokens the emulator reissues once less than 30 s are left (Naver's 30 minutes,
// scaled down). The plugin's window is fixed at 30 minutes, so these tokens are always in it;
// it hands out the cached token while it has 10 s or more left (or for a minute after
// fetching it) and asks the emulator at the next read after that. The agent, reading every
// ~5 s (0.85-0.95 of the interval), renders the new token within the old one's last 10 s.
func TestLeaseFreeAgent(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{TokenLifetime: 40 * time.Second, ReuseThreshold: 30 * time.Second})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/free", "type=SELLER", "account_id=ncp_agent_free", "lease=false")

	dir := mkdir(t, testDir(t, "rendered"))
	file := filepath.Join(dir, "token.txt")
	agent := startAgentWithTemplateConfig(t, v, `static_secret_render_interval = "5s"`,
		agentTemplate{Contents: `{{ with secret "navercommerce/token/free" }}{{ .Data.access_token }}{{ end }}`, Destination: file})

	first := agent.waitFile(t, file, 30*time.Second)
	firstSeen := time.Now()
	noteSecret(first, "an access token rendered by the agent")
	if !em.valid(t, first) {
		t.Fatalf("the agent rendered a token the emulator does not accept")
	}
	second := agent.waitFile(t, file, 40*time.Second, first)
	secondSeen := time.Now()
	noteSecret(second, "an access token rendered by the agent")
	firstStillValid := em.valid(t, first)
	if !em.valid(t, second) {
		t.Fatalf("the agent re-rendered a token the emulator does not accept")
	}
	if !firstStillValid {
		t.Fatalf("the agent replaced the token %s after first rendering it, after it had expired", secondSeen.Sub(firstSeen).Round(100*time.Millisecond))
	}
	t.Logf("the agent replaced the 40-second lease-free token %s after first rendering it", secondSeen.Sub(firstSeen).Round(100*time.Millisecond))

	if got := leaseKeys(t, v, "navercommerce/token/free/"); len(got) != 0 {
		t.Errorf("the agent's reads of a lease-free role left leases: %v", got)
	}
	if log := agent.proc.tail(1000); strings.Contains(log, "[ERROR]") {
		t.Errorf("the agent logged errors:\n%s", strings.Join(errorLines(log), "\n"))
	}
	if st := em.stats(t); len(st.Violations) > 0 {
		t.Errorf("the emulator recorded violations: %v", st.Violations)
	}
}

// leaseKeys lists sys/leases/lookup/<prefix>: lease IDs, and sub-prefixes ending in "/".
func leaseKeys(t *testing.T, v *vaultProc, prefix string) []string {
	t.Helper()
	s, err := v.api.Logical().List("sys/leases/lookup/" + prefix)
	if err != nil {
		t.Fatalf("list sys/leases/lookup/%s: %v", prefix, err)
	}
	if s == nil {
		return nil // Vault answers 404 when there is no lease under the prefix
	}
	raw, _ := s.Data["keys"].([]any)
	keys := make([]string, 0, len(raw))
	for _, k := range raw {
		keys = append(keys, fmt.Sprint(k))
	}
	return keys
}
