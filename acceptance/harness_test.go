//go:build acceptance

// Package acceptance runs the plugin inside a real Vault server (and Vault Agent) against the
// Naver emulator running as a separate process. See README.md in this directory.
package acceptance

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/internal/harness"
	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

const pluginName = "vault-plugin-secrets-navercommerce"

// env is what `make acceptance-test` passes in.
type env struct {
	// vaultBin is the server binary: VAULT_BIN, or BAO_BINARY for OpenBao; server says which.
	vaultBin, pluginBin, pluginVersion, emulatorBin string
	server                                          harness.Server
}

// servers remembers which server each binary is (its version line), asked once per run.
var servers sync.Map // bin → detected

type detected struct {
	once   sync.Once
	server harness.Server
	err    error
}

// requireEnv skips the test unless the binaries it needs are named in the environment.
func requireEnv(t *testing.T) env {
	t.Helper()
	bin, binVar := harness.ServerBinFromEnv()
	e := env{
		vaultBin:      bin,
		pluginBin:     os.Getenv("PLUGIN_BIN"),
		pluginVersion: os.Getenv("PLUGIN_VERSION"),
		emulatorBin:   os.Getenv("EMULATOR_BIN"),
	}
	var missing []string
	for name, v := range map[string]string{"VAULT_BIN (or BAO_BINARY)": e.vaultBin, "PLUGIN_BIN": e.pluginBin, "PLUGIN_VERSION": e.pluginVersion, "EMULATOR_BIN": e.emulatorBin} {
		if v == "" {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Skipf("acceptance tests need %s; run them with `make acceptance-test`", strings.Join(missing, ", "))
	}
	v, _ := servers.LoadOrStore(bin, &detected{})
	d := v.(*detected)
	d.once.Do(func() { d.server, _, d.err = harness.DetectServer(bin) })
	if d.err != nil {
		t.Fatalf("%s=%s: %v", binVar, bin, d.err)
	}
	e.server = d.server
	return e
}

// testDir is where a test's processes keep their files and logs: a fresh temporary
// directory, or a directory under $ACCEPTANCE_LOG_DIR that outlives the run.
func testDir(t *testing.T, name string) string {
	t.Helper()
	base := os.Getenv("ACCEPTANCE_LOG_DIR")
	if base == "" {
		return filepath.Join(t.TempDir(), name)
	}
	dir := filepath.Join(base, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()), name)
	_ = os.RemoveAll(dir)
	return dir
}

func mkdir(t *testing.T, dir string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ---------------------------------------------------------------------------------------
// Secrets hygiene: every test records the log files its Vault servers and agents write
// and every secret it handled; when the test ends (after its processes stopped), no log
// may contain any of them.

type hygieneRun struct {
	mu   sync.Mutex
	logs []string
}

var (
	hygieneRuns sync.Map // *testing.T → *hygieneRun
	// secrets holds every secret any test handled (value → what it is, never printed), so
	// a log is checked also for the secrets its test's subtests handled.
	secrets sync.Map
)

func init() {
	// base64 of "$2a$04$": the start of any client_secret_sign made with a cost-4 secret.
	noteSecret("JDJhJDA0J", "a client_secret_sign (base64 of $2a$04$)")
}

// noteSecret adds a value no log may contain.
func noteSecret(value, what string) {
	if value != "" {
		secrets.Store(value, what)
	}
}

// noteClientSecret records a client secret, the salt inside it, and the base64 prefix every
// signature made with it starts with (the first 27 bytes of the 60-byte bcrypt string are
// the secret's first 27 characters).
func noteClientSecret(secret string) {
	noteSecret(secret, "a client secret")
	if len(secret) == 29 {
		noteSecret(secret[7:], "a client secret's salt")
		noteSecret(base64.StdEncoding.EncodeToString([]byte(secret[:27])), "a client_secret_sign")
	}
}

// hygiene returns the test's record of log files, registering the final scan on first
// use. Every helper that starts a process calls it before registering its own cleanup, so
// the scan runs after every process of the test has stopped and flushed its log.
func hygiene(t *testing.T) *hygieneRun {
	t.Helper()
	if h, ok := hygieneRuns.Load(t); ok {
		return h.(*hygieneRun)
	}
	h := &hygieneRun{}
	hygieneRuns.Store(t, h)
	// The test's temporary directory holds the logs: create it now, so that its removal
	// (a cleanup of its own) runs after the scan.
	_ = t.TempDir()
	t.Cleanup(func() {
		hygieneRuns.Delete(t)
		h.check(t)
	})
	return h
}

func (h *hygieneRun) addLog(path string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs = append(h.logs, path)
}

func (h *hygieneRun) check(t *testing.T) {
	h.mu.Lock()
	defer h.mu.Unlock()
	checked, known := 0, 0
	secrets.Range(func(any, any) bool { known++; return true })
	for _, path := range h.logs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("secrets hygiene: %v", err)
			continue
		}
		checked++
		secrets.Range(func(value, what any) bool {
			if n := bytes.Count(data, []byte(value.(string))); n > 0 {
				t.Errorf("secrets hygiene: %s contains %s (%d times)", filepath.Base(path), what, n)
			}
			return true
		})
	}
	if checked > 0 {
		t.Logf("secrets hygiene: %d log files free of %d known secrets", checked, known)
	}
}

