//go:build acceptance

package acceptance

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRaftClusterFailover runs the plugin in a 3-node Vault cluster with integrated storage
// (Raft) on loopback. A token read through a standby is forwarded to the active node and is
// the cached token; after the active node stops and another is elected, reads through the new
// active node and through the remaining standby get the same token with no new request to
// Naver, and config and role are intact. A config write with a rotated client secret through
// a standby drops the cached tokens cluster-wide: the next read, through the other node, asks
// Naver for a new token that Naver accepts.
func TestRaftClusterFailover(t *testing.T) {
	em := startEmulator(t, emulatorOpts{})
	active, standbys := startRaftCluster(t, em)
	active.write(t, "navercommerce/roles/seller", "type=SELLER", "account_id=ncp_raft", "ttl=2h")
	sellerKey := em.key("SELLER", "ncp_raft")

	first := active.readToken(t, "navercommerce", "seller")
	base := em.stats(t)
	if base.TokenRequests != 2 || base.Keys[sellerKey].Requests != 1 {
		t.Fatalf("after configuring and one read the emulator counted %d token requests (%d for the seller), want 2 (config verification, seller) and 1", base.TokenRequests, base.Keys[sellerKey].Requests)
	}
	cfgBefore := cliData(t, active, "navercommerce/config")
	roleBefore := cliData(t, active, "navercommerce/roles/seller")

	// Through a standby: forwarded to the active node, the cached token, no request to Naver.
	viaStandby := readTokenRetry(t, standbys[0], "navercommerce", "seller")
	if viaStandby.AccessToken != first.AccessToken {
		t.Errorf("a read through the standby got another token than the active node's cached one")
	}
	if st := em.stats(t); st.TokenRequests != base.TokenRequests {
		t.Errorf("a read through the standby asked Naver: %d token requests, was %d", st.TokenRequests, base.TokenRequests)
	}

	// Fail over: the active node stops; one of the others takes over.
	active.stop(t)
	survivors := standbys
	newActive, standby := waitFailover(t, survivors)
	t.Logf("failover: %s stopped; %s is active, %s standby", active.addr, newActive.addr, standby.addr)

	afterActive := readTokenRetry(t, newActive, "navercommerce", "seller")
	afterStandby := readTokenRetry(t, standby, "navercommerce", "seller")
	if afterActive.AccessToken != first.AccessToken || afterStandby.AccessToken != first.AccessToken {
		t.Errorf("after the failover the engine served another token than the cached one (new active: same %v; standby: same %v)",
			afterActive.AccessToken == first.AccessToken, afterStandby.AccessToken == first.AccessToken)
	}
	if afterActive.LeaseDuration > 2*3600 || afterActive.LeaseDuration <= 0 {
		t.Errorf("role ttl=2h: lease_duration after the failover = %d", afterActive.LeaseDuration)
	}
	if st := em.stats(t); st.TokenRequests != base.TokenRequests {
		t.Errorf("after the failover the plugin asked Naver again: %d token requests, was %d", st.TokenRequests, base.TokenRequests)
	}
	if !em.valid(t, afterActive.AccessToken) {
		t.Errorf("the token served after the failover is not valid at the emulator")
	}
	for _, n := range survivors {
		if got := cliData(t, n, "navercommerce/config"); !reflect.DeepEqual(got, cfgBefore) {
			t.Errorf("config read through %s after the failover = %v, before = %v", n.addr, got, cfgBefore)
		}
		if got := cliData(t, n, "navercommerce/roles/seller"); !reflect.DeepEqual(got, roleBefore) {
			t.Errorf("role read through %s after the failover = %v, before = %v", n.addr, got, roleBefore)
		}
	}
	// A lease issued by the old active node is known to the new one.
	if _, err := newActive.api.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": first.LeaseID}); err != nil {
		t.Errorf("a lease issued before the failover is gone: %v", err)
	}

	// The secret is re-issued at Naver (old tokens revoked there) and written through the
	// standby; the write is forwarded to the active node and verified with the new secret.
	newSecret := newClientSecret()
	body, _ := json.Marshal(map[string]string{"client_id": em.ClientID, "client_secret": newSecret})
	em.admin(t, "POST", "client-secret", "application/json", strings.NewReader(string(body)), nil)
	if em.valid(t, first.AccessToken) {
		t.Fatalf("the emulator still accepts the token of the old secret after the rotation")
	}
	beforeWrite := em.stats(t)
	standby.write(t, "navercommerce/config", "client_secret="+newSecret)
	afterWrite := em.stats(t)
	if afterWrite.TokenRequests != beforeWrite.TokenRequests+1 {
		t.Errorf("the config write through the standby made %d token requests, want 1 (the verification)", afterWrite.TokenRequests-beforeWrite.TokenRequests)
	}

	// The other node: the cache was dropped, so Naver is asked for a new seller token.
	rotated := readTokenRetry(t, newActive, "navercommerce", "seller")
	afterRead := em.stats(t)
	if afterRead.TokenRequests != afterWrite.TokenRequests+1 || afterRead.Keys[sellerKey].Requests != afterWrite.Keys[sellerKey].Requests+1 {
		t.Errorf("the read after the secret change made %d token requests (%d for the seller), want 1 and 1: the cached token of the old secret was served",
			afterRead.TokenRequests-afterWrite.TokenRequests, afterRead.Keys[sellerKey].Requests-afterWrite.Keys[sellerKey].Requests)
	}
	if rotated.AccessToken == first.AccessToken {
		t.Errorf("after the secret change the engine served the token of the old secret")
	}
	if !em.valid(t, rotated.AccessToken) {
		t.Errorf("the token read after the secret change is not valid at the emulator")
	}
	if status, _ := em.callAPI(t, rotated.AccessToken); status != 200 {
		t.Errorf("the emulator's API answered %d to the token read after the secret change", status)
	}
	// And through the standby: the new token from the cache, no further request.
	again := readTokenRetry(t, standby, "navercommerce", "seller")
	if again.AccessToken != rotated.AccessToken {
		t.Errorf("a read through the standby after the secret change got another token than the new cached one")
	}
	final := em.stats(t)
	if final.TokenRequests != afterRead.TokenRequests {
		t.Errorf("a read through the standby after the secret change asked Naver: %d token requests, was %d", final.TokenRequests, afterRead.TokenRequests)
	}
	if len(final.Violations) > 0 {
		t.Errorf("the emulator saw violations of Naver's rules: %v", final.Violations)
	}
	for k, s := range final.Keys {
		if s.MaxInFlight > 1 {
			t.Errorf("key %s had %d requests in flight at once", k, s.MaxInFlight)
		}
	}
}

