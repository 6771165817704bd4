package sim

import (
	"fmt"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// What operators do to a mount: role and config writes and deletes, drops, secret
// rotation, restarts, racing requests; and how the model follows what succeeded.

// concurrent runs act's first request, and act.Then while the first waits at act.Gate.
func (w *world) concurrent(a *app, act Action) {
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
		<-g.done
	} else {
		w.do(then)
	}
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
		<-g.done
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
	if err == nil && resp != nil && resp.IsError() {
		err = resp.Error()
	}
	if err != nil && !sf && !isCoded(err) {
		r := a.roles[name]
		inv := invNoInternalError
		if r != nil && r.damaged {
			inv = invDamagedRole
		}
		w.report(inv, "write "+name, "app%d write roles/%s %v failed: %v (damaged roles: %v)", a.idx, name, data, err, a.damagedNames())
	}
	return resp, err
}

// operate performs an operator's action and updates the model when it succeeds.
func (w *world) operate(a *app, act Action) {
	now := w.now()
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
			*r = roleModel{exists: true, typ: typ, account: account, ttl: time.Duration(act.N) * time.Second, noLease: act.B}
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
			a.b.InvalidateKey(w.ctx, "roles/"+act.Role)
			*r = roleModel{exists: true, damaged: true}
		}
		a.lastRoleChange = now
	case actDrop:
		if !r.exists || r.damaged || !a.configured {
			return
		}
		if act.B {
			// The seller re-authorised the application: the token Naver holds is dead.
			w.mu.Lock()
			tok := w.latest[fmt.Sprint(a.idx)+"|"+r.key()]
			if iss := w.issued[tok]; iss != nil {
				w.kill(iss)
			}
			w.mu.Unlock()
			w.emu.KillToken(tok)
		}
		resp, err, sf := a.request(logical.DeleteOperation, "token/"+act.Role, nil)
		if err != nil && !sf && !isCoded(err) {
			w.report(invNoInternalError, "drop", "app%d delete token/%s failed: %v", a.idx, act.Role, err)
		}
		if err == nil && (resp == nil || !resp.IsError()) {
			// A drop clears the key's back-off, not its budget (the request log stays).
			w.mu.Lock()
			k := a.key(r.key())
			k.lastOK, k.resetAt = true, now
			w.markDropped(a, r.key())
			w.mu.Unlock()
		}
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
			a.configured, a.cfgSecret = false, ""
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
		a.b.InvalidateKey(w.ctx, key)
	case actRestart:
		a.start()
	case actDropRestart:
		w.operate(a, Action{Kind: actDrop, App: act.App, Role: act.Role, B: act.B})
		a.start()
	case actRestartDrop:
		a.start()
		w.operate(a, Action{Kind: actDrop, App: act.App, Role: act.Role, B: act.B})
	case actStatus:
		w.checkOperatorView(a)
	}
	if act.Kind != actStatus {
		w.mu.Lock()
		w.stats.Faults["op-"+act.Kind]++
		w.mu.Unlock()
	}
}

// operateSellers performs an operator's action on the many-seller role and follows it in
// the models of its sellers (sellers/<account>).
func (w *world) operateSellers(a *app, act Action, now time.Time) {
	sellers := make([]*roleModel, w.p.ManySellers)
	for i := range sellers {
		name := sellerPath(a.idx, i)
		if a.roles[name] == nil {
			a.roles[name] = &roleModel{}
		}
		sellers[i] = a.roles[name]
	}
	exists := sellers[0].exists
	switch act.Kind {
	case actRoleCreate:
		data := map[string]any{"type": "SELLER", "allowed_account_ids": fmt.Sprintf("ncp_app%d_many*", a.idx), "ttl": act.N, "lease": !act.B}
		if _, err := w.writeRole(a, sellersRole, data); err == nil {
			for i, r := range sellers {
				*r = roleModel{exists: true, typ: "SELLER", account: manySellerID(a.idx, i), ttl: time.Duration(act.N) * time.Second, noLease: act.B}
			}
		}
		a.lastRoleChange = now
	case actRoleTTL:
		if !exists {
			return
		}
		if _, err := w.writeRole(a, sellersRole, map[string]any{"ttl": act.N}); err == nil {
			for _, r := range sellers {
				r.ttl = time.Duration(act.N) * time.Second
			}
		}
	case actRoleLease:
		if !exists {
			return
		}
		if _, err := w.writeRole(a, sellersRole, map[string]any{"lease": !act.B}); err == nil {
			for _, r := range sellers {
				r.noLease = act.B
			}
		}
	case actRoleDelete:
		if !exists {
			return
		}
		resp, err, sf := a.request(logical.DeleteOperation, "roles/"+sellersRole, nil)
		if err == nil && (resp == nil || !resp.IsError()) {
			for _, r := range sellers {
				*r = roleModel{}
			}
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

// writeConfig writes config fields and follows the model when the write succeeds.
func (w *world) writeConfig(a *app, data map[string]any) {
	now := w.now()
	w.mu.Lock()
	a.verifying = true
	w.mu.Unlock()
	resp, err, sf := a.request(logical.UpdateOperation, "config", data)
	w.mu.Lock()
	a.verifying = false
	w.mu.Unlock()
	if err != nil && !sf && !isCoded(err) {
		w.report(invNoInternalError, "config-write", "app%d write config failed: %v", a.idx, err)
	}
	if err != nil || (resp != nil && resp.IsError()) {
		if resp != nil {
			w.scanResponse(resp, fmt.Sprintf("app%d config write", a.idx))
		}
		return
	}
	if _, ok := data["client_id"]; ok {
		a.configured = true
		a.perHour, a.ahead, a.retries, a.timeout = 12, true, 1, 10*time.Second // perHour: the plugin's default
	}
	credentials := false
	if s, ok := data["client_secret"].(string); ok {
		credentials = s != a.cfgSecret
		a.cfgSecret = s
	}
	if v, ok := data["max_token_requests_per_hour"].(int); ok {
		a.perHour = v
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
	if credentials {
		a.lastConfigChange = now
		w.mu.Lock()
		for _, k := range a.keys {
			k.lastOK, k.resetAt = true, now
		}
		w.mu.Unlock()
	}
}
