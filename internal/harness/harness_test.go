package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

func TestWaitFor(t *testing.T) {
	errNotYet := errors.New("not yet")
	tests := []struct {
		name    string
		results []error // what cond returns on each call; nil ends the wait successfully
		// after the results run out, cond keeps returning (false, last)
		last    error
		wantErr string // "" for success
		notErr  string // must not be in the error
		quick   bool   // must return well before the timeout
	}{
		{name: "succeeds on the third call", results: []error{errNotYet, errNotYet, nil}},
		{name: "times out naming the last error", results: []error{errors.New("first")}, last: errNotYet,
			wantErr: "timed out after 100ms waiting for the thing (last error: not yet)"},
		{name: "keeps the last real error when later calls give none", results: []error{errors.New("refused")}, last: errFalseNoReason,
			wantErr: "(last error: refused)", notErr: "<nil>"},
		{name: "says nothing of an error when there was none", last: errFalseNoReason,
			wantErr: "timed out after 100ms waiting for the thing", notErr: "last error"},
		{name: "gives up at once on a permanent error", results: []error{errNotYet}, last: Permanent(errors.New("it exited")),
			wantErr: "waiting for the thing: it exited", quick: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			start := time.Now()
			err := WaitFor(100*time.Millisecond, 5*time.Millisecond, "the thing", func() (bool, error) {
				calls++
				if calls <= len(tt.results) {
					r := tt.results[calls-1]
					return r == nil, r
				}
				if tt.last == errFalseNoReason {
					return false, nil
				}
				return false, tt.last
			})
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("want success, got %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("want an error with %q, got %v", tt.wantErr, err)
			case tt.notErr != "" && strings.Contains(err.Error(), tt.notErr):
				t.Fatalf("error %q must not contain %q", err, tt.notErr)
			}
			if tt.wantErr == "" && calls != len(tt.results) {
				t.Fatalf("cond called %d times, want %d", calls, len(tt.results))
			}
			if tt.quick && time.Since(start) > 50*time.Millisecond {
				t.Fatalf("took %s; a permanent error must end the wait at once", time.Since(start))
			}
		})
	}
}

