// Command vault-plugin-secrets-navercommerce serves the Naver Commerce secrets engine to Vault.
//
// Run by hand with -version, it prints the version it was built as (the one to register with
// `vault plugin register -version=...`) and exits.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/sdk/plugin"

	navercommerce "github.com/navercommerce/vault-plugin-secrets-navercommerce"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, serve))
}

// run parses the arguments and either prints the version or serves the plugin; it returns
// the exit status.
func run(args []string, stdout, stderr io.Writer, serve func(*api.PluginAPIClientMeta) error) int {
	meta := &api.PluginAPIClientMeta{}
	flags := meta.FlagSet()
	flags.SetOutput(stderr)
	printVersion := flags.Bool("version", false, "print the plugin's version (the one to register) and exit")
	if err := flags.Parse(args); err != nil {
		fmt.Fprintf(stderr, "vault-plugin-secrets-navercommerce: %v\n", err)
		return 2
	}
	if *printVersion {
		fmt.Fprintln(stdout, navercommerce.Version)
		return 0
	}
	if err := serve(meta); err != nil {
		hclog.New(&hclog.LoggerOptions{Output: stderr}).Error("plugin shutting down", "error", err)
		return 1
	}
	return 0
}

// gcPercent is the garbage collector's target unless the operator sets GOGC: the plugin's
// live heap is mostly long-lived per-key state (about a kilobyte a seller) and its garbage
// short-lived, so half the default headroom costs little CPU and keeps the process smaller
// with many sellers (docs/decisions.md, docs/benchmarks.md).
const gcPercent = 50

func serve(meta *api.PluginAPIClientMeta) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	return plugin.ServeMultiplex(&plugin.ServeOpts{
		BackendFactoryFunc: navercommerce.Factory,
		TLSProviderFunc:    api.VaultPluginTLSProvider(meta.GetTLSConfig()),
	})
}
