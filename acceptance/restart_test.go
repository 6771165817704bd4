//go:build acceptance

package acceptance

import (
	"reflect"
	"sort"
	"testing"
	"time"
)

// TestRestartKeepsState: a non-dev Vault with file storage is stopped and started again.
// Config and roles are intact, and the cached tokens are served from storage: no new
// request reaches Naver.
func TestRestartKeepsState(t *testing.T) {
	em := startEmulator(t, emulatorOpts{})
	v := startFileVault(t)
	v.registerPlugin(t)
	v.enable(t, "navercommerce")
	v.configure(t, "navercommerce", em, "request_timeout=20s")
	v.write(t, "navercommerce/roles/seller", "type=SELLER", "account_id=ncp_restart", "ttl=2h")
	v.write(t, "navercommerce/roles/self", "type=SELF")

	snapshot := func() (map[string]any, map[string]map[string]any, []string) {
		t.Helper()
		cfg, err := v.api.Logical().Read("navercommerce/config")
		if err != nil || cfg == nil {
			t.Fatalf("read config: %v %v", cfg, err)
		}
		roles := map[string]map[string]any{}
		var names []string
		list, err := v.api.Logical().List("navercommerce/roles")
		if err != nil || list == nil {
			t.Fatalf("list roles: %v %v", list, err)
		}
		for _, k := range list.Data["keys"].([]any) {
			name := k.(string)
			names = append(names, name)
			r, err := v.api.Logical().Read("navercommerce/roles/" + name)
			if err != nil || r == nil {
				t.Fatalf("read role %s: %v %v", name, r, err)
			}
			roles[name] = normalise(r.Data)
		}
		sort.Strings(names)
		return normalise(cfg.Data), roles, names
	}

	seller := v.readToken(t, "navercommerce", "seller")
	self := v.readToken(t, "navercommerce", "self")
	cfgBefore, rolesBefore, namesBefore := snapshot()
	before := em.stats(t)
	if before.TokenRequests != 2 {
		t.Fatalf("before the restart the emulator counted %d token requests, want 2 (config verification, seller)", before.TokenRequests)
	}

	v.stop(t)
	v.start(t)
	v.unseal(t)

	cfgAfter, rolesAfter, namesAfter := snapshot()
	if !reflect.DeepEqual(cfgAfter, cfgBefore) {
		t.Errorf("config after the restart = %v, before = %v", cfgAfter, cfgBefore)
	}
	if !reflect.DeepEqual(rolesAfter, rolesBefore) || !reflect.DeepEqual(namesAfter, namesBefore) {
		t.Errorf("roles after the restart = %v, before = %v", rolesAfter, rolesBefore)
	}

	seller2 := v.readToken(t, "navercommerce", "seller")
	self2 := v.readToken(t, "navercommerce", "self")
	if seller2.AccessToken != seller.AccessToken || self2.AccessToken != self.AccessToken {
		t.Errorf("after the restart the engine served other tokens than the cached ones")
	}
	if seller2.LeaseDuration > 2*3600 {
		t.Errorf("role ttl=2h: lease_duration after the restart = %d", seller2.LeaseDuration)
	}
	if after := em.stats(t); after.TokenRequests != before.TokenRequests {
		t.Errorf("after the restart the plugin asked Naver again: %d token requests, was %d", after.TokenRequests, before.TokenRequests)
	}
	if !em.valid(t, seller2.AccessToken) {
		t.Errorf("the token served after the restart is not valid at the emulator")
	}
	// Leases issued before the restart are still known to Vault.
	if _, err := v.api.Logical().Write("sys/leases/lookup", map[string]any{"lease_id": seller.LeaseID}); err != nil {
		t.Errorf("a lease issued before the restart is gone: %v", err)
	}
}

// TestRestartDoesNotServeExpiredToken: a token cached in storage that expired while Vault was
// down is never served; the first read after the restart gets a new one.
func TestRestartDoesNotServeExpiredToken(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{TokenLifetime: 20 * time.Second, ReuseThreshold: 10 * time.Second})
	v := startFileVault(t)
	v.registerPlugin(t)
	v.enable(t, "navercommerce")
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/x", "type=SELLER", "account_id=ncp_expired")

	fetched := time.Now()
	a := v.readToken(t, "navercommerce", "x")
	if a.LeaseDuration > 20 {
		t.Errorf("a 20-second token got a %d s lease", a.LeaseDuration)
	}
	v.stop(t)
	time.Sleep(time.Until(fetched.Add(21 * time.Second)))
	if em.valid(t, a.AccessToken) {
		t.Fatalf("token A should have expired at the emulator by now")
	}
	v.start(t)
	v.unseal(t)

	b := v.readToken(t, "navercommerce", "x")
	if b.AccessToken == a.AccessToken {
		t.Fatalf("after the restart the plugin served the cached token that had expired")
	}
	if !em.valid(t, b.AccessToken) || b.ExpiresIn > 20 || b.ExpiresIn < 15 {
		t.Errorf("the token after the restart: valid %v, expires_in %d", em.valid(t, b.AccessToken), b.ExpiresIn)
	}
}
