package navercommerce

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/navercommerce/vault-plugin-secrets-navercommerce/navercommercetest"
)

// clockMovingTransport records, for every token request, when the budgets say they counted
// it and the clock as it reaches the transport, then moves the clock on before passing it to
// the network, as a concurrent action of a simulation may.
type clockMovingTransport struct {
	clock *fakeClock
	move  time.Duration

	mu       sync.Mutex
	counted  []time.Time // zero: not counted by a budget
	atTheWay []time.Time
}

func (c *clockMovingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if isTokenRequest(req) {
		at, _ := AttemptCountedAt(req)
		c.mu.Lock()
		c.counted = append(c.counted, at)
		c.atTheWay = append(c.atTheWay, c.clock.Now())
		c.mu.Unlock()
		c.clock.Advance(c.move)
	}
	return http.DefaultTransport.RoundTrip(req)
}

func isTokenRequest(req *http.Request) bool { return req.URL.Path == "/external"+tokenPath }

// AttemptCountedAt tells a simulation when the budgets counted each attempt (a config
// write's verification and retries included): the instant the attempt left, whatever the
// clock does after.
func TestAttemptCountedAtIsWhenTheBudgetsCountedTheAttempt(t *testing.T) {
	env := newTestEnv(t)
	net := &clockMovingTransport{clock: env.clock, move: 3 * time.Second}
	env.transport = net
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.naver.InjectFault(navercommercetest.Fault{Status: 503, Count: 1})
	env.readToken("store")

	net.mu.Lock()
	defer net.mu.Unlock()
	if len(net.counted) != 3 {
		t.Fatalf("%d token requests, want the verification, an attempt and its retry", len(net.counted))
	}
	for i := range 3 {
		if !net.counted[i].Equal(net.atTheWay[i]) {
			t.Errorf("attempt %d: counted at %s, reached the transport at %s", i, net.counted[i], net.atTheWay[i])
		}
	}
	if net.counted[2].Before(net.counted[1].Add(net.move)) {
		t.Errorf("the retry was counted at %s, not after the first attempt (%s) and the clock's move", net.counted[2], net.counted[1])
	}
}
