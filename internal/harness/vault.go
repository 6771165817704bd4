package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
)

// Plugin is a secrets plugin binary to run in a Vault server.
type Plugin struct {
	Name    string // the name it is registered and mounted under (and its file name)
	Bin     string // where the binary is
	Version string // the version it reports (RunningVersion), registered with it
	SHA256  string // of the copy in the server's plugin directory; set by NewVault
}

// VaultOptions says how to prepare a Vault server.
type VaultOptions struct {
	Bin      string    // the vault (or OpenBao bao) binary
	Server   Server    // which server Bin is; the zero value is Vault
	Dir      string    // the server's directory (created): config, logs, plugins/, home/
	Plugins  []*Plugin // copied into Dir/plugins (Vault runs only binaries directly inside plugin_directory)
	LogLevel string    // default "debug"
	// Env is more environment for the server and so its plugin processes (say HTTPS_PROXY,
	// SSL_CERT_FILE), after ours without VAULT_* settings and HOME.
	Env []string
	// DropProxyEnv leaves the proxy and CA settings of our environment out (HTTP_PROXY,
	// HTTPS_PROXY, NO_PROXY, ALL_PROXY, REQUEST_METHOD, SSL_CERT_FILE, SSL_CERT_DIR, in any
	// case), so that the server sees only Env's.
	DropProxyEnv bool
}

// Vault is a Vault server: prepared by NewVault, configured by WriteDevConfig or
// WriteServerConfig, run by Start.
type Vault struct {
	Bin          string
	Server       Server
	Dir          string
	Port         int    // the API listener; the cluster listener takes Port+1
	Addr         string // http://127.0.0.1:Port
	Config       string // the server's config file
	PluginDir    string
	HomeDir      string // HOME of the server and the CLI: a dev server writes ~/.vault-token
	LogLevel     string
	Env          []string // see VaultOptions
	DropProxyEnv bool     // see VaultOptions
	Dev          bool
	Token        string // the root token
	UnsealKey    string // the one unseal key (base64) of a server Init initialised
	Proc         *Proc  // the current run
	API          *api.Client
	Starts       int // how many times Start ran; run n logs to vault-n.log
}

// NewVault prepares a server's directory, with a copy of each plugin in its plugin directory
// (Plugin.SHA256 is set from the copy), and picks its ports. It starts nothing.
func NewVault(opts VaultOptions) (*Vault, error) {
	v := &Vault{
		Bin: opts.Bin, Server: opts.Server, Dir: opts.Dir, LogLevel: opts.LogLevel, Env: opts.Env, DropProxyEnv: opts.DropProxyEnv,
		PluginDir: filepath.Join(opts.Dir, "plugins"),
		HomeDir:   filepath.Join(opts.Dir, "home"),
		Config:    filepath.Join(opts.Dir, "server.hcl"),
	}
	if v.LogLevel == "" {
		v.LogLevel = "debug"
	}
	for _, d := range []string{v.PluginDir, v.HomeDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("preparing a Vault server: %w", err)
		}
	}
	for _, p := range opts.Plugins {
		if err := v.copyPlugin(p); err != nil {
			return nil, err
		}
	}
	var err error
	if v.Port, err = FreePortPair(); err != nil {
		return nil, err
	}
	v.Addr = fmt.Sprintf("http://127.0.0.1:%d", v.Port)
	return v, nil
}

func (v *Vault) copyPlugin(p *Plugin) error {
	bin, err := os.ReadFile(p.Bin)
	if err != nil {
		return fmt.Errorf("reading the plugin %s: %w", p.Name, err)
	}
	if err := os.WriteFile(filepath.Join(v.PluginDir, p.Name), bin, 0o755); err != nil {
		return fmt.Errorf("copying the plugin %s: %w", p.Name, err)
	}
	sum := sha256.Sum256(bin)
	p.SHA256 = hex.EncodeToString(sum[:])
	return nil
}

// WriteDevConfig makes v a dev server (`vault server -dev`: in-memory storage, unsealed,
// root token Token, a random one if empty) whose config names only the plugin directory.
func (v *Vault) WriteDevConfig() error {
	v.Dev = true
	if v.Token == "" {
		v.Token = "root-" + RandomHex(8)
	}
	return writeConfig(v.Config, fmt.Sprintf("plugin_directory = %q\n%s", v.PluginDir, v.Server.extraConfig()))
}

// WriteServerConfig makes v a non-dev server: stanzas (storage, telemetry, ...) followed by
// a plain-HTTP loopback listener on Port (cluster port Port+1) and the plugin directory.
func (v *Vault) WriteServerConfig(stanzas string) error {
	v.Dev = false
	return writeConfig(v.Config, fmt.Sprintf(`%s
listener "tcp" {
  address         = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  tls_disable     = true
}
api_addr         = %q
cluster_addr     = "https://127.0.0.1:%d"
disable_mlock    = true
plugin_directory = %q
%s`, stanzas, v.Port, v.Port+1, v.Addr, v.Port+1, v.PluginDir, v.Server.extraConfig()))
}

