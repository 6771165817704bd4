//go:build acceptance

package acceptance

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
)

// vaultProxy stands between a client (a recipe, an app) and a real Vault, and fails requests
// on command, before they reach Vault: a Vault that is down (its connections cut) or that
// answers 5xx (sealed, or a load balancer with no healthy node behind it). Requests it lets
// through reach the real server unchanged.
type vaultProxy struct {
	URL string

	mu       sync.Mutex
	plan     []proxyAction // one per request, in order; then rest
	rest     proxyAction
	requests int
}

// proxyAction is what the proxy does with one request: forward it (the zero value), answer
// with status, or cut the connection without an answer.
type proxyAction struct {
	status int
	cut    bool
}

var (
	forward = proxyAction{}
	cut     = proxyAction{cut: true}
)

func answer(status int) proxyAction { return proxyAction{status: status} }

// startVaultProxy starts a proxy to v that forwards everything until told otherwise.
func startVaultProxy(t *testing.T, v *vaultProc) *vaultProxy {
	t.Helper()
	target, err := url.Parse(v.addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &vaultProxy{}
	rp := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch a := p.next(); {
		case a.cut:
			conn, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				conn.Close()
			}
		case a.status != 0:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(a.status)
			_, _ = w.Write([]byte(`{"errors":["the test's proxy answered ` + http.StatusText(a.status) + `"]}`))
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

// then makes the next requests get the actions of plan, one each, and every request after
// them rest; it resets the count of requests.
func (p *vaultProxy) then(rest proxyAction, plan ...proxyAction) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.plan, p.rest, p.requests = plan, rest, 0
}

func (p *vaultProxy) next() proxyAction {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	if len(p.plan) > 0 {
		a := p.plan[0]
		p.plan = p.plan[1:]
		return a
	}
	return p.rest
}

// count is the number of requests that reached the proxy since the last then.
func (p *vaultProxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// forwardFirst is a plan that lets n requests through.
func forwardFirst(n int) []proxyAction { return make([]proxyAction, n) }
