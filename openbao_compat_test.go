package navercommerce

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// vaultOnlyNames are what vault/sdk offers a plugin that OpenBao 2.x does not serve: the
// SystemView methods of identity tokens, rotation jobs, consumption billing, licensed
// features, OCI plugin downloads and pinned versions; framework.Backend's events and
// observations; and the Backend fields that hook into Vault's rotation manager, activation
// flags and billing. (Found by comparing vault/sdk v0.25.1's logical.SystemView,
// logical.ExtendedSystemView and framework.Backend with OpenBao v2.6.2's sdk.) A plugin that
// calls one works on Vault and fails on OpenBao, at the first request that reaches it.
var vaultOnlyNames = []string{
	// logical.SystemView and ExtendedSystemView
	"GenerateIdentityToken",
	"GetRotationInformation", "RegisterRotationJob", "RegisterRotationJobWithResponse", "DeregisterRotationJob",
	"GetConsumptionBillingManager", "HasFeature", "DownloadExtractVerifyPlugin", "GetPinnedPluginVersion",
	// framework.Backend methods, and logical.SendEvent
	"SendEvent", "RecordObservation", "RecordObservationWithRequest", "TryRecordObservationWithRequest",
	"RecordObservationFromPlugin", "WriteSafeReplicationState", "RecoverSourcePathFieldData",
	// framework.Backend and logical.BackendConfig fields
	"RotateCredential", "ActivationFunc", "ConsumptionBillingManager", "EventsSender", "ObservationRecorder",
}

// vaultOnlyUses lists every use of a vaultOnlyNames name in src (a method call or field
// selection x.Name, or a composite-literal key Name: ...), as file:line: name.
func vaultOnlyUses(fset *token.FileSet, file *ast.File) []string {
	var uses []string
	note := func(id *ast.Ident) {
		if slices.Contains(vaultOnlyNames, id.Name) {
			uses = append(uses, fmt.Sprintf("%s: %s", fset.Position(id.Pos()), id.Name))
		}
	}
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.SelectorExpr:
			note(n.Sel)
		case *ast.KeyValueExpr:
			if id, ok := n.Key.(*ast.Ident); ok {
				note(id)
			}
		}
		return true
	})
	return uses
}

// The plugin runs on OpenBao as well as Vault: none of its code (the backend and the
// command that serves it) touches what only Vault serves.
func TestPluginUsesNothingOpenBaoLacks(t *testing.T) {
	var files []string
	for _, pattern := range []string{"*.go", "cmd/vault-plugin-secrets-navercommerce/*.go"} {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matches {
			if !strings.HasSuffix(m, "_test.go") {
				files = append(files, m)
			}
		}
	}
	if len(files) < 10 {
		t.Fatalf("found only %d source files: %v", len(files), files)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, use := range vaultOnlyUses(fset, f) {
			t.Errorf("%s: Vault-only, not served by OpenBao", use)
		}
	}
}

// The scan finds each kind of use it looks for, and nothing else.
func TestVaultOnlyUsesFindsThem(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"identity token", `b.System().GenerateIdentityToken(ctx, req)`, []string{"GenerateIdentityToken"}},
		{"rotation job", `sys.RegisterRotationJob(ctx, r)`, []string{"RegisterRotationJob"}},
		{"event", `b.SendEvent(ctx, "x", nil)`, []string{"SendEvent"}},
		{"event helper", `logical.SendEvent(ctx, b, "x")`, []string{"SendEvent"}},
		{"observation", `b.RecordObservation(ctx, "x", nil)`, []string{"RecordObservation"}},
		{"rotation hook", `_ = &framework.Backend{RotateCredential: f}`, []string{"RotateCredential"}},
		{"clean", `b.System().MaxLeaseTTL(); b.Logger().Info("x")`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, "x.go", "package x\nfunc f() {\n"+tt.src+"\n}\n", 0)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, use := range vaultOnlyUses(fset, f) {
				got = append(got, use[strings.LastIndex(use, " ")+1:])
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("found %v, want %v", got, tt.want)
			}
		})
	}
}
