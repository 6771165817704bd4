package sim

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// What operators do to a mount: role and config writes and deletes, drops, secret
// rotation, restarts, racing requests; and how the model follows what succeeded.

// concurrent runs act's first request, and act.Then while the first waits at act.Gate.
func (w *world) concurrent(a *app, act Action) {
	w.mu.Lock()
	w.pairActive = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.pairActive = false
		w.mu.Unlock()
	}()
	if act.First != nil {
		w.concurrentPair(a, act)
		return
	}
	w.remember(a, fmt.Sprintf("%s concurrent %s with %s at %s", fmtOffset(w.now().Sub(epoch)), act.S, act.Then.Kind, act.Gate))
	w.mu.Lock()
	w.stats.Faults["op-concurrent-"+act.S+"+"+act.Then.Kind]++
	w.mu.Unlock()
	then := *act.Then
	g := &gate{prefix: act.Gate, skip: act.Skip, done: make(chan struct{})}
	g.then = func() { w.do(then) }
	w.mu.Lock()
	w.gate = g
	w.mu.Unlock()
	if act.Gate == "get:tokens/" && then.Kind == actDrop {
		// The token is in storage only after a restart: that is when it is loaded.
		a.start()
	}
	first := act
	first.Kind, first.Then, first.S = act.S, nil, ""
	if first.Kind == actRoleAccount {
		first.S = accountID(act.App, act.N)
	}
	// The model cannot tell which of two racing role writes lands last.
	if first.Kind == actRoleAccount && then.Kind == actRoleTTL {
		w.raceRoleWrites(a, first, then, g)
		return
	}
	w.do(first)
	w.mu.Lock()
	w.gate = nil
	fired := g.fired
	w.mu.Unlock()
	if fired {
		w.awaitGate(g)
	} else {
		w.do(then)
	}
}

// concurrentPair runs a generated pair: act.First, and act.Then while the first waits at
// act.Gate. The roles and config either may write are uncertain to the model until both
// are done and it has read them back; two reads of one key must share one request.
func (w *world) concurrentPair(a *app, act Action) {
	first, then := *act.First, *act.Then
	w.remember(a, fmt.Sprintf("%s concurrent %s with %s at %s", fmtOffset(w.now().Sub(epoch)), pairKind(first), pairKind(then), act.Gate))
	roles, config := map[string]bool{}, false
	for _, m := range []Action{first, then} {
		if m.Kind != actAPI {
			continue
		}
		op, ok := opByID(m.S)
		if !ok || !op.mutates() {
			continue
		}
		switch {
		case strings.HasPrefix(op.Path, "/roles/"):
			roles[m.Params["name"]] = true
		case op.Path == "/config":
			config = true
		}
	}
	w.mu.Lock()
	w.stats.Faults["op-pair-"+pairKind(first)+"@"+strings.SplitN(act.Gate, ":", 2)[0]+"+"+pairKind(then)]++
	w.stats.Faults["op-pair-gate-"+act.Gate]++
	for name := range roles {
		if a.roles[name] == nil {
			a.roles[name] = &roleModel{}
		}
		a.roles[name].uncertain = true
	}
	if config {
		a.cfgWriting++
	}
	bothRead := first.Kind == actAPI && then.Kind == actAPI && first.S == then.S && isTokenRead(first.S) &&
		first.Params["name"] == then.Params["name"] && first.Params["account_id"] == then.Params["account_id"]
	if bothRead {
		m := a.readModel(strings.TrimPrefix(mustOp(first.S).requestPath(first.Params), "token/"))
		w.pair = &readPair{app: a.idx, key: m.key()}
	}
	w.mu.Unlock()
	if isConfigDelete(first) || isConfigDelete(then) {
		// A read racing the config's delete: what it brings is the key's to keep (item 2).
		for _, m := range []Action{first, then} {
			if m.Kind == actAPI && isTokenRead(m.S) {
				r := a.readModel(strings.TrimPrefix(mustOp(m.S).requestPath(m.Params), "token/"))
				w.noteKey(fmt.Sprint(a.idx)+"|"+r.key(), noteConfigDeleteRace)
			}
		}
	}
	g := &gate{prefix: act.Gate, skip: act.Skip, done: make(chan struct{})}
	g.then = func() { w.do(then) }
	w.mu.Lock()
	w.gate = g
	w.mu.Unlock()
	w.do(first)
	w.mu.Lock()
	w.gate = nil
	fired := g.fired
	w.mu.Unlock()
	if fired {
		w.awaitGate(g)
	} else {
		w.do(then)
	}
	w.mu.Lock()
	if p := w.pair; p != nil && p.requests > 1 {
		w.violate(invOneFlight, "pair "+p.key, "app%d: two reads of key %s at once sent %d requests to Naver; concurrent reads share one", a.idx, p.key, p.requests)
	}
	w.pair = nil
	if config {
		a.cfgWriting--
	}
	w.mu.Unlock()
	for name := range roles {
		w.readBackRole(a, name)
	}
	if len(roles) > 0 || first.Kind == actRestart || then.Kind == actRestart || touchesRole(first) || touchesRole(then) {
		// A request that raced a role's change, or a restart, may leave a key cached that no
		// role names: status says so now, before a periodic run cleans it up.
		w.checkStatusKeys(a, noteAfterRace)
	}
}

