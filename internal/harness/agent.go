package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// AgentTemplate is a template Vault Agent renders: Contents, or a Source file, into
// Destination (mode 0600).
type AgentTemplate struct {
	Contents    string // the template itself, or
	Source      string // a template file
	Destination string
}

// AgentOptions says how to run Vault Agent against a server.
type AgentOptions struct {
	Bin       string // the vault (or bao) binary
	Server    Server // which server's agent Bin is, for names in logs and errors
	Dir       string // created if missing; gets agent.hcl, the token file, the pid file and agent.log
	VaultAddr string
	Token     string // written to Dir/vault-token for a token_file auto_auth
	// TemplateConfig is more settings for the template_config stanza, beside
	// exit_on_retry_failure = true; e.g. `static_secret_render_interval = "5s"`.
	TemplateConfig string
	Templates      []AgentTemplate
	// Config, if set, is the whole config instead of AgentConfig's (say, an example config
	// pointed at the test's server); VaultAddr, TemplateConfig and Templates are then unused.
	Config string
}

// Agent is a running `vault agent`.
type Agent struct {
	Dir     string
	Config  string // the config file
	LogPath string
	Proc    *Proc
}

// AgentConfig is the agent's configuration for opts: token_file auto_auth with the token in
// Dir/vault-token, and exit_on_retry_failure, so that a failing read ends the agent instead
// of leaving a stale file.
func AgentConfig(opts AgentOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pid_file = %q\n", filepath.Join(opts.Dir, "agent.pid"))
	fmt.Fprintf(&b, "vault {\n  address = %q\n}\n", opts.VaultAddr)
	fmt.Fprintf(&b, "auto_auth {\n  method \"token_file\" {\n    config = {\n      token_file_path = %q\n    }\n  }\n}\n", filepath.Join(opts.Dir, "vault-token"))
	b.WriteString("template_config {\n  exit_on_retry_failure = true\n")
	if opts.TemplateConfig != "" {
		fmt.Fprintf(&b, "  %s\n", opts.TemplateConfig)
	}
	b.WriteString("}\n")
	for _, tpl := range opts.Templates {
		src := fmt.Sprintf("contents    = %q", tpl.Contents)
		if tpl.Source != "" {
			src = fmt.Sprintf("source      = %q", tpl.Source)
		}
		fmt.Fprintf(&b, "template {\n  %s\n  destination = %q\n  perms       = \"0600\"\n}\n", src, tpl.Destination)
	}
	return b.String()
}

// StartAgent writes the token file and opts.Config or AgentConfig into opts.Dir and starts `vault agent`
// with it (HOME=Dir), logging to Dir/agent.log. It does not wait for anything to render.
func StartAgent(g *Group, opts AgentOptions) (*Agent, error) {
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("starting vault agent: %w", err)
	}
	a := &Agent{Dir: opts.Dir, Config: filepath.Join(opts.Dir, "agent.hcl"), LogPath: filepath.Join(opts.Dir, "agent.log")}
	if err := os.WriteFile(filepath.Join(opts.Dir, "vault-token"), []byte(opts.Token), 0o600); err != nil {
		return nil, fmt.Errorf("writing vault agent's token file: %w", err)
	}
	config := opts.Config
	if config == "" {
		config = AgentConfig(opts)
	}
	if err := os.WriteFile(a.Config, []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("writing vault agent's config: %w", err)
	}
	p, err := g.Start(opts.Server.CLI()+" agent", a.LogPath, ChildEnv("HOME="+opts.Dir), opts.Bin, "agent", "-config="+a.Config, "-log-level=debug")
	if err != nil {
		return nil, err
	}
	a.Proc = p
	return a, nil
}
