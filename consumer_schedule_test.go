package navercommerce

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/sdk/logical"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// consumer reads token/<role> on the schedule its operator or agent documents, keeps the
// token it last got until its next successful read, and retries a failed read with back-off.
type consumer struct {
	name string
	role map[string]any // the role it reads through (type and account are added)
	// again is how long after a successful read the consumer reads again.
	again func(rng func() float64, resp *logical.Response) time.Duration

	held     string    // the token it holds now
	heldTill time.Time // when that token expires, as the read said
	next     time.Time // its next read
	failures int       // consecutive failed reads
}

// The schedules the README tells each consumer to use, each with what makes it re-read:
//
//   - VSO VaultDynamicSecret: the next sync is at renewalPercent (default 67) of the lease plus
//     0–10 % jitter (computeDynamicHorizonWithJitter in hashicorp/vault-secrets-operator
//     controllers/common.go, v1.4.1); with no lease, the same fraction of refreshAfter
//     (getRotationDuration, controllers/vaultdynamicsecret_controller.go).
//   - ESO: an ExternalSecret reads its generator again every refreshInterval; leases are ignored.
//   - Vault Agent (consul-template): a non-renewable lease is re-read at lease_renewal_threshold
//     (0.90) ± 5 % of it; a secret without a lease every static_secret_render_interval (5m).
//   - a script on a timer (cron, a lease-free client) every R.
//
// A consumer that ignores leases re-reads every R, so it needs a role whose
// min_remaining_ttl is at least R plus its retry time: the README's rule is R + 5m.
func consumerSchedules() []*consumer {
	fraction := func(lo, hi float64, of time.Duration) func(func() float64) time.Duration {
		return func(rng func() float64) time.Duration {
			return time.Duration((lo + (hi-lo)*rng()) * float64(of))
		}
	}
	leaseFraction := func(lo, hi float64) func(func() float64, *logical.Response) time.Duration {
		return func(rng func() float64, resp *logical.Response) time.Duration {
			return fraction(lo, hi, resp.Secret.TTL)(rng)
		}
	}
	every := func(r time.Duration) func(func() float64, *logical.Response) time.Duration {
		return func(func() float64, *logical.Response) time.Duration { return r }
	}
	return []*consumer{
		{name: "VSO VaultDynamicSecret, leased role, renewalPercent 67",
			role: map[string]any{}, again: leaseFraction(0.67, 0.77)},
		{name: "VSO VaultDynamicSecret, lease-free role, refreshAfter 15m",
			role: map[string]any{"lease": false, "min_remaining_ttl": "20m"},
			again: func(rng func() float64, _ *logical.Response) time.Duration {
				return fraction(0.67, 0.77, 15*time.Minute)(rng)
			}},
		{name: "ESO VaultDynamicSecret generator, refreshInterval 15m",
			role: map[string]any{"lease": false, "min_remaining_ttl": "20m"}, again: every(15 * time.Minute)},
		{name: "Vault Agent, leased role, lease_renewal_threshold 0.90",
			role: map[string]any{}, again: leaseFraction(0.85, 0.95)},
		{name: "Vault Agent, lease-free role, static_secret_render_interval 5m",
			role: map[string]any{"lease": false, "min_remaining_ttl": "10m"}, again: every(5 * time.Minute)},
		{name: "script every 24m",
			role: map[string]any{"lease": false, "min_remaining_ttl": "29m"}, again: every(24 * time.Minute)},
	}
}

// retryAfter is how long a consumer waits after its n-th failed read in a row: controllers
// and agents back off exponentially; 5 s doubling to at most 2 minutes stands for them.
func retryAfter(n int) time.Duration { return doubling(5*time.Second, n, 2*time.Minute) }

