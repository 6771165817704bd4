package sim

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Running a generated API action (actAPI): the request as Vault's router would send it,
// then what the model learns from its answer. Writes the model follows by reading the
// result back (a role) or by the fields that were accepted (the config, whose secret no
// read shows); any other operation is checked for what every answer must hold (no
// internal error, no secret).

// Symbols in generated values, resolved when the action runs.
const (
	symClient      = "$client"
	symLongClient  = "$long-client"
	symSecret      = "$secret"
	symWrongSecret = "$wrong-secret"
	symBase        = "$base"
	symUnreachable = "$unreachable"
	symProxy       = "$proxy"
	unreachableURL = "http://127.0.0.2:9/external"
	naverBaseURL   = "https://api.commerce.naver.com/external" // base_url's default
)

// resolve turns a generated value into what is sent.
func (w *world) resolve(a *app, v any) any {
	s, ok := v.(string)
	if !ok || !strings.Contains(s, "$") {
		return v
	}
	switch {
	case s == symClient:
		return a.clientID
	case s == symLongClient:
		return a.clientID + strings.Repeat("X", 60)
	case s == symSecret:
		return a.secret
	case s == symWrongSecret:
		return w.wrongSecret(a)
	case s == symUnreachable:
		return unreachableURL
	case s == symProxy:
		return "http://simproxy:" + w.proxyPassword(a) + "@127.0.0.1:3128"
	case strings.HasPrefix(s, symBase):
		return baseURL + strings.TrimPrefix(s, symBase)
	}
	return s
}

// wrongSecret is a well-formed client secret Naver does not know for app a.
func (w *world) wrongSecret(a *app) string {
	s := newSecret(w.seed, a.idx, 1000+a.gen)
	w.mu.Lock()
	w.secrets[s], w.secrets[s[7:]] = true, true
	w.mu.Unlock()
	return s
}

// proxyPassword is the password of app a's proxy_url: a secret like the client secret.
func (w *world) proxyPassword(a *app) string {
	p := fmt.Sprintf("SimProxyPass%08x", hash(w.seed, uint64(a.idx))%(1<<32))
	w.mu.Lock()
	w.secrets[p] = true
	w.mu.Unlock()
	return p
}

// api runs one generated API action.
func (w *world) api(a *app, act Action) {
	op, ok := opByID(act.S)
	if !ok {
		return // an operation the backend no longer declares
	}
	path := op.requestPath(act.Params)
	data := map[string]any{}
	for k, v := range act.Args {
		data[k] = w.resolve(a, v)
	}
	invalid := act.B
	w.mu.Lock()
	w.stats.Faults["api-"+op.ID]++
	w.mu.Unlock()
	section := strings.Split(strings.TrimPrefix(op.Path, "/"), "/")[0]
	switch {
	case section == "token" && op.Op == logical.ReadOperation:
		w.readWith(a, strings.TrimPrefix(path, "token/"), data, invalid)
		return
	case section == "token" && op.Op == logical.DeleteOperation && !invalid:
		force, _ := data["force"].(bool)
		w.drop(a, strings.TrimPrefix(path, "token/"), false, force)
		return
	case section == "config" && op.Op == logical.UpdateOperation:
		w.remember(a, fmt.Sprintf("%s api config-write %s", fmtOffset(w.now().Sub(epoch)), describeArgs(act.Args)))
		ok := w.writeConfig(a, data)
		if ok && invalid {
			w.report(invBadInput, "config", "app%d config write %s was accepted; the README refuses one of its values", a.idx, describeArgs(act.Args))
		}
		return
	case section == "config" && op.Op == logical.DeleteOperation:
		w.operate(a, Action{Kind: actConfigDel, App: a.idx})
		return
	case section == "roles" && op.Op == logical.UpdateOperation:
		w.writeRoleAPI(a, act.Params["name"], data, invalid, act.Args)
		return
	case section == "roles" && op.Op == logical.DeleteOperation:
		w.deleteRoleAPI(a, act.Params["name"])
		return
	}
	resp, err, sf := a.request(op.Op, path, data)
	for _, name := range []string{act.Params["name"], fmt.Sprint(data["role"])} {
		if r := a.roles[name]; r != nil && r.damaged {
			// An unreadable role may fail what names it, a status filter too (damaged-role
			// judges the rest).
			sf = true
		}
	}
	if err != nil && !sf && !isCoded(err) {
		w.report(invNoInternalError, op.ID, "app%d %s %s: %v", a.idx, op.Method, path, err)
	}
	if resp == nil {
		return
	}
	w.scanResponse(resp, fmt.Sprintf("app%d %s %s", a.idx, op.Method, path))
	if invalid && err == nil && !resp.IsError() && op.mutates() {
		w.report(invBadInput, op.ID, "app%d %s %s %s was accepted; the README refuses one of its values", a.idx, op.Method, path, describeArgs(act.Args))
	}
	if section == "status" && path == "status" && err == nil && !resp.IsError() && !sf {
		w.checkStatusAnswer(a, resp, data)
	}
}

// checkStatusAnswer checks what a generated status read says: the keys it lists (when it
// lists them) are named by a role, and its count of the application's requests is true.
func (w *world) checkStatusAnswer(a *app, resp *logical.Response, data map[string]any) {
	if keys, ok := resp.Data["keys"].([]map[string]any); ok && !a.lastStorageFault.After(a.lastRoleChange) {
		w.checkCachedNamed(a, keys)
	}
	if n, ok := resp.Data["application_requests_last_hour"]; ok {
		w.mu.Lock()
		w.checkAppCounts(a, int(asInt(n)), w.now())
		w.mu.Unlock()
	}
}