// touchesRole reports whether a is a role write or delete.
func touchesRole(a Action) bool {
	if a.Kind != actAPI {
		return a.Kind == actRoleDelete || a.Kind == actRoleAccount || a.Kind == actRoleCreate
	}
	o, ok := opByID(a.S)
	return ok && o.mutates() && strings.HasPrefix(o.Path, "/roles/")
}

// pairKind names a pair member for reports: its kind, or its operation.
func pairKind(a Action) string {
	if a.Kind == actAPI {
		return a.S
	}
	return a.Kind
}

func isConfigDelete(a Action) bool {
	if a.Kind == actConfigDel {
		return true
	}
	o, ok := opByID(a.S)
	return a.Kind == actAPI && ok && o.Op == logical.DeleteOperation && o.Path == "/config"
}

func isTokenRead(id string) bool {
	o, ok := opByID(id)
	return ok && o.Op == logical.ReadOperation && strings.HasPrefix(o.Path, "/token/")
}

func mustOp(id string) apiOp {
	o, _ := opByID(id)
	return o
}

// raceRoleWrites: an account switch and a ttl write to one role, the second while the first
// is between reading the role and storing it. Both must land.
func (w *world) raceRoleWrites(a *app, first, then Action, g *gate) {
	r := a.roles[first.Role]
	if r == nil || !r.exists || r.damaged || r.typ != "SELLER" {
		w.mu.Lock()
		w.gate = nil
		w.mu.Unlock()
		return
	}
	var thenErr error
	g.then = func() {
		_, thenErr = w.writeRole(a, then.Role, map[string]any{"ttl": then.N})
	}
	_, err := w.writeRole(a, first.Role, map[string]any{"account_id": first.S})
	w.mu.Lock()
	w.gate = nil
	fired := g.fired
	w.mu.Unlock()
	if fired {
		w.awaitGate(g)
	} else {
		_, thenErr = w.writeRole(a, then.Role, map[string]any{"ttl": then.N})
	}
	now := w.now()
	a.lastRoleChange = now
	if err != nil || thenErr != nil {
		r.uncertain = true
		return
	}
	resp, rerr, _ := a.request(logical.ReadOperation, "roles/"+first.Role, nil)
	if rerr != nil || resp == nil || resp.IsError() {
		r.uncertain = true
		return
	}
	gotAccount, gotTTL := fmt.Sprint(resp.Data["account_id"]), time.Duration(asInt(resp.Data["ttl"]))*time.Second
	want := time.Duration(then.N) * time.Second
	if gotAccount != first.S || gotTTL != want {
		w.report(invRoleWrites, first.Role, "app%d role %s: a write of account_id=%s and a concurrent write of ttl=%s both succeeded, but the role has account_id=%s ttl=%s",
			a.idx, first.Role, first.S, want, gotAccount, gotTTL)
		r.uncertain = true
		return
	}
	r.account, r.ttl, r.uncertain = first.S, want, false
}

// writeRole writes fields to roles/<name>; the error is non-nil when the write was refused.
func (w *world) writeRole(a *app, name string, data map[string]any) (*logical.Response, error) {
	resp, err, sf := a.request(logical.UpdateOperation, "roles/"+name, data)
	if err != nil && !sf && !isCoded(err) {
		r := a.roles[name]
		inv := invNoInternalError
		if r != nil && r.damaged {
			inv = invDamagedRole
		}
		w.report(inv, "write "+name, "app%d write roles/%s %v failed: %v (damaged roles: %v)", a.idx, name, data, err, a.damagedNames())
	}
	if err == nil && resp != nil && resp.IsError() {
		err = resp.Error()
	}
	return resp, err
}

