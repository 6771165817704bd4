package navercommerce

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/vault/sdk/logical"
)

// typoNetwork carries requests to Naver, but those to the host of a mistyped base_url hang
// until released and then find nobody there.
type typoNetwork struct {
	host    string
	flying  atomic.Int32
	release chan struct{}
}

func (n *typoNetwork) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Hostname() != n.host {
		return http.DefaultTransport.RoundTrip(req)
	}
	n.flying.Add(1)
	defer n.flying.Add(-1)
	select {
	case <-n.release:
	case <-req.Context().Done():
		return nil, req.Context().Err()
	}
	return nil, errors.New("dial tcp: connect: connection refused")
}

// Issue 25, item 5, and the README: "A config write that changes the base URL (or proxy)
// forgets what the breaker learnt of the old address." Requests still at the old address
// when base_url is fixed end afterwards, with failures of the old address: those must not
// open the breaker of the new one, nor have reads refused with an error naming the old one.
func TestFixedBaseURLIsNotRefusedForTheOldAddressesLateFailures(t *testing.T) {
	env := newTestEnv(t)
	netw := &typoNetwork{host: "127.0.0.2", release: make(chan struct{})}
	env.transport = netw
	env.b = env.newBackend()
	env.configure()
	for i := range 3 {
		env.mustWrite(fmt.Sprintf("roles/s%d", i), map[string]any{"type": "SELLER", "account_id": fmt.Sprintf("ncp_%d", i)})
	}
	env.mustWrite("config", map[string]any{"base_url": "http://127.0.0.2:9", "client_secret": testSecret,
		"verify_connection": false, "max_retries": 0})

	// Apps read; their requests hang at the mistyped address, and the apps give up.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			env.b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: fmt.Sprintf("token/s%d", i), Storage: env.storage, MountPoint: testMount})
		}()
	}
	waitFor(t, func() bool { return netw.flying.Load() == 3 })
	cancel()
	wg.Wait()

	// The operator fixes base_url (verified at the right address); then the old requests end.
	env.mustWrite("config", map[string]any{"base_url": env.naver.URL, "client_secret": testSecret})
	close(netw.release)
	env.b.WaitIdle()

	for i := range 3 {
		resp, err := env.read(fmt.Sprintf("token/s%d", i))
		if text := errorText(resp, err); text != "" {
			t.Errorf("read of s%d after base_url was fixed: %s", i, text)
			if strings.Contains(text, "127.0.0.2") {
				t.Errorf("the error names the old address")
			}
		} else {
			env.tokens = append(env.tokens, resp.Data["access_token"].(string))
		}
	}
}