// startRaftCluster starts a 3-node cluster with integrated storage (Raft) on loopback, node 1
// initialised and active and the others joined as voters, with the engine enabled at
// navercommerce/ and configured for em's application. The audit log joins the hygiene scan
// (whichever node is active writes to it: they share this machine).
func startRaftCluster(t *testing.T, em *emulator) (active *vaultProc, standbys []*vaultProc) {
	t.Helper()
	// Each node is started before the next one picks its ports, so no two nodes share one.
	nodes := make([]*vaultProc, 3)
	for i := range nodes {
		nodes[i] = startRaftNode(t, fmt.Sprintf("node%d", i+1))
	}
	n1 := nodes[0]

	// Node 1: init, unseal, active leader of a one-node cluster.
	out := n1.cli(t, "operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json")
	var init struct {
		Keys      []string `json:"unseal_keys_b64"`
		RootToken string   `json:"root_token"`
	}
	if err := json.Unmarshal([]byte(out), &init); err != nil || len(init.Keys) != 1 || init.RootToken == "" {
		t.Fatalf("vault operator init: %v: %s", err, out)
	}
	noteSecret(init.Keys[0], "the unseal key")
	for _, n := range nodes {
		n.unsealKey, n.token = init.Keys[0], init.RootToken
		n.api.SetToken(n.token)
	}
	n1.unseal(t)
	// New voters are promoted after the stabilization time (10 s by default).
	n1.cli(t, "operator", "raft", "autopilot", "set-config", "-server-stabilization-time=1s")

	// Nodes 2 and 3 join node 1 and are unsealed with the same key.
	for _, n := range nodes[1:] {
		n.cli(t, "operator", "raft", "join", n1.addr)
		n.cli(t, "operator", "unseal", n.unsealKey)
		waitHealth(t, n, "standby", func(initialized, sealed, standby bool) bool { return initialized && !sealed && standby })
	}
	waitFor(t, 60*time.Second, 200*time.Millisecond, "3 voters in the Raft configuration", func() (bool, error) {
		servers, err := raftPeers(n1)
		if err != nil {
			return false, err
		}
		voters := 0
		for _, s := range servers {
			if s.Voter {
				voters++
			}
		}
		return voters == 3, fmt.Errorf("peers: %+v", servers)
	})
	active, standbys = activeNode(t, nodes)
	if active != n1 {
		t.Fatalf("the active node is %s, want node1 (the one initialised)", active.addr)
	}
	for _, s := range standbys {
		waitLeaderKnown(t, s, active)
	}

	// The engine on the active node; the audit log joins the hygiene scan (whichever node is
	// active writes to it: they share this machine).
	active.enableAudit(t)
	active.registerPlugin(t)
	active.enable(t, "navercommerce")
	active.configure(t, "navercommerce", em)
	for _, s := range standbys {
		waitMounted(t, s, "navercommerce")
	}
	return active, standbys
}