// errFalseNoReason makes the test's cond return (false, nil).
var errFalseNoReason = errors.New("false without a reason")

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestProcStopAndTail(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		body    string
		wantErr bool // Stop had to kill it
	}{
		{name: "stops on SIGTERM", body: "echo one; echo two; echo three; exec sleep 30\n"},
		// The shell ignores SIGTERM, and so does the sleep it starts in the background:
		// only the process group kill ends them.
		{name: "killed when it ignores SIGTERM", body: "trap '' TERM; echo one; echo two; echo three; sleep 30 & wait\n", wantErr: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := script(t, dir, fmt.Sprintf("p%d.sh", i), tt.body)
			var g Group
			g.PIDFile = filepath.Join(dir, fmt.Sprintf("pids%d", i))
			p, err := g.Start("test process", filepath.Join(dir, fmt.Sprintf("p%d.log", i)), ChildEnv(), bin)
			if err != nil {
				t.Fatal(err)
			}
			if err := WaitFor(5*time.Second, 10*time.Millisecond, "three lines", func() (bool, error) {
				return p.Tail(2) == "two\nthree", nil
			}); err != nil {
				t.Fatalf("%v; log: %q", err, p.Tail(10))
			}
			if p.Exited() || p.Err() != nil {
				t.Fatalf("exited early: %v", p.Err())
			}
			pids, _ := os.ReadFile(g.PIDFile)
			if strings.TrimSpace(string(pids)) != strconv.Itoa(p.Pid()) {
				t.Fatalf("pid file holds %q, want %d", pids, p.Pid())
			}
			err = g.StopAll(300 * time.Millisecond)
			if (err != nil) != tt.wantErr {
				t.Fatalf("StopAll: %v, want an error: %v", err, tt.wantErr)
			}
			if !p.Exited() {
				t.Fatal("still running after Stop")
			}
			// Killed members stay in the group until reaped (by init): allow for that.
			if err := WaitFor(5*time.Second, 10*time.Millisecond, "the process group to empty", func() (bool, error) {
				return syscall.Kill(-p.Pid(), 0) != nil, nil
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestStartProcMissingBinary(t *testing.T) {
	dir := t.TempDir()
	if _, err := StartProc("ghost", filepath.Join(dir, "log"), nil, filepath.Join(dir, "no-such-binary")); err == nil || !strings.Contains(err.Error(), "starting ghost") {
		t.Fatalf("want an error naming the process, got %v", err)
	}
}

func TestFreePortPair(t *testing.T) {
	port, err := FreePortPair()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []int{port, port + 1} {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d of the pair is not free: %v", p, err)
		}
		l.Close()
	}
}

func TestNewClientSecret(t *testing.T) {
	seen := map[string]bool{}
	for range 20 {
		s := NewClientSecret()
		if len(s) != 29 || !strings.HasPrefix(s, "$2a$04$") || seen[s] {
			t.Fatalf("bad or repeated secret %q", s)
		}
		seen[s] = true
		// Naver's signer (the emulator's) must accept it.
		if _, err := navercommercetest.Sign("client", "1700000000000", s); err != nil {
			t.Fatalf("cannot sign with %q: %v", s, err)
		}
	}
}

func TestStartEmulator(t *testing.T) {
	dir := t.TempDir()
	// Stand-ins for the emulator: one writes its URL file as the real one does (the value
	// after -url-file), one exits at once.
	good := script(t, dir, "good.sh", `echo "$@" > "$(dirname "$0")/args"
while [ "$1" != "-url-file" ]; do shift; done
echo "http://127.0.0.1:43210/external" > "$2"
exec sleep 30
`)
	bad := script(t, dir, "bad.sh", "echo 'no such flag' >&2; exit 2\n")

	args := filepath.Join(dir, "args")
	em, err := StartEmulator(nil, EmulatorOptions{Bin: good, Dir: filepath.Join(dir, "good"), AccountIDs: []string{"a", "b"},
		TokenLifetime: time.Minute, ExtraArgs: []string{"-penalty=false"}})
	if err != nil {
		t.Fatal(err)
	}
	defer em.Proc.Stop(time.Second)
	if em.URL != "http://127.0.0.1:43210/external" || em.Root != "http://127.0.0.1:43210" {
		t.Fatalf("URL %q, root %q", em.URL, em.Root)
	}
	if !strings.HasPrefix(em.ClientSecret, "$2a$04$") || em.ClientID == "" {
		t.Fatalf("no random application: %q %q", em.ClientID, em.ClientSecret)
	}
	got, _ := os.ReadFile(args)
	for _, want := range []string{"-listen 127.0.0.1:0 ", "-client-id " + em.ClientID + " ", "-account-ids a,b ", "-token-lifetime 1m0s ", " -penalty=false\n"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("the emulator's arguments %q lack %q", got, want)
		}
	}
	if got := em.Key("SELLER", "a"); got != em.ClientID+"|SELLER|a" {
		t.Fatalf("Key: %q", got)
	}

	start := time.Now()
	_, err = StartEmulator(nil, EmulatorOptions{Bin: bad, Dir: filepath.Join(dir, "bad")})
	if err == nil || !strings.Contains(err.Error(), "the emulator exited") || !strings.Contains(err.Error(), "no such flag") {
		t.Fatalf("want the exit and the log's tail, got %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("took %s to notice the exit", time.Since(start))
	}
}

func TestStartEmulatorTLS(t *testing.T) {
	dir := t.TempDir()
	pemFile := filepath.Join(dir, "fixture.pem")
	writeSelfSignedPEM(t, pemFile)
	// A stand-in that writes the certificate where -tls-cert-file says, then the URL file.
	standIn := script(t, dir, "tls.sh", `echo "$@" > "$(dirname "$0")/args"
for a in "$@"; do
  case "$prev" in
  -tls-cert-file) cp "`+pemFile+`" "$a" ;;
  -url-file) url="$a" ;;
  esac
  prev="$a"
done
echo "https://127.0.0.1:43211/external" > "$url"
exec sleep 30
`)
	em, err := StartEmulator(nil, EmulatorOptions{Bin: standIn, Dir: filepath.Join(dir, "tls"), TLS: true, TLSHostname: "naver.test"})
	if err != nil {
		t.Fatal(err)
	}
	defer em.Proc.Stop(time.Second)
	if em.URL != "https://127.0.0.1:43211/external" || em.Root != "https://127.0.0.1:43211" {
		t.Fatalf("URL %q, root %q", em.URL, em.Root)
	}
	if want := filepath.Join(dir, "tls", "emulator.pem"); em.CertFile != want {
		t.Fatalf("CertFile %q, want %q", em.CertFile, want)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "args"))
	if want := " -tls -tls-cert-file " + em.CertFile + " -tls-hostname naver.test"; !strings.Contains(string(got), want) {
		t.Errorf("the emulator's arguments %q lack %q", got, want)
	}
	if tr := em.HTTP.Transport.(*http.Transport); tr.TLSClientConfig == nil || tr.TLSClientConfig.RootCAs == nil {
		t.Error("the admin client does not trust the emulator's certificate")
	}

	// An http:// URL from an emulator asked for TLS is not taken.
	plain := script(t, dir, "plain.sh", `while [ "$1" != "-url-file" ]; do shift; done
echo "http://127.0.0.1:43212/external" > "$2"
exec sleep 30
`)
	var g Group
	defer g.StopAll(time.Second)
	if _, err := StartEmulator(&g, EmulatorOptions{Bin: plain, Dir: filepath.Join(dir, "plain"), TLS: true}); err == nil ||
		!strings.Contains(err.Error(), "http://127.0.0.1:43212/external") {
		t.Fatalf("want the wrong URL named, got %v", err)
	}
}

// writeSelfSignedPEM writes a throwaway self-signed certificate's PEM to path.
func writeSelfSignedPEM(t *testing.T, path string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVaultServerEnv(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://ours.invalid:1")
	t.Setenv("no_proxy", "ours")
	t.Setenv("VAULT_TOKEN", "ours")
	tests := []struct {
		name      string
		v         Vault
		want, not []string
	}{
		{name: "ours without VAULT_*", v: Vault{HomeDir: "/h"},
			want: []string{"HOME=/h", "HTTPS_PROXY=http://ours.invalid:1", "no_proxy=ours"}, not: []string{"VAULT_TOKEN=ours"}},
		{name: "Env added", v: Vault{HomeDir: "/h", Env: []string{"SSL_CERT_FILE=/c.pem"}},
			want: []string{"HOME=/h", "HTTPS_PROXY=http://ours.invalid:1", "SSL_CERT_FILE=/c.pem"}},
		{name: "DropProxyEnv keeps only Env's", v: Vault{HomeDir: "/h", Env: []string{"HTTPS_PROXY=http://env:2"}, DropProxyEnv: true},
			want: []string{"HOME=/h", "HTTPS_PROXY=http://env:2"}, not: []string{"HTTPS_PROXY=http://ours.invalid:1", "no_proxy=ours"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := strings.Join(tt.v.serverEnv(), "\n") + "\n"
			for _, w := range tt.want {
				if !strings.Contains(env, "\n"+w+"\n") && !strings.HasPrefix(env, w+"\n") {
					t.Errorf("environment lacks %s", w)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(env, n) {
					t.Errorf("environment has %s", n)
				}
			}
		})
	}
}

func TestAgentConfig(t *testing.T) {
	base := AgentOptions{Dir: "/a", VaultAddr: "http://127.0.0.1:8200",
		Templates: []AgentTemplate{{Contents: "{{ x }}", Destination: "/a/x"}, {Source: "/t.tpl", Destination: "/a/y"}}}
	withInterval := base
	withInterval.TemplateConfig = `static_secret_render_interval = "5s"`
	tests := []struct {
		name string
		opts AgentOptions
		want string // a part of the config
	}{
		{name: "address", opts: base, want: "vault {\n  address = \"http://127.0.0.1:8200\"\n}\n"},
		{name: "token file", opts: base, want: `token_file_path = "/a/vault-token"`},
		{name: "template_config", opts: base, want: "template_config {\n  exit_on_retry_failure = true\n}\n"},
		{name: "more template_config", opts: withInterval,
			want: "template_config {\n  exit_on_retry_failure = true\n  static_secret_render_interval = \"5s\"\n}\n"},
		{name: "contents template", opts: base, want: "template {\n  contents    = \"{{ x }}\"\n  destination = \"/a/x\"\n  perms       = \"0600\"\n}\n"},
		{name: "source template", opts: base, want: "template {\n  source      = \"/t.tpl\"\n  destination = \"/a/y\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := AgentConfig(tt.opts); !strings.Contains(got, tt.want) {
				t.Errorf("config lacks %q:\n%s", tt.want, got)
			}
		})
	}
}

func TestParseServer(t *testing.T) {
	tests := []struct {
		line    string
		want    Server
		wantErr bool
	}{
		{line: "Vault v1.21.0, built 2025-10-21T19:39:43Z", want: ServerVault},
		{line: "Vault v1.21.0 (abc), built 2025-10-21", want: ServerVault},
		{line: "OpenBao v2.6.2 (5f1f1d1), built 2026-11-30T12:00:00Z", want: ServerOpenBao},
		{line: "Consul v1.20.0", wantErr: true},
		{line: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := ParseServer(tt.line)
			if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
				t.Fatalf("ParseServer(%q) = %v, %v; want %v (error %v)", tt.line, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// What each server is given: its CLI name, the variables its CLI reads, the config lines it
// needs; and ours, VAULT_* and BAO_* alike, never reach a child.
func TestServerSpeaksBoth(t *testing.T) {
	t.Setenv("BAO_TOKEN", "ours")
	t.Setenv("VAULT_ADDR", "http://ours.invalid:1")
	for _, kv := range ChildEnv() {
		if strings.HasPrefix(kv, "BAO_") || strings.HasPrefix(kv, "VAULT_") {
			t.Errorf("ChildEnv passes on %s", kv)
		}
	}
	tests := []struct {
		server    Server
		cli       string
		env       []string
		devConfig string // a line the dev config must have ("" none beyond plugin_directory)
	}{
		{ServerVault, "vault", []string{"VAULT_ADDR=http://a", "VAULT_TOKEN=t"}, ""},
		{ServerOpenBao, "bao", []string{"VAULT_ADDR=http://a", "VAULT_TOKEN=t", "BAO_ADDR=http://a", "BAO_TOKEN=t"}, "unsafe_allow_api_audit_creation = true"},
	}
	for _, tt := range tests {
		t.Run(tt.server.String(), func(t *testing.T) {
			if got := tt.server.CLI(); got != tt.cli {
				t.Errorf("CLI %q, want %q", got, tt.cli)
			}
			if got := tt.server.ClientEnv("http://a", "t"); strings.Join(got, " ") != strings.Join(tt.env, " ") {
				t.Errorf("ClientEnv %v, want %v", got, tt.env)
			}
			v, err := NewVault(VaultOptions{Server: tt.server, Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			for name, write := range map[string]func() error{"dev": v.WriteDevConfig, "server": func() error { return v.WriteServerConfig(FileStorage("/d")) }} {
				if err := write(); err != nil {
					t.Fatal(err)
				}
				config, err := os.ReadFile(v.Config)
				if err != nil {
					t.Fatal(err)
				}
				has := strings.Contains(string(config), "unsafe_allow_api_audit_creation")
				if tt.devConfig != "" && !strings.Contains(string(config), tt.devConfig) || tt.devConfig == "" && has {
					t.Errorf("%s config:\n%s", name, config)
				}
			}
		})
	}
}

func TestPluginReloadArgs(t *testing.T) {
	if got := strings.Join(ServerVault.PluginReloadArgs("p"), " "); got != "plugin reload -type=secret -plugin=p" {
		t.Errorf("Vault: %s", got)
	}
	if got := strings.Join(ServerOpenBao.PluginReloadArgs("p"), " "); got != "plugin reload -plugin=p" {
		t.Errorf("OpenBao: %s", got)
	}
}