// ---------------------------------------------------------------------------------------
// Processes: thin t.Fatal wrappers over internal/harness, which the benchmark uses too.

// proc is a child process whose output goes to a log file. It runs in its own process
// group, so stopping it also stops what it started (Vault's plugin processes).
type proc struct {
	hp      *harness.Proc
	name    string
	logPath string
	err     error // how it exited; set when exited or stop saw it exit
}

func wrapProc(hp *harness.Proc) *proc {
	return &proc{hp: hp, name: hp.Name, logPath: hp.LogPath}
}

func startProc(t *testing.T, name, logPath string, env []string, bin string, args ...string) *proc {
	t.Helper()
	hp, err := harness.StartProc(name, logPath, env, bin, args...)
	if err != nil {
		t.Fatal(err)
	}
	return wrapProc(hp)
}

func (p *proc) exited() bool {
	if p.hp.Exited() {
		p.err = p.hp.Err()
		return true
	}
	return false
}

// stop sends SIGTERM, waits for a clean exit, and kills the process group if it hangs.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.hp.Stop(harness.DefaultStopTimeout); err != nil {
		t.Error(err)
	}
	p.err = p.hp.Err()
}

// tail returns the last n lines of the process's log, for failure messages.
func (p *proc) tail(n int) string { return p.hp.Tail(n) }

// cleanupProc stops p when the test ends and prints its log tail if the test failed.
func cleanupProc(t *testing.T, p *proc) {
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("last lines of %s (%s):\n%s", p.name, p.logPath, p.tail(40))
		}
	})
}

// childEnv is the environment of child processes: ours without VAULT_* settings (a user's
// VAULT_ADDR or VAULT_TOKEN must not leak into the test) plus extra.
func childEnv(extra ...string) []string { return harness.ChildEnv(extra...) }

// waitFor polls cond every interval until it returns true or the deadline passes; cond may
// give a reason beside false, which the failure names.
func waitFor(t *testing.T, timeout, interval time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	if err := harness.WaitFor(timeout, interval, what, cond); err != nil {
		t.Fatal(err)
	}
}

func randomHex(n int) string { return harness.RandomHex(n) }

// newClientSecret returns a random bcrypt salt of cost 4, as Naver issues them, and
// records it for the secrets hygiene scan.
func newClientSecret() string {
	secret := harness.NewClientSecret()
	noteClientSecret(secret)
	return secret
}

// ---------------------------------------------------------------------------------------
// The Naver emulator, as a separate process.

type emulatorOpts struct {
	ClientID       string // default: a random one
	ClientSecret   string // default: a random cost-4 salt
	AccountIDs     []string
	TokenLifetime  time.Duration // default: the emulator's (3h)
	ReuseThreshold time.Duration // default: the emulator's (30m)
	TLS            bool          // serve HTTPS with a fresh certificate (emulator.CertFile)
	TLSHostname    string        // one more DNS name in the certificate (needs TLS)
	ExtraArgs      []string      // more flags, e.g. "-penalty=false"
}

type emulator struct {
	ClientID, ClientSecret string
	URL                    string // base URL the plugin is configured with (…/external)
	Root                   string // where /_emulator/ lives
	CertFile               string // with TLS: the certificate's PEM, e.g. for SSL_CERT_FILE
	proc                   *proc
	he                     *harness.Emulator
}