func writeConfig(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		return fmt.Errorf("writing the Vault config: %w", err)
	}
	return nil
}

// RaftStorage is the storage stanza of a server with integrated storage in dataDir. Short
// autopilot intervals and performance_multiplier 1: elections and voter promotion take
// about a second instead of ten.
func RaftStorage(dataDir, nodeID string) string {
	return fmt.Sprintf(`storage "raft" {
  path                         = %q
  node_id                      = %q
  performance_multiplier       = 1
  autopilot_reconcile_interval = "1s"
  autopilot_update_interval    = "500ms"
}`, dataDir, nodeID)
}

// FileStorage is the storage stanza of a server with file storage in dataDir.
func FileStorage(dataDir string) string {
	return fmt.Sprintf("storage \"file\" {\n  path = %q\n}", dataDir)
}

// LogPath is the log of the server's current (or next) run.
func (v *Vault) LogPath() string {
	return filepath.Join(v.Dir, fmt.Sprintf("vault-%d.log", max(v.Starts, 1)))
}

// Start runs the server (again), with a new API client, and waits until it answers
// sys/health; a dev server also until it is unsealed and active. If it does not come up,
// it is stopped again.
func (v *Vault) Start(g *Group) error {
	v.Starts++
	args := []string{"server", "-config=" + v.Config, "-log-level=" + v.LogLevel}
	if v.Dev {
		args = append(args, "-dev", "-dev-root-token-id="+v.Token, fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", v.Port))
	}
	p, err := g.Start(v.Server.CLI()+" server", v.LogPath(), v.serverEnv(), v.Bin, args...)
	if err != nil {
		return err
	}
	v.Proc = p
	if v.API, err = NewClient(v.Addr, v.Token); err != nil {
		_ = p.Stop(DefaultStopTimeout)
		return err
	}
	what := v.Server.String() + " at " + v.Addr + " to answer sys/health"
	if v.Dev {
		what = "the dev " + v.Server.String() + " at " + v.Addr + " to become active"
	}
	err = WaitFor(60*time.Second, 50*time.Millisecond, what, func() (bool, error) {
		if err := v.exitError(); err != nil {
			return false, Permanent(err)
		}
		h, err := v.API.Sys().Health()
		if err != nil {
			return false, err
		}
		return !v.Dev || (h.Initialized && !h.Sealed && !h.Standby), healthError(h)
	})
	if err != nil {
		_ = p.Stop(DefaultStopTimeout)
		return err
	}
	return nil
}

// serverEnv is the environment Start runs the server with.
func (v *Vault) serverEnv() []string {
	env := ChildEnv("HOME=" + v.HomeDir)
	if v.DropProxyEnv {
		env = withoutProxySettings(env)
	}
	return append(env, v.Env...)
}

// withoutProxySettings drops proxy and CA settings (any case) from env.
func withoutProxySettings(env []string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(name) {
		case "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "REQUEST_METHOD", "SSL_CERT_FILE", "SSL_CERT_DIR":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// exitError says that the server has exited, with its log's tail, or is nil.
func (v *Vault) exitError() error {
	if v.Proc == nil || !v.Proc.Exited() {
		return nil
	}
	return fmt.Errorf("%s server %s exited: %v\n%s", v.Server.CLI(), v.Addr, v.Proc.Err(), v.Proc.Tail(30))
}

func healthError(h *api.HealthResponse) error {
	return fmt.Errorf("initialized %v, sealed %v, standby %v", h.Initialized, h.Sealed, h.Standby)
}

// Stop stops the server: SIGTERM, then SIGKILL to its process group after timeout.
func (v *Vault) Stop(timeout time.Duration) error {
	if v.Proc == nil {
		return nil
	}
	return v.Proc.Stop(timeout)
}

// Init initialises a new non-dev server with one key share and sets Token and UnsealKey.
func (v *Vault) Init() error {
	resp, err := v.API.Sys().Init(&api.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		return fmt.Errorf("initialising Vault at %s: %w", v.Addr, err)
	}
	if len(resp.KeysB64) != 1 || resp.RootToken == "" {
		return fmt.Errorf("initialising Vault at %s: got %d unseal keys and a root token %v", v.Addr, len(resp.KeysB64), resp.RootToken != "")
	}
	v.UnsealKey, v.Token = resp.KeysB64[0], resp.RootToken
	v.API.SetToken(v.Token)
	return nil
}

// Unseal unseals the server with UnsealKey and waits until it is active. (A node that
// joined a cluster becomes a standby instead: unseal it with the CLI and wait for that.)
func (v *Vault) Unseal() error {
	if _, err := v.API.Sys().Unseal(v.UnsealKey); err != nil {
		return fmt.Errorf("unsealing Vault at %s: %w", v.Addr, err)
	}
	return v.WaitActive(60 * time.Second)
}

// WaitActive waits until the server is initialised, unsealed and active.
func (v *Vault) WaitActive(timeout time.Duration) error {
	return WaitFor(timeout, 50*time.Millisecond, "Vault at "+v.Addr+" to become active", func() (bool, error) {
		if err := v.exitError(); err != nil {
			return false, Permanent(err)
		}
		h, err := v.API.Sys().Health()
		if err != nil {
			return false, err
		}
		return h.Initialized && !h.Sealed && !h.Standby, healthError(h)
	})
}

// CLI runs the server's CLI (vault or bao) against the server with the root token and returns its standard
// output, or an error with its standard error (and output). It is killed after two minutes.
func (v *Vault) CLI(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, v.Bin, args...)
	// WaitDelay: a child that kept the output pipes open must not hold Run past the timeout.
	cmd.WaitDelay = 5 * time.Second
	cmd.Env = ChildEnv(append(v.Server.ClientEnv(v.Addr, v.Token), "HOME="+v.HomeDir)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		return stdout.String(), fmt.Errorf("timed out: %s", stderr.String())
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%w: %s%s", err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// RegisterPlugin registers p (a copy NewVault made) as a secrets plugin by its SHA-256 and
// version.
func (v *Vault) RegisterPlugin(p *Plugin) error {
	if err := v.API.Sys().RegisterPlugin(&api.RegisterPluginInput{
		Name: p.Name, Type: api.PluginTypeSecrets, Command: p.Name, SHA256: p.SHA256, Version: p.Version,
	}); err != nil {
		return fmt.Errorf("registering %s %s: %w", p.Name, p.Version, err)
	}
	return nil
}

// EnablePlugin mounts the registered version of p at path.
func (v *Vault) EnablePlugin(path string, p *Plugin) error {
	if err := v.API.Sys().Mount(path, &api.MountInput{
		Type: p.Name, Config: api.MountConfigInput{PluginVersion: p.Version},
	}); err != nil {
		return fmt.Errorf("mounting %s %s at %s/: %w", p.Name, p.Version, path, err)
	}
	return nil
}

// StartDevVault prepares and starts a dev server with opts.Plugins in its plugin directory
// (not registered: see RegisterPlugin).
func StartDevVault(g *Group, opts VaultOptions) (*Vault, error) {
	v, err := NewVault(opts)
	if err != nil {
		return nil, err
	}
	if err := v.WriteDevConfig(); err != nil {
		return nil, err
	}
	if err := v.Start(g); err != nil {
		return nil, err
	}
	return v, nil
}

// StartInitialisedVault prepares and starts a non-dev server with the given storage stanza
// (RaftStorage, FileStorage) and any other stanzas, then initialises and unseals it. On an
// error nothing is left running.
func StartInitialisedVault(g *Group, opts VaultOptions, stanzas string) (*Vault, error) {
	v, err := NewVault(opts)
	if err != nil {
		return nil, err
	}
	if err := v.WriteServerConfig(stanzas); err != nil {
		return nil, err
	}
	if err := v.Start(g); err != nil {
		return nil, err
	}
	err = v.Init()
	if err == nil {
		err = v.Unseal()
	}
	if err != nil {
		_ = v.Stop(DefaultStopTimeout)
		return nil, err
	}
	return v, nil
}

// NewClient returns a vault/api client for addr with token: HTTP/1.1 keep-alive with
// enough idle connections for a load of 256 concurrent requests, no proxy, no retries, no
// rate limiter, no namespace, whatever VAULT_* variables are set.
func NewClient(addr, token string) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault client: %w", cfg.Error)
	}
	tr := cfg.HttpClient.Transport.(*http.Transport)
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 256
	tr.MaxConnsPerHost = 0
	tr.DisableKeepAlives = false
	tr.ForceAttemptHTTP2 = false
	tr.Proxy = nil
	cfg.Address = addr
	cfg.Timeout = 60 * time.Second
	cfg.MaxRetries = 0
	cfg.Limiter = nil
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault client: %w", err)
	}
	c.ClearNamespace()
	c.SetToken(token)
	return c, nil
}

// Version is `vault version` (or `bao version`) of bin.
func Version(bin string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "version")
	cmd.Env = ChildEnv()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s version: %w", bin, err)
	}
	return strings.TrimSpace(string(out)), nil
}
