package navercommerce

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The Kubernetes examples (examples/kubernetes) against what each operator's CRDs accept and
// what the engine serves. The CRD facts below come from the operators' sources, cited per
// fact; they are copied here, not fetched, so the test runs offline.

// specFields are the spec fields each kind's CRD defines (only the levels the examples use).
var specFields = map[string][]string{
	// hashicorp/vault-secrets-operator v1.4.1, api/v1beta1/vaultconnection_types.go
	"secrets.hashicorp.com/v1beta1/VaultConnection": {"address", "headers", "tlsServerName", "caCertSecretRef", "caCertPath", "skipTLSVerify", "timeout"},
	// api/v1beta1/vaultauth_types.go (VaultAuthSpec)
	"secrets.hashicorp.com/v1beta1/VaultAuth": {"vaultConnectionRef", "vaultAuthGlobalRef", "namespace", "allowedNamespaces", "method", "mount", "params", "headers", "kubernetes", "appRole", "jwt", "aws", "gcp", "storageEncryption"},
	// api/v1beta1/vaultdynamicsecret_types.go (VaultDynamicSecretSpec)
	"secrets.hashicorp.com/v1beta1/VaultDynamicSecret": {"vaultAuthRef", "namespace", "mount", "requestHTTPMethod", "path", "params", "renewalPercent", "revoke", "allowStaticCreds", "rolloutRestartTargets", "destination", "refreshAfter"},
	// external-secrets/external-secrets v2.9.0, apis/generators/v1alpha1/types_vault.go
	"generators.external-secrets.io/v1alpha1/VaultDynamicSecret": {"controller", "method", "parameters", "getParameters", "resultType", "retrySettings", "provider", "path", "allowEmptyResponse"},
	// apis/externalsecrets/v1/externalsecret_types.go (ExternalSecretSpec)
	"external-secrets.io/v1/ExternalSecret": {"secretStoreRef", "target", "refreshPolicy", "refreshInterval", "syncWindows", "data", "dataFrom"},
}

// VSO: VaultAuthConfigKubernetes; Destination and Transformation (api/v1beta1/common.go).
var (
	vsoKubernetesAuthFields = []string{"role", "serviceAccount", "audiences", "tokenExpirationSeconds"}
	vsoDestinationFields    = []string{"name", "create", "overwrite", "labels", "annotations", "type", "transformation"}
	vsoTransformationFields = []string{"templates", "transformationRefs", "includes", "excludes", "excludeRaw"}
	// RolloutRestartTarget.kind: +kubebuilder:validation:Enum={Deployment,DaemonSet,StatefulSet,argo.Rollout}
	vsoRolloutKinds = []string{"Deployment", "DaemonSet", "StatefulSet", "argo.Rollout"}
	// VaultDynamicSecretSpec.refreshAfter: +kubebuilder:validation:Pattern
	vsoRefreshAfter = regexp.MustCompile(`^([0-9]+(\.[0-9]+)?(s|m|h))$`)
)

// ESO: VaultKubernetesAuth (apis/externalsecrets/v1/secretstore_vault_types.go),
// ServiceAccountSelector (apis/meta/v1/types.go), GeneratorRef (externalsecret_types.go).
var (
	esoKubernetesAuthFields = []string{"mountPath", "serviceAccountRef", "secretRef", "role"}
	esoServiceAccountFields = []string{"name", "namespace", "audiences"}
	esoRefreshPolicies      = []string{"CreatedOnce", "Periodic", "OnChange"}
	esoResultTypes          = []string{"Data", "Auth", "Raw"}
)

type manifest struct {
	APIVersion string         `yaml:"apiVersion"`
	Kind       string         `yaml:"kind"`
	Metadata   map[string]any `yaml:"metadata"`
	Spec       map[string]any `yaml:"spec"`
}

func (m manifest) id() string { return m.APIVersion + "/" + m.Kind }

func (m manifest) name() string { s, _ := m.Metadata["name"].(string); return s }

