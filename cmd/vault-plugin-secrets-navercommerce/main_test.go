package main

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"

	navercommerce "github.com/navercommerce/vault-plugin-secrets-navercommerce"
)

func TestRun(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		serveErr   error
		wantExit   int
		wantServed bool
		wantStdout string
		wantStderr string
	}{
		{name: "version", args: []string{"-version"}, wantStdout: "v0.1.0-test\n"},
		{name: "version with a double dash", args: []string{"--version"}, wantStdout: "v0.1.0-test\n"},
		{name: "serves as Vault starts it", args: []string{"-tls-skip-verify"}, wantServed: true},
		{name: "serving fails", serveErr: errors.New("handshake"), wantExit: 1, wantServed: true, wantStderr: "handshake"},
		{name: "unknown flag", args: []string{"-verzion"}, wantExit: 2, wantStderr: "-verzion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			served := false
			exit := runWithVersion(t, "v0.1.0-test", func() int {
				return run(tt.args, &stdout, &stderr, func(*api.PluginAPIClientMeta) error {
					served = true
					return tt.serveErr
				})
			})
			if exit != tt.wantExit || served != tt.wantServed || stdout.String() != tt.wantStdout {
				t.Errorf("exit %d, served %v, stdout %q; want %d, %v, %q (stderr %q)",
					exit, served, stdout.String(), tt.wantExit, tt.wantServed, tt.wantStdout, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not mention %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

// The version a release stamps with -ldflags is the one the binary prints.
func TestBuiltBinaryPrintsStampedVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin")
	}
	bin := filepath.Join(t.TempDir(), "plugin")
	build := exec.Command("go", "build", "-ldflags",
		"-X github.com/navercommerce/vault-plugin-secrets-navercommerce.Version=v9.8.7-stamped", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-version").Output()
	if err != nil || string(out) != "v9.8.7-stamped\n" {
		t.Errorf("%s -version: %q, %v; want \"v9.8.7-stamped\\n\"", bin, out, err)
	}
}

func runWithVersion(t *testing.T, version string, f func() int) int {
	t.Helper()
	old := navercommerce.Version
	navercommerce.Version = version
	defer func() { navercommerce.Version = old }()
	return f()
}
