package sim

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/logical"

	navercommerce "github.com/navercommerce/vault-plugin-secrets-navercommerce"
)

// The alphabet of API actions is read from the backend itself: every path and operation its
// OpenAPI document declares (what `vault path-help` and client generators read), with the
// arguments its field schemas describe. No list of operations is kept here: a path or an
// operation the backend gains is in the alphabet the next run (TestAlphabetCoversTheAPI
// fails if one cannot be produced).

// apiOp is one operation the backend declares: a path of its OpenAPI document and a method.
type apiOp struct {
	ID     string // the OpenAPI operationId
	Path   string // "/token/{name}/{account_id}"
	Method string // get, post, delete or patch
	Op     logical.Operation
	Params []string             // the path's parameters, in the order they appear
	Fields map[string]fieldSpec // body or query fields, by name
}

// fieldSpec is a field's schema as the OpenAPI document gives it.
type fieldSpec struct {
	Type   string // string, integer, boolean, array, object
	Format string // duration, ...
	Enum   []any
}

// mutates reports whether the operation may change what the backend stores.
func (o apiOp) mutates() bool { return o.Op != logical.ReadOperation && o.Op != logical.ListOperation }

var (
	declaredOnce sync.Once
	declared     []apiOp
	declaredErr  error
)

// declaredOps returns every operation the backend declares, sorted by ID.
func declaredOps() ([]apiOp, error) {
	declaredOnce.Do(func() { declared, declaredErr = readDeclaredOps() })
	return declared, declaredErr
}

// mustDeclaredOps is declaredOps for the generator: a backend whose OpenAPI document
// cannot be read is a failure of the run's set-up, not a finding.
func mustDeclaredOps() []apiOp {
	ops, err := declaredOps()
	if err != nil {
		panic("sim: reading the backend's OpenAPI document: " + err.Error())
	}
	return ops
}

func readDeclaredOps() ([]apiOp, error) {
	ctx := context.Background()
	conf := logical.TestBackendConfig()
	// The framework's OpenAPI document needs the running Vault's version.
	conf.System = &logical.StaticSystemView{PluginEnvironment: &logical.PluginEnvironment{VaultVersion: "1.21.0"}}
	b, err := navercommerce.New(ctx, conf, navercommerce.Options{})
	if err != nil {
		return nil, err
	}
	defer b.Cleanup(ctx)
	resp, err := b.HandleRequest(ctx, &logical.Request{Operation: logical.HelpOperation, Storage: &logical.InmemStorage{}})
	if err != nil {
		return nil, err
	}
	doc, ok := resp.Data["openapi"].(*framework.OASDocument)
	if !ok {
		return nil, fmt.Errorf("no OpenAPI document in the help answer")
	}
	return opsOf(doc), nil
}

// opsOf lists the operations of an OpenAPI document.
func opsOf(doc *framework.OASDocument) []apiOp {
	var ops []apiOp
	for path, item := range doc.Paths {
		for _, m := range []struct {
			method string
			op     *framework.OASOperation
		}{{"get", item.Get}, {"post", item.Post}, {"delete", item.Delete}, {"patch", item.Patch}} {
			if m.op == nil {
				continue
			}
			o := apiOp{ID: m.op.OperationID, Path: path, Method: m.method, Params: pathParams(path), Fields: map[string]fieldSpec{}}
			switch m.method {
			case "get":
				o.Op = logical.ReadOperation
			case "post":
				// Create or update: the sim's router runs the existence check, as Vault's does.
				o.Op = logical.UpdateOperation
			case "delete":
				o.Op = logical.DeleteOperation
			case "patch":
				o.Op = logical.PatchOperation
			}
			for _, p := range m.op.Parameters {
				if p.In != "query" {
					continue
				}
				if p.Name == "list" && m.method == "get" {
					o.Op = logical.ListOperation
					continue
				}
				o.Fields[p.Name] = specOf(p.Schema)
			}
			if m.op.RequestBody != nil {
				for _, mt := range m.op.RequestBody.Content {
					s := mt.Schema
					if s != nil && s.Ref != "" && doc.Components.Schemas != nil {
						s = doc.Components.Schemas[strings.TrimPrefix(s.Ref, "#/components/schemas/")]
					}
					if s == nil {
						continue
					}
					for name, prop := range s.Properties {
						o.Fields[name] = specOf(prop)
					}
				}
			}
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].ID < ops[j].ID })
	return ops
}