// waitMounted waits until standby s serves mount's paths. Vault's standbys forward every
// request, so they do at once. OpenBao's standbys route requests themselves, and until one
// has loaded a new mount from storage it answers 404 "no handler for route" for the mount's
// paths: a request, even one it would forward, does not reach the engine.
func waitMounted(t *testing.T, s *vaultProc, mount string) {
	t.Helper()
	start := time.Now()
	waitFor(t, 30*time.Second, 20*time.Millisecond, s.addr+" to serve "+mount+"/", func() (bool, error) {
		// A 404 is no error to the API client: it answers nothing.
		info, err := s.api.Logical().Read(mount + "/info")
		if err == nil && info == nil {
			err = errors.New("404: no handler for the mount yet")
		}
		return err == nil, err
	})
	t.Logf("%s served %s/ %v after the engine was set up on the active node", s.addr, mount, time.Since(start).Round(time.Millisecond))
}

// waitFailover waits until one of the two survivors of a stopped active node is active and
// the other names it as the leader.
func waitFailover(t *testing.T, survivors []*vaultProc) (newActive, standby *vaultProc) {
	t.Helper()
	waitFor(t, 60*time.Second, 100*time.Millisecond, "a new active node among the survivors", func() (bool, error) {
		newActive, standby = nil, nil
		for i, n := range survivors {
			l, err := n.api.Sys().Leader()
			if err != nil {
				return false, err
			}
			if l.IsSelf {
				newActive, standby = n, survivors[1-i]
			}
		}
		if newActive == nil {
			return false, errors.New("no survivor says it is the leader")
		}
		h, err := newActive.api.Sys().Health()
		if err != nil {
			return false, err
		}
		if h.Sealed || h.Standby {
			return false, fmt.Errorf("the new leader %s: sealed %v, standby %v", newActive.addr, h.Sealed, h.Standby)
		}
		l, err := standby.api.Sys().Leader()
		if err != nil {
			return false, err
		}
		return l.LeaderAddress == newActive.addr, fmt.Errorf("the standby %s names leader %q", standby.addr, l.LeaderAddress)
	})
	return newActive, standby
}

// startRaftNode starts a non-dev Vault server with integrated storage, sealed and not yet
// initialised, with its own plugin directory (a copy of the plugin binary).
func startRaftNode(t *testing.T, nodeID string) *vaultProc {
	t.Helper()
	v := newVault(t, false)
	data := mkdir(t, filepath.Join(v.dir, "raft"))
	// performance_multiplier = 1 and short autopilot intervals: elections and voter
	// promotion in about a second instead of ten.
	v.writeServerConfig(t, fmt.Sprintf(`storage "raft" {
  path                         = %q
  node_id                      = %q
  performance_multiplier       = 1
  autopilot_reconcile_interval = "1s"
  autopilot_update_interval    = "500ms"
}`, data, nodeID))
	v.start(t)
	return v
}