// Every consumer, reading on its documented schedule for days of fake time against one
// backend (all of them share one Naver token), never holds an expired token: not at any of
// its reads, not at any minute between them. Requests to Naver take up to 3 s and one in
// five fails, and half the renewals meet Naver down for 4 to 10 minutes (retries and
// back-off included); Vault's periodic function runs every minute.
func TestConsumersNeverHoldADeadToken(t *testing.T) {
	const days = 3
	for _, background := range []bool{true, false} {
		t.Run(fmt.Sprintf("background_refresh=%v", background), func(t *testing.T) {
			env := newTestEnv(t)
			var mu sync.Mutex
			rng := rand.New(rand.NewPCG(19, 2026))
			random := func() float64 { mu.Lock(); defer mu.Unlock(); return rng.Float64() }
			// Outages where they hurt most: half the renewals meet Naver answering nothing
			// but 500 for 4 to 10 minutes from the renewal's first request, just as the token
			// entered Naver's 30-minute window.
			var outageUntil time.Time
			var outageFor *cachedToken
			down := func(now time.Time) bool {
				mu.Lock()
				defer mu.Unlock()
				if cur := env.cachedToken("SELLER", testAccount); cur != nil && cur != outageFor && now.After(outageUntil) {
					outageFor = cur
					if rng.Float64() < 0.5 {
						outageUntil = now.Add(4*time.Minute + time.Duration(rng.Float64()*float64(6*time.Minute)))
					}
				}
				return now.Before(outageUntil)
			}
			net := &slowNetwork{clock: env.clock, after: 200 * time.Millisecond}
			net.before = func(int) time.Duration {
				if down(env.clock.Now()) || random() < 0.2 {
					env.naver.InjectFault(navercommercetest.Fault{Status: http.StatusInternalServerError})
				}
				return time.Duration(random() * float64(3*time.Second))
			}
			env.useTransport(net)
			env.mustWrite("config", map[string]any{"client_id": testClientID, "client_secret": testSecret, "base_url": env.naver.URL,
				"verify_connection": false, "background_refresh": background,
				// Retries wait in real time; without them every failure reaches the cache.
				"max_retries": 0})

			consumers := consumerSchedules()
			for i, c := range consumers {
				role := map[string]any{"type": "SELLER", "account_id": testAccount}
				for k, v := range c.role {
					role[k] = v
				}
				env.mustWrite(fmt.Sprintf("roles/c%d", i), role)
				// Consumers start a few minutes apart, as deployments do.
				c.next = env.clock.Now().Add(time.Duration(i) * 3 * time.Minute)
			}
			key := tokenKey{ClientID: testClientID, Type: "SELLER", AccountID: testAccount}
			waitForFlights := func() { waitForFlights(env.b, key) }
			checkHeld := func(when string) {
				t.Helper()
				now := env.clock.Now()
				for _, c := range consumers {
					if c.held == "" {
						continue
					}
					if !now.Before(c.heldTill) || !env.naver.TokenValid(c.held) {
						t.Fatalf("%s: at %s %s holds a token that expired at %s", when, now.Format(time.DateTime), c.name, c.heldTill.Format(time.DateTime))
					}
				}
			}

			end := env.clock.Now().Add(days * 24 * time.Hour)
			nextPeriodic := env.clock.Now()
			reads, failed := 0, 0
			for env.clock.Now().Before(end) {
				// Move to the next event: a consumer's read or the periodic run.
				next := nextPeriodic
				for _, c := range consumers {
					if c.next.Before(next) {
						next = c.next
					}
				}
				if d := next.Sub(env.clock.Now()); d > 0 {
					env.clock.Advance(d)
				}
				checkHeld("before the reads")
				if !env.clock.Now().Before(nextPeriodic) {
					env.periodic(t.Context())
					waitForFlights()
					nextPeriodic = nextPeriodic.Add(time.Minute)
				}
				for i, c := range consumers {
					if env.clock.Now().Before(c.next) {
						continue
					}
					reads++
					resp, err := env.read(fmt.Sprintf("token/c%d", i))
					waitForFlights()
					// The consumer held its old token until this read returned.
					checkHeld("during a read")
					if err != nil || resp.IsError() {
						failed++
						c.failures++
						c.next = env.clock.Now().Add(retryAfter(c.failures))
						continue
					}
					left := time.Duration(resp.Data["expires_in"].(int64)) * time.Second
					if minLife, ok := c.role["min_remaining_ttl"].(string); ok {
						if want, _ := time.ParseDuration(minLife); left < want {
							t.Fatalf("%s got a token with %s left, under its role's min_remaining_ttl %s", c.name, left, want)
						}
					}
					c.failures = 0
					c.held = resp.Data["access_token"].(string)
					c.heldTill, _ = time.Parse(time.RFC3339, resp.Data["expires_at"].(string))
					c.next = env.clock.Now().Add(c.again(random, resp))
				}
			}
			if reads < 1500 {
				t.Fatalf("only %d reads in %d days: the schedule did not run", reads, days)
			}
			if net.count.Load() < int32(days*10) {
				t.Fatalf("only %d requests to Naver in %d days: no renewal ran", net.count.Load(), days)
			}
			env.assertCompliant()
			t.Logf("%d reads (%d failed), %d requests to Naver over %d days", reads, failed, net.count.Load(), days)
		})
	}
}