func readManifests(t *testing.T, path string) []manifest {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader([]byte(readFile(t, path))))
	var out []manifest
	for {
		var m manifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if m.Kind == "" {
			t.Fatalf("%s: a document without kind", path)
		}
		out = append(out, m)
	}
}

// engineRole is a role vault-setup.sh writes.
type engineRole struct {
	leaseFree bool
	minLife   time.Duration
}

// setupRoles reads the engine's roles out of vault-setup.sh's `vault write
// navercommerce/roles/<name> k=v ...` lines, and its other `vault write` targets.
func setupRoles(t *testing.T) (map[string]engineRole, []string) {
	t.Helper()
	roles := map[string]engineRole{}
	var writes []string
	sc := bufio.NewScanner(strings.NewReader(readFile(t, "examples/kubernetes/vault-setup.sh")))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[0] != "vault" || fields[1] != "write" {
			continue
		}
		writes = append(writes, fields[2])
		name, ok := strings.CutPrefix(fields[2], "navercommerce/roles/")
		if !ok {
			continue
		}
		var r engineRole
		for _, kv := range fields[3:] {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "lease":
				r.leaseFree = v == "false"
			case "min_remaining_ttl":
				d, err := time.ParseDuration(v)
				if err != nil {
					t.Fatalf("vault-setup.sh: role %s: %v", name, err)
				}
				r.minLife = d
			}
		}
		roles[name] = r
	}
	return roles, writes
}

// get walks a decoded YAML tree: get(m, "a", "b") is m.a.b, or nil.
func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any, path ...string) string { s, _ := get(v, path...).(string); return s }

// unknownFields names the keys of get(v, path...) that are not in known.
func unknownFields(v any, known []string, path ...string) []string {
	m, _ := get(v, path...).(map[string]any)
	var bad []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !slices.Contains(known, k) {
			bad = append(bad, strings.Join(append(path, k), "."))
		}
	}
	return bad
}

// retryMargin is what the README asks between a consumer's re-read interval and the role's
// min_remaining_ttl: time for the consumer's retries after a failed read.
const retryMargin = 5 * time.Minute

