package harness

import (
	"fmt"
	"os"
	"strings"
)

// Server is which server a binary is: HashiCorp Vault (the default) or OpenBao, the Linux
// Foundation fork. Both serve the same HTTP API and run the same plugins; they differ in
// the CLI's name, the environment the CLI reads, the version line and a few defaults.
type Server int

const (
	ServerVault Server = iota
	ServerOpenBao
)

func (s Server) String() string {
	if s == ServerOpenBao {
		return "OpenBao"
	}
	return "Vault"
}

// CLI is the command's name as users type it.
func (s Server) CLI() string {
	if s == ServerOpenBao {
		return "bao"
	}
	return "vault"
}

// ClientEnv is the environment that points a CLI or agent of s at addr with token. OpenBao
// reads BAO_ADDR and BAO_TOKEN and falls back to the VAULT_ names; both are set, so a child
// that reads either finds the test's server.
func (s Server) ClientEnv(addr, token string) []string {
	env := []string{"VAULT_ADDR=" + addr, "VAULT_TOKEN=" + token}
	if s == ServerOpenBao {
		env = append(env, "BAO_ADDR="+addr, "BAO_TOKEN="+token)
	}
	return env
}

// PluginReloadArgs are the CLI arguments that reload every mount of the secrets plugin name:
// Vault's `plugin reload` takes the plugin's type, OpenBao's (v2.6) has no -type flag.
func (s Server) PluginReloadArgs(name string) []string {
	if s == ServerOpenBao {
		return []string{"plugin", "reload", "-plugin=" + name}
	}
	return []string{"plugin", "reload", "-type=secret", "-plugin=" + name}
}

// extraConfig is what s needs in every server config to run the acceptance suite.
func (s Server) extraConfig() string {
	if s == ServerOpenBao {
		// OpenBao refuses to enable audit devices through the API unless told otherwise
		// (it wants them declared in the config); the tests enable one per server.
		return "unsafe_allow_api_audit_creation = true\n"
	}
	return ""
}

// ParseServer tells which server a version line (`vault version`, `bao version`) is from.
func ParseServer(versionLine string) (Server, error) {
	switch {
	case strings.HasPrefix(versionLine, "Vault v"):
		return ServerVault, nil
	case strings.HasPrefix(versionLine, "OpenBao v"):
		return ServerOpenBao, nil
	}
	return 0, fmt.Errorf("%q is neither Vault's nor OpenBao's version line", versionLine)
}

// DetectServer runs bin's version command and tells which server it is, with the version line.
func DetectServer(bin string) (Server, string, error) {
	line, err := Version(bin)
	if err != nil {
		return 0, "", err
	}
	line, _, _ = strings.Cut(line, "\n")
	s, err := ParseServer(line)
	if err != nil {
		return 0, "", fmt.Errorf("%s: %w", bin, err)
	}
	return s, line, nil
}

// ServerBinFromEnv is the server binary the environment names: BAO_BINARY (an OpenBao
// `bao`) when set, else VAULT_BIN; with the name of the variable it came from. Empty when
// neither is set.
func ServerBinFromEnv() (bin, from string) {
	if b := os.Getenv("BAO_BINARY"); b != "" {
		return b, "BAO_BINARY"
	}
	return os.Getenv("VAULT_BIN"), "VAULT_BIN"
}
