//go:build acceptance

package acceptance

import (
	"sync"
	"testing"
	"time"
)

// TestSingleFlightThroughVault: 50 concurrent reads of a cold role reach Naver as one
// request, and all 50 callers get its token. The emulator holds the request for a second,
// so every read arrives while it is in flight.
func TestSingleFlightThroughVault(t *testing.T) {
	em := startEmulator(t, emulatorOpts{})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em)
	v.write(t, "navercommerce/roles/x", "type=SELLER", "account_id=ncp_flight")
	v.write(t, "navercommerce/roles/y", "type=SELLER", "account_id=ncp_flight") // same account: same token
	em.fault(t, map[string]any{"delay": "1s"})

	const n = 50
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		tokens = make([]string, n)
		errs   = make([]error, n)
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			role := "x"
			if i%2 == 1 {
				role = "y"
			}
			tok, err := v.readTokenErr("navercommerce", role)
			tokens[i], errs[i] = tok.AccessToken, err
		}()
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if tokens[i] != tokens[0] {
			t.Fatalf("read %d got another token than read 0", i)
		}
	}
	st := em.stats(t)
	k := st.Keys[em.key("SELLER", "ncp_flight")]
	if k.Requests != 1 || k.MaxInFlight != 1 {
		t.Errorf("%d concurrent reads: the emulator counted %d requests (max %d in flight) for the key; want 1 and 1", n, k.Requests, k.MaxInFlight)
	}
	if len(st.Violations) > 0 {
		t.Errorf("the emulator recorded violations: %v", st.Violations)
	}
	if !em.valid(t, tokens[0]) {
		t.Errorf("the shared token is not valid at the emulator")
	}
}

// TestThirtyMinuteRule: tokens that live just over 30 minutes. The first read fetches
// token A; reads while A has 30+ minutes left are served from the cache; once A has less,
// a read (at least minRefetchInterval = 10 s after the last request for the key) leads to a
// new token B, and A stays valid until its own expiry. With background_refresh=false that
// read itself returns B; with the default it may return A at once and start the renewal,
// so B comes with a read moments later.
func TestThirtyMinuteRule(t *testing.T) {
	t.Parallel()
	v := startDevVault(t)
	v.registerPlugin(t)
	for _, mode := range []string{"true", "false"} {
		t.Run("background_refresh="+mode, func(t *testing.T) {
			t.Parallel()
			em := startEmulator(t, emulatorOpts{TokenLifetime: 1805 * time.Second})
			mount := "navercommerce-bg-" + mode
			v.enable(t, mount)
			// renewal_spread=0: this test is about the window's start.
			v.configure(t, mount, em, "background_refresh="+mode, "renewal_spread=0")
			v.write(t, mount+"/roles/x", "type=SELLER", "account_id=ncp_thirty")
			key := em.key("SELLER", "ncp_thirty")

			asked := time.Now()
			a := v.readToken(t, mount, "x")
			if a.ExpiresIn > 1805 || a.ExpiresIn < 1800 {
				t.Fatalf("token A has expires_in %d, want just under 1805", a.ExpiresIn)
			}
			if again := v.readToken(t, mount, "x"); again.AccessToken != a.AccessToken {
				t.Fatalf("a read right after the first returned another token")
			}
			if n := em.stats(t).Keys[key].Requests; n != 1 {
				t.Fatalf("two reads of a token with 30+ minutes left made %d requests, want 1", n)
			}

			// A has less than 30 minutes left after 5 s; 10 s have passed since it was asked for.
			time.Sleep(time.Until(asked.Add(11 * time.Second)))
			b := v.readToken(t, mount, "x")
			if b.AccessToken == a.AccessToken {
				if mode == "false" {
					t.Fatalf("a read with %d s left on token A did not get a new token", a.ExpiresIn-11)
				}
				t.Logf("the read 11 s after A was fetched was served A (renewal ahead of reads); waiting for B")
				waitFor(t, 5*time.Second, 100*time.Millisecond, "a read to return a new token", func() (bool, error) {
					b = v.readToken(t, mount, "x")
					return b.AccessToken != a.AccessToken, nil
				})
			}
			if b.ExpiresIn < 1795 {
				t.Errorf("token B has expires_in %d, want a fresh 1805 s token", b.ExpiresIn)
			}
			st := em.stats(t)
			if st.Keys[key].Requests != 2 || st.IssuedTokens < 2 {
				t.Errorf("the emulator counted %d requests and %d issued tokens, want 2 requests and a new token", st.Keys[key].Requests, st.IssuedTokens)
			}
			if !em.valid(t, a.AccessToken) || !em.valid(t, b.AccessToken) {
				t.Errorf("both tokens must be valid at once: A %v, B %v", em.valid(t, a.AccessToken), em.valid(t, b.AccessToken))
			}
			// B is now the cached token for every read.
			if c := v.readToken(t, mount, "x"); c.AccessToken != b.AccessToken {
				t.Errorf("the read after B returned another token")
			}
			if len(st.Violations) > 0 {
				t.Errorf("the emulator recorded violations (a needless request would show here): %v", st.Violations)
			}
		})
	}
}

// TestBackgroundRefresh: with background_refresh on (the default), Vault's periodic call
// (about once a minute) renews a token that is in use once it enters the 30-minute window,
// so the next read is served the new token without waiting for Naver. A token nobody read
// (the one the config write fetched to verify the credentials) is left alone.
func TestBackgroundRefresh(t *testing.T) {
	t.Parallel()
	em := startEmulator(t, emulatorOpts{TokenLifetime: 1805 * time.Second})
	v := startDevVaultWithEngine(t)
	v.configure(t, "navercommerce", em, "renewal_spread=0") // renewed when the window opens
	v.write(t, "navercommerce/roles/x", "type=SELLER", "account_id=ncp_background")
	key := em.key("SELLER", "ncp_background")

	a := v.readToken(t, "navercommerce", "x")
	start := time.Now()
	waitFor(t, 100*time.Second, time.Second, "the periodic function to renew the token in use", func() (bool, error) {
		return em.stats(t).Keys[key].Requests >= 2, nil
	})
	t.Logf("renewed in the background %s after the first read", time.Since(start).Round(time.Second))

	b := v.readToken(t, "navercommerce", "x")
	st := em.stats(t)
	switch {
	case b.AccessToken == a.AccessToken:
		t.Errorf("after the background renewal a read still got the old token")
	case !em.valid(t, b.AccessToken) || !em.valid(t, a.AccessToken):
		t.Errorf("both tokens must be valid: A %v, B %v", em.valid(t, a.AccessToken), em.valid(t, b.AccessToken))
	case st.Keys[key].Requests != 2:
		t.Errorf("the emulator counted %d requests for the key, want 2 (first read, background renewal)", st.Keys[key].Requests)
	case st.Keys[em.key("SELF", "")].Requests != 1:
		t.Errorf("the SELF token nobody read was renewed: %d requests", st.Keys[em.key("SELF", "")].Requests)
	}
	if len(st.Violations) > 0 {
		t.Errorf("the emulator recorded violations: %v", st.Violations)
	}
}