// waitHealth waits until v's sys/health satisfies ok.
func waitHealth(t *testing.T, v *vaultProc, what string, ok func(initialized, sealed, standby bool) bool) {
	t.Helper()
	waitFor(t, 30*time.Second, 50*time.Millisecond, v.addr+" to be "+what, func() (bool, error) {
		if v.proc.exited() {
			t.Fatalf("vault server %s exited: %v\n%s", v.addr, v.proc.err, v.proc.tail(30))
		}
		h, err := v.api.Sys().Health()
		if err != nil {
			return false, err
		}
		return ok(h.Initialized, h.Sealed, h.Standby), fmt.Errorf("initialized %v, sealed %v, standby %v", h.Initialized, h.Sealed, h.Standby)
	})
}

// raftServer is a server of `vault operator raft list-peers -format=json`.
type raftServer struct {
	NodeID string `json:"node_id"`
	Leader bool   `json:"leader"`
	Voter  bool   `json:"voter"`
}

func raftPeers(v *vaultProc) ([]raftServer, error) {
	out, err := v.cliErr("operator", "raft", "list-peers", "-format=json")
	if err != nil {
		return nil, err
	}
	var resp struct {
		Data struct {
			Config struct {
				Servers []raftServer `json:"servers"`
			} `json:"config"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		return nil, fmt.Errorf("list-peers: %w: %s", err, out)
	}
	return resp.Data.Config.Servers, nil
}

// activeNode returns the node that is active and the others, which must be standbys.
func activeNode(t *testing.T, nodes []*vaultProc) (*vaultProc, []*vaultProc) {
	t.Helper()
	var active *vaultProc
	var standbys []*vaultProc
	for _, n := range nodes {
		h, err := n.api.Sys().Health()
		if err != nil {
			t.Fatalf("sys/health of %s: %v", n.addr, err)
		}
		switch {
		case h.Sealed:
			t.Fatalf("%s is sealed", n.addr)
		case h.Standby:
			standbys = append(standbys, n)
		case active != nil:
			t.Fatalf("two active nodes: %s and %s", active.addr, n.addr)
		default:
			active = n
		}
	}
	if active == nil {
		t.Fatal("no active node")
	}
	return active, standbys
}

// waitLeaderKnown waits until standby s names leader as the active node, so that it can
// forward requests.
func waitLeaderKnown(t *testing.T, s, leader *vaultProc) {
	t.Helper()
	waitFor(t, 30*time.Second, 50*time.Millisecond, s.addr+" to know the active node", func() (bool, error) {
		l, err := s.api.Sys().Leader()
		if err != nil {
			return false, err
		}
		return !l.IsSelf && l.LeaderAddress == leader.addr, fmt.Errorf("leader %q, is_self %v", l.LeaderAddress, l.IsSelf)
	})
}

// readTokenRetry reads a token, retrying for a few seconds while a node that just took
// over (or a standby that just learnt of it) cannot serve or forward the request yet. A
// retried read costs no request to Naver unless the cache is cold, which the callers check.
func readTokenRetry(t *testing.T, v *vaultProc, mount, role string) token {
	t.Helper()
	var tok token
	waitFor(t, 15*time.Second, 100*time.Millisecond, "a token read through "+v.addr, func() (bool, error) {
		var err error
		tok, err = v.readTokenErr(mount, role)
		return err == nil, err
	})
	return tok
}

// cliData is `vault read -format=json path` through v: the response's data.
func cliData(t *testing.T, v *vaultProc, path string) map[string]any {
	t.Helper()
	out := v.cli(t, "read", "-format=json", path)
	var resp struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(out), &resp); err != nil || resp.Data == nil {
		t.Fatalf("vault read %s through %s: %v: %s", path, v.addr, err, out)
	}
	return resp.Data
}

// TestRaftStandbyReads: in a 3-node Raft cluster, leased, lease-free and many-seller token
// reads through every node get one token per key, whichever node took the request, from one
// request to Naver per key, and no error: first all at once with a cold cache, then each node
// in turn. Vault's standbys forward every request to the active node. OpenBao's standbys
// serve requests themselves (disable_standby_reads defaults to false) but forward one whose
// handler answers ErrReadOnly, which the SDK does on a standby for every operation marked
// ForwardPerformanceStandby, as the engine's token reads and drops are; so on both servers
// the active node's engine serves them, with one cache and its leases. A drop on the active
// node (or through a standby) of a token Naver refused is honoured by every node: the next
// read through any node gets the same new token, from one request. A drop racing reads through the standbys ends
// the same way. After a failover, the node that just became active and the remaining
// standby serve the same tokens with no request to Naver.
func TestRaftStandbyReads(t *testing.T) {
	em := startEmulator(t, emulatorOpts{})
	active, standbys := startRaftCluster(t, em)
	nodes := append([]*vaultProc{active}, standbys...)
	active.write(t, "navercommerce/roles/leased", "type=SELLER", "account_id=ncp_ha_leased")
	active.write(t, "navercommerce/roles/leasefree", "type=SELLER", "account_id=ncp_ha_free", "lease=false")
	active.write(t, "navercommerce/roles/sellers", "type=SELLER", "allowed_account_ids=ncp_ha_s*")
	keys := []struct {
		role, account string
		leased        bool
	}{
		{"leased", "ncp_ha_leased", true},
		{"leasefree", "ncp_ha_free", false},
		{"sellers/ncp_ha_s1", "ncp_ha_s1", true},
		{"sellers/ncp_ha_s2", "ncp_ha_s2", true},
	}
	requests := func(account string) int { return em.stats(t).Keys[em.key("SELLER", account)].Requests }

	// Cold: every key through every node at once, three reads a node.
	type read struct {
		role string
		node *vaultProc
		tok  token
		err  error
	}
	out := make(chan read, len(keys)*len(nodes)*3)
	var wg sync.WaitGroup
	for _, k := range keys {
		for _, n := range nodes {
			for range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					tok, err := n.readTokenErr("navercommerce", k.role)
					out <- read{k.role, n, tok, err}
				}()
			}
		}
	}
	wg.Wait()
	close(out)
	served := map[string]string{} // role → the one token every node serves
	for r := range out {
		switch {
		case r.err != nil:
			t.Errorf("a cold read of %s through %s: %v", r.role, r.node.addr, r.err)
		case served[r.role] == "":
			served[r.role] = r.tok.AccessToken
		case served[r.role] != r.tok.AccessToken:
			t.Errorf("cold reads of %s got two tokens (one through %s)", r.role, r.node.addr)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// In turn: each node, each key, the same token; a leased read's lease is one the
	// active node keeps (so it is revoked and looked up as any other).
	for _, n := range nodes {
		for _, k := range keys {
			tok := n.readToken(t, "navercommerce", k.role)
			if tok.AccessToken != served[k.role] || tok.AccountID != k.account {
				t.Errorf("%s through %s: another token than the cluster's (account %s)", k.role, n.addr, tok.AccountID)
			}
			switch {
			case k.leased && (tok.LeaseID == "" || tok.LeaseDuration <= 0):
				t.Errorf("%s through %s: no lease (%q, %d s)", k.role, n.addr, tok.LeaseID, tok.LeaseDuration)
			case k.leased:
				if _, err := active.api.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": tok.LeaseID}); err != nil {
					t.Errorf("the lease of a read of %s through %s is unknown to the active node: %v", k.role, n.addr, err)
				}
			case tok.LeaseID != "" || tok.LeaseDuration != 0:
				t.Errorf("lease-free %s through %s: lease %q, %d s", k.role, n.addr, tok.LeaseID, tok.LeaseDuration)
			}
		}
	}
	for _, k := range keys {
		if n := requests(k.account); n != 1 {
			t.Errorf("Naver was asked %d times for %s, want 1 for the whole cluster", n, k.account)
		}
	}

	// A drop on the active node, once Naver refuses the token: every node serves the new one.
	// The last key's drop goes through a standby, which forwards it.
	for i, k := range keys {
		before, dropped := requests(k.account), served[k.role]
		em.killToken(t, dropped)
		if i == len(keys)-1 {
			dropToken(t, standbys[1], k.role)
		} else {
			dropToken(t, active, k.role)
		}
		// The standbys first: they must not serve what they may have seen before.
		for _, n := range append(standbys, active) {
			tok := n.readToken(t, "navercommerce", k.role)
			if tok.AccessToken == dropped {
				t.Errorf("after the drop of %s, %s served the dropped token", k.role, n.addr)
			}
			if n == standbys[0] {
				if !em.valid(t, tok.AccessToken) {
					t.Errorf("the token read after the drop of %s is not valid at Naver", k.role)
				}
				served[k.role] = tok.AccessToken
			} else if tok.AccessToken != served[k.role] {
				t.Errorf("after the drop of %s, %s served another token than %s", k.role, n.addr, standbys[0].addr)
			}
		}
		if n := requests(k.account) - before; n != 1 {
			t.Errorf("the drop of %s was followed by %d requests to Naver, want 1", k.role, n)
		}
	}

	// A drop on the active node racing reads through the standbys: each read gets the
	// dropped token or the one new token; afterwards every node serves the new one.
	race := keys[2]
	before := requests(race.account)
	dropped := served[race.role]
	em.killToken(t, dropped)
	seen := make(chan read, 2*len(standbys)*20)
	for _, n := range standbys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				tok, err := n.readTokenErr("navercommerce", race.role)
				seen <- read{race.role, n, tok, err}
			}
		}()
	}
	dropToken(t, active, race.role)
	wg.Wait()
	close(seen)
	after := active.readToken(t, "navercommerce", race.role)
	for r := range seen {
		if r.err != nil {
			t.Errorf("a read of %s through %s racing the drop: %v", race.role, r.node.addr, r.err)
		} else if r.tok.AccessToken != dropped && r.tok.AccessToken != after.AccessToken {
			t.Errorf("a read of %s through %s racing the drop got a third token", race.role, r.node.addr)
		}
	}
	for _, n := range standbys {
		if tok := n.readToken(t, "navercommerce", race.role); tok.AccessToken != after.AccessToken {
			t.Errorf("after the racing drop, %s serves another token than the active node", n.addr)
		}
	}
	if after.AccessToken == dropped || !em.valid(t, after.AccessToken) {
		t.Errorf("after the racing drop the cluster serves the dropped token or one Naver refuses")
	}
	if n := requests(race.account) - before; n != 1 {
		t.Errorf("the racing drop was followed by %d requests to Naver, want 1", n)
	}
	served[race.role] = after.AccessToken

	// Fail over: the node that just became active, and the remaining standby, serve the
	// same tokens and ask Naver nothing.
	beforeFailover := em.stats(t).TokenRequests
	active.stop(t)
	newActive, standby := waitFailover(t, standbys)
	for _, n := range []*vaultProc{newActive, standby} {
		for _, k := range keys {
			if tok := readTokenRetry(t, n, "navercommerce", k.role); tok.AccessToken != served[k.role] {
				t.Errorf("after the failover, %s through %s: another token than before", k.role, n.addr)
			}
		}
	}
	st := em.stats(t)
	if st.TokenRequests != beforeFailover {
		t.Errorf("after the failover Naver was asked %d times, want 0", st.TokenRequests-beforeFailover)
	}
	if len(st.Violations) > 0 {
		t.Errorf("the emulator saw violations of Naver's rules: %v", st.Violations)
	}
	for k, s := range st.Keys {
		if s.MaxInFlight > 1 {
			t.Errorf("key %s had %d requests in flight at once", k, s.MaxInFlight)
		}
	}
}

// dropToken drops role's cached token through v (DELETE token/<role>), which must answer that
// it dropped it: Naver refuses the token.
func dropToken(t *testing.T, v *vaultProc, role string) {
	t.Helper()
	s, err := v.api.Logical().Delete("navercommerce/token/" + role)
	if err != nil {
		t.Fatalf("dropping %s through %s: %v", role, v.addr, err)
	}
	if s != nil && len(s.Warnings) > 0 {
		t.Fatalf("dropping %s through %s did not drop it: %v", role, v.addr, s.Warnings)
	}
}

// killToken makes Naver refuse token from now on, as when the seller re-authorised the
// application; other tokens stay valid.
func (em *emulator) killToken(t *testing.T, token string) {
	t.Helper()
	var out struct {
		Killed bool `json:"killed"`
	}
	em.admin(t, http.MethodPost, "kill-token", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"token": {token}}.Encode()), &out)
	if !out.Killed {
		t.Fatal("the emulator did not know the token to kill")
	}
}
