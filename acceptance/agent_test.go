//go:build acceptance

package acceptance

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVaultAgentRendersToken: Vault Agent renders the token into a file with a template, and,
// with short-lived tokens, renders a new valid token before the old one expires (the lease
// is the token's remaining life, and Agent fetches a non-renewable secret again at 85-95%
// of its lease).
func TestVaultAgentRendersToken(t *testing.T) {
	t.Parallel()
	// Three-hour tokens on navercommerce/, 40-second tokens on navercommerce-short/. The short
	// emulator reissues a token with less than 30 s left; the plugin's own window is fixed at
	// 30 minutes, so every read after the first 10 s asks it.
	em := startEmulator(t, emulatorOpts{})
	short := startEmulator(t, emulatorOpts{TokenLifetime: 40 * time.Second, ReuseThreshold: 30 * time.Second})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/x", "type=SELLER", "account_id=ncp_agent")
	v.enable(t, "navercommerce-short")
	v.configure(t, "navercommerce-short", short)
	v.write(t, "navercommerce-short/roles/x", "type=SELLER", "account_id=ncp_agent_short")

	dir := mkdir(t, testDir(t, "rendered"))
	longFile, shortFile := filepath.Join(dir, "token.txt"), filepath.Join(dir, "short-token.txt")
	started := time.Now()
	agent := startAgent(t, v,
		agentTemplate{Contents: `{{ with secret "navercommerce/token/x" }}{{ .Data.access_token }}{{ end }}`, Destination: longFile},
		agentTemplate{Contents: `{{ with secret "navercommerce-short/token/x" }}{{ .Data.access_token }}{{ end }}`, Destination: shortFile},
	)

	long := agent.waitFile(t, longFile, 30*time.Second)
	noteSecret(long, "an access token rendered by the agent")
	if !em.valid(t, long) {
		t.Fatalf("the agent rendered a token the emulator does not accept")
	}
	if status, body := em.callAPI(t, long); status != 200 || body["accountId"] != "ncp_agent" {
		t.Fatalf("the emulator's API answered %d %v to the rendered token", status, body)
	}

	first := agent.waitFile(t, shortFile, 30*time.Second)
	firstSeen := time.Now()
	noteSecret(first, "an access token rendered by the agent")
	if !short.valid(t, first) {
		t.Fatalf("the agent rendered a short-lived token the emulator does not accept")
	}
	t.Logf("first short-lived token rendered %s after the agent started", firstSeen.Sub(started).Round(100*time.Millisecond))

	// The first token expires at most 40 s after it was rendered; the agent must replace it
	// before. Poll the file, and check the old token the moment the new one appears.
	second := agent.waitFile(t, shortFile, 40*time.Second, first)
	secondSeen := time.Now()
	noteSecret(second, "an access token rendered by the agent")
	firstStillValid := short.valid(t, first)
	if !short.valid(t, second) {
		t.Fatalf("the agent re-rendered a token the emulator does not accept")
	}
	if !firstStillValid {
		t.Fatalf("the agent replaced the token %s after it was first seen, after it had already expired", secondSeen.Sub(firstSeen).Round(100*time.Millisecond))
	}
	t.Logf("the agent replaced the 40-second token %s after first rendering it", secondSeen.Sub(firstSeen).Round(100*time.Millisecond))

	// The long-lived token was not touched in the meantime.
	if now := agent.waitFile(t, longFile, time.Second); now != long {
		t.Errorf("the agent re-rendered the three-hour token within a minute")
	}
	if n := em.stats(t).Keys[em.key("SELLER", "ncp_agent")].Requests; n != 1 {
		t.Errorf("the three-hour token was requested %d times, want 1", n)
	}
	// The agent must not have given up on anything.
	if log := agent.proc.tail(1000); strings.Contains(log, "[ERROR]") {
		t.Errorf("the agent logged errors:\n%s", strings.Join(errorLines(log), "\n"))
	}
}