// operate performs an operator's action and updates the model when it succeeds.
func (w *world) operate(a *app, act Action) {
	now := w.now()
	if act.Kind == actDrop {
		w.drop(a, act.Role, act.B, act.N == 1)
		return
	}
	r := a.roles[act.Role]
	if r == nil && act.Role != "" {
		r = &roleModel{}
		a.roles[act.Role] = r
	}
	keyBefore := ""
	if r != nil && r.exists {
		keyBefore = r.key()
	}
	defer func() {
		if act.Kind == actStatus {
			return
		}
		keys := "[" + keyBefore
		if r != nil && r.exists && r.key() != keyBefore {
			keys += " → " + r.key()
		}
		w.remember(a, fmt.Sprintf("%s %s %s %s]", fmtOffset(now.Sub(epoch)), act.Kind, act.Role, keys))
	}()
	if act.Role == sellersRole {
		w.operateSellers(a, act, now)
		return
	}
	switch act.Kind {
	case actRoleCreate:
		typ, account := "SELLER", act.S
		if account == "" {
			typ = "SELF"
		}
		data := map[string]any{"type": typ, "account_id": account, "ttl": act.N, "lease": !act.B}
		if _, err := w.writeRole(a, act.Role, data); err == nil {
			// A write changes only the fields it names (min_remaining_ttl stays).
			minTTL := r.minTTL
			if !r.exists || r.damaged {
				minTTL = 0
			}
			*r = roleModel{exists: true, typ: typ, account: account, ttl: time.Duration(act.N) * time.Second, noLease: act.B, minTTL: minTTL}
		}
		a.lastRoleChange = now
	case actRoleAccount:
		if !r.exists || r.damaged {
			return
		}
		typ := "SELLER"
		if act.S == "" {
			typ = "SELF"
		}
		if _, err := w.writeRole(a, act.Role, map[string]any{"type": typ, "account_id": act.S}); err == nil {
			r.typ, r.account, r.uncertain = typ, act.S, false
		}
		a.lastRoleChange = now
	case actRoleTTL:
		if !r.exists || r.damaged {
			return
		}
		if _, err := w.writeRole(a, act.Role, map[string]any{"ttl": act.N}); err == nil {
			r.ttl = time.Duration(act.N) * time.Second
		}
	case actRoleLease:
		if !r.exists || r.damaged {
			return
		}
		if _, err := w.writeRole(a, act.Role, map[string]any{"lease": !act.B}); err == nil {
			r.noLease = act.B
		}
	case actRoleDelete:
		if !r.exists {
			return
		}
		w.noteUnstoredAtDelete(a, *r)
		resp, err, sf := a.request(logical.DeleteOperation, "roles/"+act.Role, nil)
		if err == nil && (resp == nil || !resp.IsError()) {
			*r = roleModel{}
		} else if !sf {
			inv := invNoInternalError
			if r.damaged {
				inv = invDamagedRole
			}
			w.report(inv, "delete "+act.Role, "app%d delete roles/%s failed: %s (damaged roles: %v)", a.idx, act.Role, errText(resp, err), a.damagedNames())
		}
		a.lastRoleChange = now
	case actRoleDamage:
		value := `{"format":99,"type":"SELLER","account_id":"x"}`
		if act.S == "garbage" {
			value = `{"type":`
		}
		if err := a.storage.Put(w.ctx, &logical.StorageEntry{Key: "roles/" + act.Role, Value: []byte(value)}); err == nil {
			a.backend().InvalidateKey(w.ctx, "roles/"+act.Role)
			*r = roleModel{exists: true, damaged: true}
		}
		a.lastRoleChange = now
	case actRotate:
		if !a.configured {
			return
		}
		a.gen++
		a.secret = newSecret(w.seed, a.idx, a.gen)
		w.mu.Lock()
		w.secrets[a.secret], w.secrets[a.secret[7:]] = true, true
		w.mu.Unlock()
		w.emu.SetClientSecret(a.clientID, a.secret)
		w.writeConfig(a, map[string]any{"client_secret": a.secret, "verify_connection": a.gen%2 == 0})
	case actConfigTune:
		if !a.configured {
			return
		}
		data := map[string]any{}
		switch act.S {
		case "background_refresh":
			data[act.S] = act.N != 0
		case "max_retries":
			data[act.S] = act.N
		case "max_token_requests_per_hour":
			data[act.S] = []int{4, 6, 8}[act.N]
		case "request_timeout":
			data[act.S] = []string{"5s", "10s", "30s"}[act.N]
		}
		w.writeConfig(a, data)
	case actBaseURL:
		if a.configured {
			w.writeConfig(a, map[string]any{"base_url": baseURL + "/"})
		}
	case actConfigDel:
		resp, err, sf := a.request(logical.DeleteOperation, "config", nil)
		if err == nil && (resp == nil || !resp.IsError()) {
			a.configured, a.cfgSecret, a.cfgBase = false, "", ""
			a.lastConfigChange = now
		} else if !sf {
			w.report(invNoInternalError, "config-delete", "app%d delete config failed: %s", a.idx, errText(resp, err))
		}
	case actConfigNew:
		if a.configured {
			return
		}
		w.writeConfig(a, map[string]any{"client_id": a.clientID, "client_secret": a.secret, "base_url": baseURL,
			"verify_connection": act.B, "max_retries": 1})
	case actInvalidate:
		key := "config"
		switch act.S {
		case "role":
			key = "roles/" + act.Role
		case "token":
			keys, _ := a.storage.List(w.ctx, "tokens/")
			if len(keys) == 0 {
				return
			}
			key = "tokens/" + keys[hash(w.seed, uint64(now.Unix()))%uint64(len(keys))]
		}
		a.backend().InvalidateKey(w.ctx, key)
	case actRestart:
		a.start()
		if w.p.Alphabet > 0 {
			// A start checks the tokens it loads (a role deleted while the plugin was down).
			w.checkStatusKeys(a, noteAfterStart)
		}
	case actDropRestart:
		w.operate(a, Action{Kind: actDrop, App: act.App, Role: act.Role, B: act.B, N: act.N})
		a.start()
	case actRestartDrop:
		a.start()
		w.operate(a, Action{Kind: actDrop, App: act.App, Role: act.Role, B: act.B, N: act.N})
	case actStatus:
		w.checkOperatorView(a)
	}
	if act.Kind != actStatus {
		w.mu.Lock()
		w.stats.Faults["op-"+act.Kind]++
		w.mu.Unlock()
	}
}