func specOf(s *framework.OASSchema) fieldSpec {
	if s == nil {
		return fieldSpec{Type: "string"}
	}
	return fieldSpec{Type: s.Type, Format: s.Format, Enum: s.Enum}
}

// pathParams returns the {parameters} of an OpenAPI path, in order.
func pathParams(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, seg[1:len(seg)-1])
		}
	}
	return out
}

// requestPath fills an operation's path with the action's parameters, as Vault's router
// would see it (no leading slash; "roles/" keeps its trailing one).
func (o apiOp) requestPath(params map[string]string) string {
	segs := strings.Split(strings.TrimPrefix(o.Path, "/"), "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			segs[i] = params[seg[1:len(seg)-1]]
		}
	}
	return strings.Join(segs, "/")
}

func opByID(id string) (apiOp, bool) {
	for _, o := range mustDeclaredOps() {
		if o.ID == id {
			return o, true
		}
	}
	return apiOp{}, false
}

// Values. Each field and path parameter draws from a domain: mostly values the README
// documents as valid, sometimes one it says is refused. A domain's values may be symbols
// ($secret, $seller, ...) resolved when the action runs, as the world is then (a rotated
// secret, the application's own client ID). A field the table below does not know gets
// values by its schema's type: the alphabet still reaches it (TestAlphabetCoversTheAPI
// lists such fields, to be given a domain).

// domain is the values of one field or path parameter.
type domain struct {
	valid, invalid []any
}

// fieldDomains are the values of the fields and parameters the simulator knows, by name;
// where one name means different things on different paths, by "path field".
var fieldDomains = map[string]domain{
	// config
	"client_id":                         {valid: []any{"$client"}, invalid: []any{"has space", "$long-client"}},
	"client_secret":                     {valid: []any{"$secret", "$secret", "$secret", "$wrong-secret"}, invalid: []any{"not-a-salt"}},
	"base_url":                          {valid: []any{"$base", "$base/", "$unreachable"}, invalid: []any{"ftp://127.0.0.1:9/external", "http://example.com/external", "$base?x"}},
	"request_timeout":                   {valid: []any{"5s", "10s", "30s"}, invalid: []any{"0s", "90s"}},
	"max_retries":                       {valid: []any{0, 1, 2}, invalid: []any{-1, 9}},
	"proxy_url":                         {valid: []any{"", "$proxy"}, invalid: []any{"ftp://proxy.example"}},
	"background_refresh":                {valid: []any{true, true, false}, invalid: []any{"maybe"}},
	"max_token_requests_per_hour":       {valid: []any{4, 6, 8, 12, 12}, invalid: []any{0, 61}},
	"max_application_requests_per_hour": {valid: []any{0, 0, 0, 10, 20, 60, 1000}, invalid: []any{-1}},
	"renewal_spread":                    {valid: []any{"0s", "600s", "1200s", "1200s"}, invalid: []any{"1300s"}},
	"verify_connection":                 {valid: []any{true, false}, invalid: []any{"perhaps"}},
	// roles
	"type":                {valid: []any{"SELLER", "SELLER", "SELF", "seller"}, invalid: []any{"BOTH"}},
	"roles account_id":    {valid: []any{"$seller", "$seller", "$many", ""}, invalid: []any{"has space", "ncp_\u00a0x"}},
	"allowed_account_ids": {valid: []any{"$many-glob", "$many-glob", "*", "$many-list", ""}, invalid: []any{"bad id"}},
	"ttl":                 {valid: []any{"0s", "0s", "5s", "60s", "3600s"}, invalid: []any{"-5s"}},
	"lease":               {valid: []any{true, true, false}, invalid: []any{"sometimes"}},
	"min_remaining_ttl":   {valid: []any{"0s", "0s", "60s", "600s", "1740s"}, invalid: []any{"1900s"}},
	// token
	"force": {valid: []any{false, false, true}, invalid: []any{"yes please"}},
	// status
	"keys":              {valid: []any{true, false}},
	"limit":             {valid: []any{1, 5, 1000}, invalid: []any{0, 100000}},
	"after":             {valid: []any{"", "SELLER|$seller"}},
	"failing":           {valid: []any{true, false}},
	"role":              {valid: []any{"$role"}, invalid: []any{"bad name!"}},
	"status account_id": {valid: []any{"$seller", "$many"}},
	"format":            {valid: []any{"", "prometheus"}, invalid: []any{"xml"}},
	"param name":        {valid: []any{"$role", "$role", "$role", "$many-role", "$wild-role"}, invalid: []any{"bad name!"}},
	"param account_id":  {valid: []any{"$many", "$many", "$guess", "$seller"}, invalid: []any{"ncp_*", "a b"}},
}