func TestKubernetesExamples(t *testing.T) {
	roles, writes := setupRoles(t)
	if len(roles) < 2 {
		t.Fatalf("vault-setup.sh writes %d engine roles, want a leased and a lease-free one", len(roles))
	}
	policy := readFile(t, "examples/kubernetes/policy.hcl")
	manifests := append(readManifests(t, "examples/kubernetes/vso.yaml"), readManifests(t, "examples/kubernetes/eso.yaml")...)
	byName := map[string]manifest{}
	seen := map[string]int{}
	for _, m := range manifests {
		byName[m.id()+"/"+m.name()] = m
		seen[m.id()]++
		known, ok := specFields[m.id()]
		if !ok {
			t.Errorf("%s %q: not a kind the operators define", m.id(), m.name())
			continue
		}
		if bad := unknownFields(m.Spec, known); len(bad) > 0 {
			t.Errorf("%s %q: fields its CRD does not have: %v", m.id(), m.name(), bad)
		}
		if m.Metadata["namespace"] != "shop" {
			t.Errorf("%s %q: namespace %v, want shop (the namespace vault-setup.sh binds)", m.id(), m.name(), m.Metadata["namespace"])
		}
	}
	for id := range specFields {
		if seen[id] == 0 {
			t.Errorf("no %s in the examples", id)
		}
	}

	// The token path a manifest reads must be an engine role vault-setup.sh writes, and one
	// the policy grants read on.
	checkRole := func(m manifest, path string) engineRole {
		t.Helper()
		name, ok := strings.CutPrefix(path, "navercommerce/token/")
		if !ok {
			t.Errorf("%s %q reads %q, not navercommerce/token/<role>", m.id(), m.name(), path)
		}
		r, ok := roles[name]
		if !ok {
			t.Errorf("%s %q reads role %q, which vault-setup.sh does not write", m.id(), m.name(), name)
		}
		if !strings.Contains(policy, fmt.Sprintf("path %q {\n  capabilities = [\"read\"]\n}", path)) {
			t.Errorf("policy.hcl does not grant read on %s", path)
		}
		return r
	}
	checkAuthRole := func(m manifest, role string) {
		t.Helper()
		if !slices.Contains(writes, "auth/kubernetes/role/"+role) {
			t.Errorf("%s %q authenticates as Kubernetes auth role %q, which vault-setup.sh does not write", m.id(), m.name(), role)
		}
	}

	for _, m := range manifests {
		switch m.id() {
		case "secrets.hashicorp.com/v1beta1/VaultAuth":
			if str(m.Spec, "method") != "kubernetes" {
				t.Errorf("VaultAuth %q: method %q", m.name(), str(m.Spec, "method"))
			}
			if bad := unknownFields(m.Spec, vsoKubernetesAuthFields, "kubernetes"); len(bad) > 0 {
				t.Errorf("VaultAuth %q: unknown fields %v", m.name(), bad)
			}
			if _, ok := byName["secrets.hashicorp.com/v1beta1/VaultConnection/"+str(m.Spec, "vaultConnectionRef")]; !ok {
				t.Errorf("VaultAuth %q: vaultConnectionRef %q names no VaultConnection", m.name(), str(m.Spec, "vaultConnectionRef"))
			}
			checkAuthRole(m, str(m.Spec, "kubernetes", "role"))

		case "secrets.hashicorp.com/v1beta1/VaultDynamicSecret":
			if _, ok := byName["secrets.hashicorp.com/v1beta1/VaultAuth/"+str(m.Spec, "vaultAuthRef")]; !ok {
				t.Errorf("VaultDynamicSecret %q: vaultAuthRef %q names no VaultAuth", m.name(), str(m.Spec, "vaultAuthRef"))
			}
			// requestHTTPMethod: +kubebuilder:validation:Enum={GET,POST,PUT}; the engine
			// serves the token on a read only.
			if str(m.Spec, "requestHTTPMethod") != "GET" || get(m.Spec, "params") != nil {
				t.Errorf("VaultDynamicSecret %q: not a GET (requestHTTPMethod %q, params %v)", m.name(), str(m.Spec, "requestHTTPMethod"), get(m.Spec, "params"))
			}
			role := checkRole(m, str(m.Spec, "mount")+"/"+str(m.Spec, "path"))
			// renewalPercent: +kubebuilder:default=67, Minimum=0, Maximum=90; VSO adds up to
			// 10 % of jitter after it (computeDynamicHorizonWithJitter).
			percent := 67
			if p, ok := get(m.Spec, "renewalPercent").(int); ok {
				percent = p
			}
			if percent < 0 || percent > 80 {
				t.Errorf("VaultDynamicSecret %q: renewalPercent %d re-reads at up to %d %% of the lease", m.name(), percent, percent+10)
			}
			refreshAfter := str(m.Spec, "refreshAfter")
			if role.leaseFree {
				// Without a lease VSO re-reads at the same fraction of refreshAfter.
				d, err := time.ParseDuration(refreshAfter)
				switch {
				case !vsoRefreshAfter.MatchString(refreshAfter) || err != nil:
					t.Errorf("VaultDynamicSecret %q: a lease-free role needs refreshAfter matching %s, got %q", m.name(), vsoRefreshAfter, refreshAfter)
				case d+retryMargin > role.minLife:
					t.Errorf("VaultDynamicSecret %q: refreshAfter %s + %s exceeds the role's min_remaining_ttl %s", m.name(), d, retryMargin, role.minLife)
				}
				if get(m.Spec, "rolloutRestartTargets") != nil {
					t.Errorf("VaultDynamicSecret %q: rolloutRestartTargets on a lease-free role restart the Deployment at every refresh", m.name())
				}
			} else if refreshAfter != "" {
				t.Errorf("VaultDynamicSecret %q: refreshAfter on a leased role is ignored (the lease takes precedence)", m.name())
			}
			if bad := unknownFields(m.Spec, vsoDestinationFields, "destination"); len(bad) > 0 {
				t.Errorf("VaultDynamicSecret %q: unknown fields %v", m.name(), bad)
			}
			if bad := unknownFields(m.Spec, vsoTransformationFields, "destination", "transformation"); len(bad) > 0 {
				t.Errorf("VaultDynamicSecret %q: unknown fields %v", m.name(), bad)
			}
			// destination.create: +kubebuilder:default=false; the examples make the Secret.
			if get(m.Spec, "destination", "create") != true || str(m.Spec, "destination", "name") == "" {
				t.Errorf("VaultDynamicSecret %q: destination must name a Secret and create it", m.name())
			}
			targets, _ := get(m.Spec, "rolloutRestartTargets").([]any)
			for _, target := range targets {
				if !slices.Contains(vsoRolloutKinds, str(target, "kind")) || str(target, "name") == "" {
					t.Errorf("VaultDynamicSecret %q: rollout restart target %v", m.name(), target)
				}
			}

		case "generators.external-secrets.io/v1alpha1/VaultDynamicSecret":
			// generators/v1/vault/vault.go: "" or "GET" reads; other methods write.
			if str(m.Spec, "method") != "GET" {
				t.Errorf("generator %q: method %q, want GET", m.name(), str(m.Spec, "method"))
			}
			if rt := str(m.Spec, "resultType"); rt != "" && !slices.Contains(esoResultTypes, rt) {
				t.Errorf("generator %q: resultType %q", m.name(), rt)
			}
			role := checkRole(m, str(m.Spec, "path"))
			if !role.leaseFree || role.minLife == 0 {
				t.Errorf("generator %q: ESO ignores leases; its role needs lease=false and min_remaining_ttl", m.name())
			}
			if bad := unknownFields(m.Spec, esoKubernetesAuthFields, "provider", "auth", "kubernetes"); len(bad) > 0 {
				t.Errorf("generator %q: unknown fields %v", m.name(), bad)
			}
			if bad := unknownFields(m.Spec, esoServiceAccountFields, "provider", "auth", "kubernetes", "serviceAccountRef"); len(bad) > 0 {
				t.Errorf("generator %q: unknown fields %v", m.name(), bad)
			}
			if str(m.Spec, "provider", "server") == "" {
				t.Errorf("generator %q: provider.server is required", m.name())
			}
			checkAuthRole(m, str(m.Spec, "provider", "auth", "kubernetes", "role"))

		case "external-secrets.io/v1/ExternalSecret":
			if p := str(m.Spec, "refreshPolicy"); p != "" && !slices.Contains(esoRefreshPolicies, p) {
				t.Errorf("ExternalSecret %q: refreshPolicy %q", m.name(), p)
			}
			// refreshInterval: +kubebuilder:default="1h0m0s", a Go duration.
			interval := time.Hour
			if s := str(m.Spec, "refreshInterval"); s != "" {
				d, err := time.ParseDuration(s)
				if err != nil {
					t.Errorf("ExternalSecret %q: refreshInterval: %v", m.name(), err)
				}
				interval = d
			}
			sources, _ := get(m.Spec, "dataFrom").([]any)
			if len(sources) == 0 {
				t.Errorf("ExternalSecret %q: no dataFrom", m.name())
			}
			for _, src := range sources {
				ref := get(src, "sourceRef", "generatorRef")
				gen, ok := byName[str(ref, "apiVersion")+"/"+str(ref, "kind")+"/"+str(ref, "name")]
				if !ok {
					t.Errorf("ExternalSecret %q: generatorRef %v names no generator in the examples", m.name(), ref)
					continue
				}
				role := roles[strings.TrimPrefix(str(gen.Spec, "path"), "navercommerce/token/")]
				if interval+retryMargin > role.minLife {
					t.Errorf("ExternalSecret %q: refreshInterval %s + %s exceeds min_remaining_ttl %s of the role it reads", m.name(), interval, retryMargin, role.minLife)
				}
			}
		}
	}
}

func TestKubernetesExampleSetupIsExecutable(t *testing.T) {
	fi, err := os.Stat("examples/kubernetes/vault-setup.sh")
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 == 0 {
		t.Error("vault-setup.sh is not executable")
	}
}