// operateSellers performs an operator's action on the many-seller role (allowed_account_ids
// ncp_app<i>_many*); its sellers are read as sellers/<account>.
func (w *world) operateSellers(a *app, act Action, now time.Time) {
	r := a.roles[sellersRole]
	if r == nil {
		r = &roleModel{}
		a.roles[sellersRole] = r
	}
	switch act.Kind {
	case actRoleCreate:
		glob := fmt.Sprintf("ncp_app%d_many*", a.idx)
		data := map[string]any{"type": "SELLER", "allowed_account_ids": glob, "ttl": act.N, "lease": !act.B}
		if _, err := w.writeRole(a, sellersRole, data); err == nil {
			// A write changes only the fields it names (README): over an existing role,
			// min_remaining_ttl stays, as for a single-account role.
			minTTL := r.minTTL
			if !r.exists || r.damaged {
				minTTL = 0
			}
			*r = roleModel{exists: true, typ: "SELLER", allowed: []string{glob}, ttl: time.Duration(act.N) * time.Second, noLease: act.B, minTTL: minTTL}
		}
		a.lastRoleChange = now
	case actRoleTTL:
		if !r.exists || r.damaged {
			return
		}
		if _, err := w.writeRole(a, sellersRole, map[string]any{"ttl": act.N}); err == nil {
			r.ttl = time.Duration(act.N) * time.Second
		}
	case actRoleLease:
		if !r.exists || r.damaged {
			return
		}
		if _, err := w.writeRole(a, sellersRole, map[string]any{"lease": !act.B}); err == nil {
			r.noLease = act.B
		}
	case actRoleDelete:
		if !r.exists {
			return
		}
		resp, err, sf := a.request(logical.DeleteOperation, "roles/"+sellersRole, nil)
		if err == nil && (resp == nil || !resp.IsError()) {
			*r = roleModel{}
		} else if !sf {
			w.report(invNoInternalError, "delete "+sellersRole, "app%d delete roles/%s failed: %s", a.idx, sellersRole, errText(resp, err))
		}
		a.lastRoleChange = now
	default:
		return
	}
	w.remember(a, fmt.Sprintf("%s %s %s [SELLER|ncp_app%d_many*]", fmtOffset(now.Sub(epoch)), act.Kind, sellersRole, a.idx))
	w.mu.Lock()
	w.stats.Faults["op-sellers-"+act.Kind]++
	w.mu.Unlock()
}