// writeRoleAPI writes roles/<name> with generated fields and follows the role by reading it
// back; a write the README refuses must be refused and change nothing.
func (w *world) writeRoleAPI(a *app, name string, data map[string]any, invalid bool, args map[string]any) {
	now := w.now()
	r := a.roles[name]
	if r == nil {
		r = &roleModel{}
		a.roles[name] = r
	}
	before := *r
	w.remember(a, fmt.Sprintf("%s api role-write %s %s [%s]", fmtOffset(now.Sub(epoch)), name, describeArgs(args), before.key()))
	_, err := w.writeRole(a, name, data)
	a.lastRoleChange = now
	w.readBackRole(a, name)
	if invalid && err == nil {
		w.report(invBadInput, "role "+name, "app%d role write %s %s was accepted; the README refuses one of its values", a.idx, name, describeArgs(args))
	}
	if err != nil && !before.uncertain && !r.uncertain && !before.damaged && !sameRole(before, *r) {
		w.report(invBadInput, "role changed "+name, "app%d role write %s %s was refused (%v), but the role changed: %+v → %+v", a.idx, name, describeArgs(args), err, before, *r)
	}
}

func sameRole(x, y roleModel) bool {
	return x.exists == y.exists && x.typ == y.typ && x.account == y.account && strings.Join(x.allowed, ",") == strings.Join(y.allowed, ",") &&
		x.ttl == y.ttl && x.minTTL == y.minTTL && x.noLease == y.noLease
}

// readBackRole sets the model of roles/<name> from what the backend answers.
func (w *world) readBackRole(a *app, name string) {
	r := a.roles[name]
	if r == nil {
		r = &roleModel{}
		a.roles[name] = r
	}
	resp, err, _ := a.request(logical.ReadOperation, "roles/"+name, nil)
	switch {
	case err != nil && strings.Contains(err.Error(), "sim: injected storage failure"):
		r.uncertain = true
	case err != nil || resp != nil && resp.IsError():
		// An entry this version cannot read (damaged, or from a newer plugin).
		if r.damaged {
			return
		}
		r.uncertain = true
	case resp == nil:
		*r = roleModel{}
	default:
		m := roleModel{exists: true, typ: fmt.Sprint(resp.Data["type"]), account: fmt.Sprint(resp.Data["account_id"])}
		switch v := resp.Data["allowed_account_ids"].(type) {
		case []string:
			m.allowed = append([]string(nil), v...)
		case []any:
			for _, e := range v {
				m.allowed = append(m.allowed, fmt.Sprint(e))
			}
		}
		if len(m.allowed) == 0 {
			m.allowed = nil
		}
		m.ttl = time.Duration(asInt(resp.Data["ttl"])) * time.Second
		m.minTTL = time.Duration(asInt(resp.Data["min_remaining_ttl"])) * time.Second
		lease, _ := resp.Data["lease"].(bool)
		m.noLease = !lease
		*r = m
	}
}

// deleteRoleAPI deletes roles/<name>.
func (w *world) deleteRoleAPI(a *app, name string) {
	r := a.roles[name]
	if r == nil {
		r = &roleModel{}
		a.roles[name] = r
	}
	now := w.now()
	w.remember(a, fmt.Sprintf("%s api role-delete %s [%s]", fmtOffset(now.Sub(epoch)), name, r.key()))
	w.noteUnstoredAtDelete(a, *r)
	resp, err, sf := a.request(logical.DeleteOperation, "roles/"+name, nil)
	a.lastRoleChange = now
	switch {
	case err == nil && (resp == nil || !resp.IsError()):
		*r = roleModel{}
	case err != nil && !sf && !isCoded(err) && !r.damaged:
		w.report(invNoInternalError, "delete "+name, "app%d delete roles/%s failed: %s", a.idx, name, errText(resp, err))
	case sf:
		r.uncertain = true
	}
}

// describeArgs prints generated fields in a stable order, secrets by their symbol.
func describeArgs(args map[string]any) string {
	names := make([]string, 0, len(args))
	for k := range args {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s=%v", k, args[k])
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// reachable reports whether a request's address is the emulator's (base_url's host and
// path, in any of its cosmetic spellings).
func reachable(u *url.URL) bool {
	host := strings.ToLower(u.Host)
	return (host == "127.0.0.1:9") && strings.HasPrefix(u.Path, "/external")
}

// baseState says whether base_url reaches the emulator, and its host.
func baseState(base string) (ok bool, host string) {
	u, err := url.Parse(base)
	if err != nil {
		return false, ""
	}
	return reachable(u), strings.ToLower(u.Host)
}

// noteUnstoredAtDelete notes, before a single-account role r is deleted, whether its key's
// token is in the backend's memory only (its storing failed): the key's next needless
// request then shows issue 25's item 3.
func (w *world) noteUnstoredAtDelete(a *app, r roleModel) {
	if !r.exists || r.damaged || r.many() {
		return
	}
	w.mu.Lock()
	unstored := slices.Contains(slices.Collect(maps.Values(a.unstored)), r.key())
	w.mu.Unlock()
	if unstored {
		w.noteKey(fmt.Sprint(a.idx)+"|"+r.key(), noteUnstoredDelete)
	}
}
