package navercommerce

import (
	"context"
	"sort"
	"testing"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"
)

// The OpenAPI document is what `vault path-help`, the UI and client generators read.
func TestOpenAPIDescribesEveryPath(t *testing.T) {
	b := newBackend(backendOptions{})
	conf := logical.TestBackendConfig()
	conf.System = &logical.StaticSystemView{PluginEnvironment: &logical.PluginEnvironment{VaultVersion: "1.21.0"}}
	if err := b.Setup(context.Background(), conf); err != nil {
		t.Fatal(err)
	}
	resp, err := b.HandleRequest(context.Background(), &logical.Request{Operation: logical.HelpOperation, Storage: &logical.InmemStorage{}})
	if err != nil {
		t.Fatal(err)
	}
	doc, ok := resp.Data["openapi"].(*framework.OASDocument)
	if !ok {
		t.Fatalf("no OpenAPI document in %v", resp.Data)
	}
	var paths []string
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	want := []string{"/config", "/info", "/metrics", "/roles/", "/roles/{name}", "/status", "/status/{name}", "/status/{name}/{account_id}", "/token/{name}", "/token/{name}/{account_id}"}
	if len(paths) != len(want) {
		t.Fatalf("paths %v, want %v", paths, want)
	}
	for i := range want {
		if paths[i] != want[i] {
			t.Fatalf("paths %v, want %v", paths, want)
		}
	}
	wantOps := map[string]bool{
		"navercommerce-read-configuration": true, "navercommerce-configure": true, "navercommerce-delete-configuration": true,
		"navercommerce-list-roles": true, "navercommerce-read-role": true, "navercommerce-write-role": true, "navercommerce-delete-role": true,
		"navercommerce-generate-token": true, "navercommerce-drop-cached-token": true, "navercommerce-read-plugin-info": true,
		"navercommerce-read-status": true, "navercommerce-read-role-status": true, "navercommerce-read-metrics": true,
		"navercommerce-generate-seller-token": true, "navercommerce-drop-cached-seller-token": true, "navercommerce-read-seller-status": true,
	}
	for p, item := range doc.Paths {
		if item.Description == "" {
			t.Errorf("%s has no description", p)
		}
		for _, op := range []*framework.OASOperation{item.Get, item.Post, item.Delete} {
			if op == nil {
				continue
			}
			if !wantOps[op.OperationID] {
				t.Errorf("%s: unexpected operation ID %q", p, op.OperationID)
			}
			delete(wantOps, op.OperationID)
			if op.Summary == "" {
				t.Errorf("%s %s has no summary", p, op.OperationID)
			}
			if op.RequestBody != nil {
				for _, mt := range op.RequestBody.Content {
					for name, prop := range mt.Schema.Properties {
						if prop.Description == "" {
							t.Errorf("%s %s: field %s has no description", p, op.OperationID, name)
						}
					}
				}
			}
		}
	}
	for op := range wantOps {
		t.Errorf("operation %s missing from the OpenAPI document", op)
	}
	if s, ok := doc.Components.Schemas["NavercommerceConfigureRequest"]; ok {
		if p := s.Properties["client_secret"]; p == nil || !p.DisplayAttrs.Sensitive {
			t.Error("client_secret is not marked sensitive")
		}
	} else {
		t.Errorf("no configure request schema; have %v", keys(doc.Components.Schemas))
	}
}

// Every operation declares what it answers: the unit tests validate each response against it.
func TestEveryOperationDeclaresItsResponses(t *testing.T) {
	b := newBackend(backendOptions{})
	for _, p := range b.Paths {
		for op, handler := range p.Operations {
			props := handler.Properties()
			if props.Summary == "" {
				t.Errorf("%s %s: no summary", p.Pattern, op)
			}
			if len(props.Responses) == 0 && op != logical.ListOperation {
				t.Errorf("%s %s: no responses declared", p.Pattern, op)
			}
			switch op {
			case logical.CreateOperation, logical.UpdateOperation, logical.DeleteOperation:
				if _, ok := props.Responses[204]; !ok {
					t.Errorf("%s %s: the 204 answer is not declared", p.Pattern, op)
				}
			}
		}
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestInfo(t *testing.T) {
	env := newTestEnv(t)
	resp, err := env.read("info")
	if err != nil || resp.Data["version"] != Version {
		t.Fatalf("info: %v %v", resp, err)
	}
}
