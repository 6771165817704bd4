package harness

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// serverBin is the server binary named in VAULT_BIN or BAO_BINARY (as `make
// acceptance-test` sets them), and which server it is; the tests that need one are
// skipped without it.
func serverBin(t *testing.T) (string, Server) {
	t.Helper()
	bin, from := ServerBinFromEnv()
	if bin == "" {
		t.Skip("needs VAULT_BIN (a vault binary; `make vault` prints the pinned one) or BAO_BINARY (an OpenBao bao)")
	}
	server, _, err := DetectServer(bin)
	if err != nil {
		t.Fatalf("%s: %v", from, err)
	}
	return bin, server
}

func TestStartInitialisedVaultRaft(t *testing.T) {
	bin, server := serverBin(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	var g Group
	defer g.StopAll(5 * time.Second)
	v, err := StartInitialisedVault(&g, VaultOptions{Bin: bin, Server: server, Dir: filepath.Join(dir, "vault"), LogLevel: "warn"}, RaftStorage(data, "test"))
	if err != nil {
		t.Fatal(err)
	}
	if v.Token == "" || v.UnsealKey == "" {
		t.Fatalf("token %v, unseal key %v", v.Token != "", v.UnsealKey != "")
	}
	h, err := v.API.Sys().Health()
	if err != nil || !h.Initialized || h.Sealed || h.Standby {
		t.Fatalf("health %+v, %v: want initialised, unsealed, active", h, err)
	}
	// The client carries the root token: a privileged call works, through the API and the CLI.
	if _, err := v.API.Sys().ListMounts(); err != nil {
		t.Fatal(err)
	}
	if out, err := v.CLI("secrets", "list"); err != nil || !strings.Contains(out, "sys/") {
		t.Fatalf("vault secrets list: %v: %s", err, out)
	}
	if err := v.Stop(10 * time.Second); err != nil || !v.Proc.Exited() {
		t.Fatalf("stop: %v", err)
	}
}

func TestStartInitialisedVaultFailsFast(t *testing.T) {
	bin, server := serverBin(t)
	dir := t.TempDir()
	start := time.Now()
	// A storage type Vault does not know: the server exits at once.
	_, err := StartInitialisedVault(nil, VaultOptions{Bin: bin, Server: server, Dir: dir}, `storage "nonesuch" {}`)
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("want the server's exit, got %v", err)
	}
	if time.Since(start) > 30*time.Second {
		t.Fatalf("took %s to notice the exit", time.Since(start))
	}
}