func startEmulator(t *testing.T, opts emulatorOpts) *emulator {
	t.Helper()
	e := requireEnv(t)
	hygiene(t)
	if opts.ClientSecret == "" {
		opts.ClientSecret = newClientSecret()
	}
	noteClientSecret(opts.ClientSecret)
	dirName := "emulator-"
	if opts.TLS {
		dirName = "emulator-tls-"
	}
	he, err := harness.StartEmulator(nil, harness.EmulatorOptions{
		Bin:            e.emulatorBin,
		Dir:            testDir(t, dirName+randomHex(3)),
		ClientID:       opts.ClientID,
		ClientSecret:   opts.ClientSecret,
		AccountIDs:     opts.AccountIDs,
		TokenLifetime:  opts.TokenLifetime,
		ReuseThreshold: opts.ReuseThreshold,
		TLS:            opts.TLS,
		TLSHostname:    opts.TLSHostname,
		ExtraArgs:      opts.ExtraArgs,
	})
	if err != nil {
		t.Fatal(err)
	}
	p := wrapProc(he.Proc)
	cleanupProc(t, p)
	t.Cleanup(he.HTTP.CloseIdleConnections)
	return &emulator{ClientID: he.ClientID, ClientSecret: he.ClientSecret, URL: he.URL, Root: he.Root, CertFile: he.CertFile, proc: p, he: he}
}

// emuStats is GET /_emulator/stats.
type emuStats = navercommercetest.Stats

// key names a token key the way the emulator's stats do.
func (em *emulator) key(typ, accountID string) string { return em.he.Key(typ, accountID) }

func (em *emulator) stats(t *testing.T) emuStats {
	t.Helper()
	st, err := em.he.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (em *emulator) reset(t *testing.T) {
	t.Helper()
	em.admin(t, http.MethodPost, "reset", "", nil, nil)
}

// fault queues a fault for the next token requests (see navercommercetest.Fault).
func (em *emulator) fault(t *testing.T, f map[string]any) {
	t.Helper()
	if err := em.he.AdminJSON(http.MethodPost, "faults", f, nil); err != nil {
		t.Fatal(err)
	}
}

// valid asks the emulator whether it accepts token right now.
func (em *emulator) valid(t *testing.T, token string) bool {
	t.Helper()
	var out struct {
		Valid bool `json:"valid"`
	}
	em.admin(t, http.MethodPost, "verify", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"token": {token}}.Encode()), &out)
	return out.Valid
}