// domainOf is the domain of a field of op (param: a path parameter).
func domainOf(op apiOp, name string, param bool) (domain, bool) {
	if param {
		d, ok := fieldDomains["param "+name]
		return d, ok
	}
	section := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")[0]
	if d, ok := fieldDomains[section+" "+name]; ok {
		return d, true
	}
	d, ok := fieldDomains[name]
	return d, ok
}

// typeDomain is the domain of a field the simulator does not know, by its schema.
func typeDomain(s fieldSpec) domain {
	switch {
	case len(s.Enum) > 0:
		return domain{valid: s.Enum, invalid: []any{"NOT-" + fmt.Sprint(s.Enum[0])}}
	case s.Type == "boolean":
		return domain{valid: []any{true, false}, invalid: []any{"maybe"}}
	case s.Type == "integer":
		return domain{valid: []any{0, 1, 10}, invalid: []any{"many"}}
	case s.Format == "duration":
		return domain{valid: []any{"0s", "60s", "600s"}, invalid: []any{"soon"}}
	case s.Type == "array":
		return domain{valid: []any{""}, invalid: []any{"bad value"}}
	}
	return domain{valid: []any{""}, invalid: []any{"bad value!"}}
}

// apiArgs draws the path parameters and fields of one action of op: every value valid
// unless invalid, when one value is drawn from its invalid list (when it has one).
func apiArgs(rng *rand.Rand, op apiOp, invalid bool) (params map[string]string, args map[string]any) {
	type slot struct {
		name  string
		param bool
		d     domain
	}
	var slots []slot
	for _, p := range op.Params {
		d, ok := domainOf(op, p, true)
		if !ok {
			d = typeDomain(fieldSpec{Type: "string"})
		}
		slots = append(slots, slot{p, true, d})
	}
	names := make([]string, 0, len(op.Fields))
	for n := range op.Fields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d, ok := domainOf(op, n, false)
		if !ok {
			d = typeDomain(op.Fields[n])
		}
		slots = append(slots, slot{n, false, d})
	}
	bad := -1
	if invalid {
		var withInvalid []int
		for i, s := range slots {
			if len(s.d.invalid) > 0 {
				withInvalid = append(withInvalid, i)
			}
		}
		if len(withInvalid) > 0 {
			bad = withInvalid[rng.IntN(len(withInvalid))]
		}
	}
	params, args = map[string]string{}, map[string]any{}
	for i, s := range slots {
		var v any
		if i == bad {
			v = s.d.invalid[rng.IntN(len(s.d.invalid))]
		} else {
			// Fields are optional: a write names a few of them (a parameter always).
			if !s.param && i != bad && rng.IntN(3) != 0 && !requiredField(op, s.name) {
				continue
			}
			v = s.d.valid[rng.IntN(len(s.d.valid))]
		}
		if s.param {
			params[s.name] = fmt.Sprint(v)
		} else {
			args[s.name] = v
		}
	}
	return params, args
}

// requiredField: fields an operation is not worth sending without (a config write's
// credentials on create are added when the action runs, see resolveArgs).
func requiredField(op apiOp, name string) bool {
	return op.Method == "post" && strings.HasPrefix(op.Path, "/roles/") && name == "type"
}