// markDropped records that a drop of the app's key succeeded: every token of the key killed
// at Naver so far is one the plugin must not serve to a read that starts from now on
// (a read already running may have loaded it before the drop). Under w.mu.
func (w *world) markDropped(a *app, key string) {
	w.dropsDone++
	undropped := w.killedUndropped[:0]
	for _, iss := range w.killedUndropped {
		if iss.app == a.idx && iss.key == key {
			iss.droppedBy = w.dropsDone
		} else {
			undropped = append(undropped, iss)
		}
	}
	w.killedUndropped = undropped
}

// kill records that Naver killed iss (a seller re-authorised the application). Under w.mu.
func (w *world) kill(iss *issuedToken) {
	if !iss.killed {
		iss.killed = true
		w.killedUndropped = append(w.killedUndropped, iss)
	}
}

// remember keeps the app's last operator actions for violation reports.
func (w *world) remember(a *app, what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	a.history = append(a.history, what)
	if len(a.history) > 8 {
		a.history = a.history[1:]
	}
}

// writeConfig writes config fields and follows the model when the write succeeds (it
// reports whether it did).
func (w *world) writeConfig(a *app, data map[string]any) bool {
	now := w.now()
	w.mu.Lock()
	a.verifying = true
	a.cfgWriting++
	// A token the write's verification gets belongs to the credentials it writes.
	a.verifyCred = a.credGen
	if secret, base := a.credentialsAfter(data); secret != a.credSecret || baseHost(base) != baseHost(a.credBase) {
		a.verifyCred = a.credGen + 1
	}
	w.mu.Unlock()
	resp, err, sf := a.request(logical.UpdateOperation, "config", data)
	w.mu.Lock()
	a.verifying = false
	a.cfgWriting--
	w.mu.Unlock()
	if err != nil && !sf && !isCoded(err) {
		w.report(invNoInternalError, "config-write", "app%d write config failed: %v", a.idx, err)
	}
	if resp != nil {
		w.scanResponse(resp, fmt.Sprintf("app%d config write", a.idx))
	}
	if err != nil || (resp != nil && resp.IsError()) {
		if !sf {
			w.checkVerificationRefused(a, data, errText(resp, err))
		}
		w.mu.Lock()
		if iss := w.issued[w.latest[fmt.Sprint(a.idx)+"|SELF|"]]; iss != nil && iss.verification && !iss.at.Before(now) {
			// Its verification got a token, then the write failed (storage): the token is
			// Naver's current SELF token, which the plugin may have thrown away.
			w.verificationLost[w.latest[fmt.Sprint(a.idx)+"|SELF|"]] = true
		}
		w.mu.Unlock()
		return false
	}
	if _, ok := data["client_id"]; ok && !a.configured {
		a.configured = true
		a.perHour, a.ahead, a.retries, a.timeout = 12, true, 1, 10*time.Second // the plugin's defaults but max_retries
		w.setAppPerHour(a, 0, now)
		// base_url's default is Naver's own address, which the simulated network does not
		// reach.
		a.baseOK, a.oldHost = false, ""
		a.cfgSecret, a.cfgBase = "", naverBaseURL
	}
	secret, base := a.credentialsAfter(data)
	ok, host := baseState(base)
	_, cfgHost := baseState(a.cfgBase)
	// credentials: what the config held before this write changed (a config written again
	// after a delete starts the model's view of back-offs over, as the plugin's memory
	// does). The credentials tokens and back-offs belong to changed only if they differ
	// from the last ones configured, kept across a delete (the same written again keep
	// their tokens; a cosmetic base_url is no change).
	credentials := secret != a.cfgSecret || host != cfgHost
	if _, credHost := baseState(a.credBase); secret != a.credSecret || host != credHost {
		if a.credSecret != "" {
			a.credChangedAt = now
			if host != credHost {
				a.baseChangedAt = now
			}
		}
		a.credGen++
		a.credSecret, a.credBase = secret, base
	}
	if ok && !a.baseOK {
		_, a.oldHost = baseState(a.cfgBase)
	}
	if !ok {
		a.oldHost = ""
	}
	a.cfgSecret, a.cfgBase, a.baseOK = secret, base, ok
	if v, ok := data["max_token_requests_per_hour"].(int); ok {
		a.perHour = v
	}
	if v, ok := data["max_application_requests_per_hour"].(int); ok {
		w.setAppPerHour(a, v, now)
	}
	if v, ok := data["background_refresh"].(bool); ok {
		a.ahead = v
	}
	if v, ok := data["max_retries"].(int); ok {
		a.retries = v
	}
	if v, ok := data["request_timeout"].(string); ok {
		a.timeout, _ = time.ParseDuration(v)
	}
	if !credentials {
		w.mu.Lock()
		for keyID, k := range a.keys {
			if !k.lastOK && k.lastAt.After(k.resetAt) {
				defer w.noteKey(fmt.Sprint(a.idx)+"|"+keyID, noteConfigAfterFailure)
			}
		}
		w.mu.Unlock()
	}
	if credentials {
		a.lastConfigChange = now
		w.mu.Lock()
		for _, k := range a.keys {
			k.lastOK, k.resetAt, k.raReset = true, now, now
		}
		w.mu.Unlock()
	}
	return true
}