// callAPI calls the emulator's protected API with token, as an application would, and
// returns the status and the account the token belongs to.
func (em *emulator) callAPI(t *testing.T, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, em.URL+"/v1/seller/account", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := em.he.HTTP.Do(req)
	if err != nil {
		t.Fatalf("calling the emulator's API: %v", err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func (em *emulator) admin(t *testing.T, method, path, contentType string, body io.Reader, out any) {
	t.Helper()
	if err := em.he.Admin(method, path, contentType, body, out); err != nil {
		t.Fatal(err)
	}
}

// ---------------------------------------------------------------------------------------
// Vault servers.

// vaultProc is a Vault server of a test (a harness.Vault). token and unsealKey are the
// test's to set (the Raft test shares one cluster's across its nodes); every call into the
// harness uses them.
type vaultProc struct {
	env       env
	h         *hygieneRun
	hv        *harness.Vault
	plugin    *harness.Plugin // the plugin copy in pluginDir, registered under PLUGIN_VERSION
	dir       string
	addr      string // http://127.0.0.1:PORT
	token     string
	unsealKey string
	pluginDir string
	pluginSHA string // SHA-256 of the plugin copy in pluginDir
	proc      *proc  // the current run
	api       *api.Client
}

// vaultOpts are a server's settings beyond the usual.
type vaultOpts struct {
	// Env is more environment for the server and its plugin processes.
	Env []string
	// DropProxyEnv leaves the proxy and CA settings of the test's own environment out, so
	// that the server sees only Env's.
	DropProxyEnv bool
}

// newVault prepares a server's directory with a copy of the plugin binary in its plugin
// directory and picks its ports; a dev server's config is written too.
func newVault(t *testing.T, dev bool) *vaultProc {
	t.Helper()
	return newVaultWith(t, dev, vaultOpts{})
}

// newVaultWith is newVault with opts.
func newVaultWith(t *testing.T, dev bool, opts vaultOpts) *vaultProc {
	t.Helper()
	e := requireEnv(t)
	v := &vaultProc{env: e, h: hygiene(t)}
	v.plugin = &harness.Plugin{Name: pluginName, Bin: e.pluginBin, Version: e.pluginVersion}
	hv, err := harness.NewVault(harness.VaultOptions{
		Bin: e.vaultBin, Server: e.server, Dir: testDir(t, "vault-"+randomHex(3)), Plugins: []*harness.Plugin{v.plugin}, LogLevel: "debug",
		Env: opts.Env, DropProxyEnv: opts.DropProxyEnv,
	})
	if err != nil {
		t.Fatal(err)
	}
	if dev {
		if err := hv.WriteDevConfig(); err != nil {
			t.Fatal(err)
		}
	}
	v.hv = hv
	v.dir, v.addr, v.token, v.pluginDir, v.pluginSHA = hv.Dir, hv.Addr, hv.Token, hv.PluginDir, v.plugin.SHA256
	t.Cleanup(func() {
		if v.proc != nil {
			v.proc.stop(t)
			if t.Failed() {
				t.Logf("last lines of %s:\n%s", v.proc.logPath, v.proc.tail(60))
			}
		}
	})
	return v
}

// server is the harness's server with the test's token and unseal key.
func (v *vaultProc) server() *harness.Vault {
	v.hv.Token, v.hv.UnsealKey = v.token, v.unsealKey
	return v.hv
}

// startDevVault starts `vault server -dev` on a free loopback port, with the plugin in its
// plugin directory but not registered (see registerPlugin).
func startDevVault(t *testing.T) *vaultProc {
	t.Helper()
	return startDevVaultWith(t, vaultOpts{})
}

// startDevVaultWith is startDevVault with opts.
func startDevVaultWith(t *testing.T, opts vaultOpts) *vaultProc {
	t.Helper()
	v := newVaultWith(t, true, opts)
	v.start(t)
	return v
}

// writeServerConfig writes a non-dev server's config: the given storage stanza, a plain-HTTP
// loopback listener (and cluster listener on the next port) and v's plugin directory.
func (v *vaultProc) writeServerConfig(t *testing.T, storage string) {
	t.Helper()
	if err := v.hv.WriteServerConfig(storage); err != nil {
		t.Fatal(err)
	}
}

// startFileVault starts a non-dev server with file storage, then initialises and unseals it.
func startFileVault(t *testing.T) *vaultProc {
	t.Helper()
	v := newVault(t, false)
	v.writeServerConfig(t, harness.FileStorage(mkdir(t, filepath.Join(v.dir, "data"))))
	v.start(t)
	if err := v.server().Init(); err != nil {
		t.Fatal(err)
	}
	v.token, v.unsealKey = v.hv.Token, v.hv.UnsealKey
	noteSecret(v.unsealKey, "the unseal key")
	v.unseal(t)
	return v
}

// start runs the server (again) and waits until it answers sys/health; a dev server also
// until it is unsealed and active. Each start logs to its own file.
func (v *vaultProc) start(t *testing.T) {
	t.Helper()
	hv := v.server()
	err := hv.Start(nil)
	v.h.addLog(hv.LogPath())
	if hv.Proc != nil {
		v.proc = wrapProc(hv.Proc)
	}
	v.api = hv.API
	if err != nil {
		t.Fatal(err)
	}
}

// unseal unseals the server with v.unsealKey and waits until it is active.
func (v *vaultProc) unseal(t *testing.T) {
	t.Helper()
	if err := v.server().Unseal(); err != nil {
		t.Fatal(err)
	}
}

// stop stops the server with SIGTERM and waits for it to exit.
func (v *vaultProc) stop(t *testing.T) {
	t.Helper()
	v.proc.stop(t)
	if v.proc.err != nil && !strings.Contains(v.proc.err.Error(), "signal") {
		t.Errorf("vault server exited with %v", v.proc.err)
	}
}

// logPath is the log of the server's current run.
func (v *vaultProc) logPath() string { return v.proc.logPath }

// cli runs the vault CLI against this server and returns its standard output; the test
// fails if the command does.
func (v *vaultProc) cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := v.cliErr(args...)
	if err != nil {
		t.Fatalf("vault %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// cliErr runs the vault CLI and returns its standard output, or an error with its
// standard error.
func (v *vaultProc) cliErr(args ...string) (string, error) { return v.server().CLI(args...) }

// registerPlugin registers the plugin copy by its SHA-256 under PLUGIN_VERSION.
func (v *vaultProc) registerPlugin(t *testing.T) {
	t.Helper()
	if err := v.server().RegisterPlugin(v.plugin); err != nil {
		t.Fatal(err)
	}
}

// enable mounts the registered plugin version at path.
func (v *vaultProc) enable(t *testing.T, path string) {
	t.Helper()
	if err := v.server().EnablePlugin(path, v.plugin); err != nil {
		t.Fatal(err)
	}
}

// startDevVaultWithEngine is the usual start: a dev server with the plugin registered and
// enabled at navercommerce/.
func startDevVaultWithEngine(t *testing.T) *vaultProc {
	t.Helper()
	v := startDevVault(t)
	v.registerPlugin(t)
	v.enable(t, "navercommerce")
	return v
}

// enableAudit writes an audit log into the test's directory; it is part of the secrets
// hygiene scan.
func (v *vaultProc) enableAudit(t *testing.T) string {
	t.Helper()
	path := filepath.Join(v.dir, "audit.log")
	v.cli(t, "audit", "enable", "file", "file_path="+path)
	v.h.addLog(path)
	return path
}

// configure writes navercommerce-style config at mount for em's application.
func (v *vaultProc) configure(t *testing.T, mount string, em *emulator, extra ...string) {
	t.Helper()
	v.write(t, mount+"/config", append([]string{
		"client_id=" + em.ClientID, "client_secret=" + em.ClientSecret, "base_url=" + em.URL,
	}, extra...)...)
}

// write writes key=value pairs to path through the HTTP API; the test fails on an error.
func (v *vaultProc) write(t *testing.T, path string, kv ...string) *api.Secret {
	t.Helper()
	s, err := v.api.Logical().Write(path, kvMap(kv))
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

func kvMap(kv []string) map[string]any {
	data := make(map[string]any, len(kv))
	for _, p := range kv {
		k, val, _ := strings.Cut(p, "=")
		data[k] = val
	}
	return data
}

// token is a token response as the tests look at it.
type token struct {
	AccessToken   string
	TokenType     string
	ExpiresAt     time.Time
	ExpiresIn     int64
	Type          string
	AccountID     string
	LeaseID       string
	LeaseDuration int
	Renewable     bool
	Warnings      []string
}

// readToken reads mount/token/role through the HTTP API.
func (v *vaultProc) readToken(t *testing.T, mount, role string) token {
	t.Helper()
	tok, err := v.readTokenErr(mount, role)
	if err != nil {
		t.Fatalf("read %s/token/%s: %v", mount, role, err)
	}
	return tok
}

func (v *vaultProc) readTokenErr(mount, role string) (token, error) {
	s, err := v.api.Logical().Read(mount + "/token/" + role)
	if err != nil {
		return token{}, err
	}
	if s == nil {
		return token{}, fmt.Errorf("read %s/token/%s: no response", mount, role)
	}
	return v.parseToken(s)
}

func (v *vaultProc) parseToken(s *api.Secret) (token, error) {
	tok := token{LeaseID: s.LeaseID, LeaseDuration: s.LeaseDuration, Renewable: s.Renewable, Warnings: s.Warnings}
	str := func(k string) string { x, _ := s.Data[k].(string); return x }
	tok.AccessToken = str("access_token")
	noteSecret(tok.AccessToken, "an access token")
	tok.TokenType, tok.Type, tok.AccountID = str("token_type"), str("type"), str("account_id")
	var err error
	if tok.ExpiresAt, err = time.Parse(time.RFC3339, str("expires_at")); err != nil {
		return tok, fmt.Errorf("expires_at %q: %v", str("expires_at"), err)
	}
	switch n := s.Data["expires_in"].(type) {
	case json.Number:
		tok.ExpiresIn, err = n.Int64()
	default:
		err = fmt.Errorf("expires_in is %T %v", n, n)
	}
	if tok.AccessToken == "" {
		return tok, fmt.Errorf("no access_token in %v", keys(s.Data))
	}
	return tok, err
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// requireStatus asserts that err is Vault answering status, with every want in its message.
func requireStatus(t *testing.T, err error, status int, want ...string) {
	t.Helper()
	var re *api.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("want HTTP %d from Vault, got %v", status, err)
	}
	msg := strings.Join(re.Errors, "; ")
	if re.StatusCode != status {
		t.Fatalf("want HTTP %d, got %d: %s", status, re.StatusCode, msg)
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Fatalf("HTTP %d message %q does not mention %q", status, msg, w)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// logSince returns what a log file got after offset (see logSize).
func logSince(t *testing.T, path string, offset int64) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if offset > int64(len(data)) {
		offset = 0
	}
	return string(data[offset:])
}

func logSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

var errorLine = regexp.MustCompile(`(?m)^.*\[ERROR\].*$`)

// errorLines returns the [ERROR] lines of a Vault log excerpt.
func errorLines(log string) []string { return errorLine.FindAllString(log, -1) }

// ---------------------------------------------------------------------------------------
// Vault Agent.

type agentTemplate = harness.AgentTemplate

type agentProc struct {
	proc *proc
	dir  string
}

// startAgent runs `vault agent` against v, authenticating with v's token from a file
// (token_file auto-auth) and rendering templates; exit_on_retry_failure makes a failing
// read end the agent instead of leaving a stale file.
func startAgent(t *testing.T, v *vaultProc, templates ...agentTemplate) *agentProc {
	t.Helper()
	return startAgentWithTemplateConfig(t, v, "", templates...)
}

// startAgentWithTemplateConfig is startAgent with more settings in template_config, e.g.
// static_secret_render_interval, which startAgent leaves at Agent's default of 5 minutes.
func startAgentWithTemplateConfig(t *testing.T, v *vaultProc, templateConfig string, templates ...agentTemplate) *agentProc {
	t.Helper()
	// The agent's files live with the server's.
	return runAgent(t, v, harness.AgentOptions{
		Dir: filepath.Join(v.dir, "agent-"+randomHex(3)), VaultAddr: v.addr,
		TemplateConfig: templateConfig, Templates: templates,
	})
}

// runAgentConfig runs `vault agent` with config (written to dir/agent.hcl) against v; v's
// token is in dir/vault-token for a token_file auto_auth.
func runAgentConfig(t *testing.T, v *vaultProc, dir, config string) *agentProc {
	t.Helper()
	return runAgent(t, v, harness.AgentOptions{Dir: dir, Config: config})
}

// runAgent starts the agent opts describe with v's token and the test's vault binary. Its
// log is scanned with the server's logs for every secret the server's test saw, even when
// a subtest starts the agent.
func runAgent(t *testing.T, v *vaultProc, opts harness.AgentOptions) *agentProc {
	t.Helper()
	opts.Bin, opts.Server, opts.Token = v.env.vaultBin, v.env.server, v.token
	ha, err := harness.StartAgent(nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	v.h.addLog(ha.LogPath)
	p := wrapProc(ha.Proc)
	cleanupProc(t, p)
	return &agentProc{proc: p, dir: ha.Dir}
}

// waitFile polls path until it holds a value other than the ones in not, failing at the
// deadline or if the agent exits.
func (a *agentProc) waitFile(t *testing.T, path string, timeout time.Duration, not ...string) string {
	t.Helper()
	var got string
	waitFor(t, timeout, 50*time.Millisecond, "the agent to render "+filepath.Base(path), func() (bool, error) {
		if a.proc.exited() {
			t.Fatalf("vault agent exited: %v", a.proc.err)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return false, err
		}
		got = strings.TrimSpace(string(data))
		if got == "" {
			return false, errors.New("empty file")
		}
		for _, n := range not {
			if got == n {
				return false, errors.New("still the old content")
			}
		}
		return true, nil
	})
	return got
}

// atoi parses a JSON number or string field of CLI output.
func atoi(t *testing.T, v any) int64 {
	t.Helper()
	switch n := v.(type) {
	case float64:
		return int64(n)
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			t.Fatal(err)
		}
		return i
	case string:
		i, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	t.Fatalf("not a number: %T %v", v, v)
	return 0
}