// credentialsAfter is the client secret and base_url the config holds once data is
// written (on a mount without config, base_url's default).
func (a *app) credentialsAfter(data map[string]any) (secret, base string) {
	secret, base = a.cfgSecret, a.cfgBase
	if !a.configured {
		secret, base = "", naverBaseURL
	}
	if s, ok := data["client_secret"].(string); ok {
		secret = s
	}
	if b, ok := data["base_url"].(string); ok {
		base = b
	}
	return secret, base
}

// baseHost is base_url's address (host and port, lower case).
func baseHost(base string) string {
	_, h := baseState(base)
	return h
}

// drop deletes token/<path> (path: a role, or <role>/<account> on a many-seller role):
// kill first makes the key's token dead at Naver (the seller re-authorised the
// application); force drops without the plugin's probe.
func (w *world) drop(a *app, path string, kill, force bool) {
	now := w.now()
	r := a.readModel(path)
	kind := actDrop
	if force {
		kind = actDrop + "-force"
	}
	w.remember(a, fmt.Sprintf("%s %s %s [%s]", fmtOffset(now.Sub(epoch)), kind, path, r.key()))
	if !r.exists || r.damaged || !a.configured {
		return
	}
	id := fmt.Sprint(a.idx) + "|" + r.key()
	if kill {
		w.mu.Lock()
		tok := w.latest[id]
		if iss := w.issued[tok]; iss != nil {
			w.kill(iss)
		}
		w.mu.Unlock()
		w.emu.KillToken(tok)
	}
	var data map[string]any
	if force {
		data = map[string]any{"force": true}
		// The operator takes the risk the README names: if Naver still holds the token,
		// the key's next request is needless (excused once, see excuseForcedDrop), were it
		// sent while the drop runs.
		w.mu.Lock()
		if iss := w.issued[w.latest[id]]; iss != nil && !iss.killed && iss.expires.Sub(now) >= refreshWindow {
			w.forcedLive[id] = w.latest[id]
		}
		w.mu.Unlock()
	}
	resp, err, sf := a.request(logical.DeleteOperation, "token/"+path, data)
	if err != nil && !sf && !isCoded(err) {
		w.report(invNoInternalError, "drop", "app%d delete token/%s failed: %v", a.idx, path, err)
	}
	if resp != nil {
		w.scanResponse(resp, fmt.Sprintf("app%d delete token/%s", a.idx, path))
	}
	if err == nil && (resp == nil || !resp.IsError()) {
		// A drop clears the key's back-off, not its budget (the request log stays).
		w.mu.Lock()
		k := a.key(r.key())
		k.lastOK, k.resetAt = true, now
		w.markDropped(a, r.key())
		k.droppedAt = now
		w.mu.Unlock()
	} else if force {
		w.mu.Lock()
		delete(w.forcedLive, id) // nothing was dropped
		w.mu.Unlock()
	}
	w.mu.Lock()
	w.stats.Faults["op-"+kind]++
	w.mu.Unlock()
}

// awaitGate waits for the second action of a pair to end, letting it have the turn.
func (w *world) awaitGate(g *gate) {
	w.turn.Unlock()
	<-g.done
	w.turn.Lock()
}
