package navercommerce

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/vault/sdk/logical"
)

// Options configure a backend made by New, for programs that run the real backend in
// process (the simulator in internal/sim). Zero values mean production behaviour.
type Options struct {
	// Now is the clock tokens are reckoned by; nil: time.Now.
	Now func() time.Time
	// Transport carries the requests to Naver; nil: the real network.
	Transport http.RoundTripper
	// RetryWait, when set, is handed every wait between retries of a token request instead
	// of the client sleeping it: a simulation moves its clock by it.
	RetryWait func(time.Duration)
	// SignatureDigest, when set, replaces bcrypt in client_secret_sign, for a simulation
	// whose request count makes bcrypt most of its cost; the emulator must be given the same
	// function. Real Naver accepts only bcrypt: never set it against a real gateway.
	SignatureDigest SignatureDigest
	// StoreNewTokensAtOnce writes a token reads waited for as soon as they are answered,
	// without holding it for the reads' lease writes (leaseFirstDelay): for a simulation,
	// whose storage is memory and whose steps would each wait the hold out in real time.
	StoreNewTokensAtOnce bool
}

// SignedTimestampSkew is how far before the backend's clock the timestamp it signs is
// (Naver refuses timestamps from its future): a driver that bounds when a request can have
// been made by its signed timestamp needs it.
const SignedTimestampSkew = signingSkew

// Backend is one mount of the secrets engine, made by New.
type Backend interface {
	logical.Backend
	// WaitIdle returns once no renewal started behind a read is running and every token
	// a read answered with is in storage (or failed to be stored), so that a caller driving
	// the backend step by step sees the effect of one step before the next.
	WaitIdle()
}

// New creates and sets up a mount of the secrets engine with opts; Factory is New with
// the zero Options.
func New(ctx context.Context, conf *logical.BackendConfig, opts Options) (Backend, error) {
	b := newBackend(backendOptions{now: opts.Now, transport: opts.Transport, retryWait: opts.RetryWait, digest: opts.SignatureDigest, storeAtOnce: opts.StoreNewTokensAtOnce})
	if err := b.Setup(ctx, conf); err != nil {
		return nil, err
	}
	return b, nil
}

// WaitIdle implements Backend.
func (b *backend) WaitIdle() {
	// Everything the core asked for: each may lead to more (a load to a request, a request
	// to a store), all counted until done.
	b.tokens.work.wait()
}

// flightTracker counts work running behind reads (requests, loads, stores), so WaitIdle and
// an unmount can wait for it.
type flightTracker struct {
	mu      sync.Mutex
	running int
	idle    *sync.Cond
}

// goTracked runs f in a goroutine, counted until it returns.
func (t *flightTracker) goTracked(f func()) {
	t.add()
	go func() {
		defer t.done()
		f()
	}()
}

func (t *flightTracker) add() {
	t.mu.Lock()
	t.running++
	t.mu.Unlock()
}

func (t *flightTracker) done() {
	t.mu.Lock()
	t.running--
	if t.running == 0 && t.idle != nil {
		t.idle.Broadcast()
	}
	t.mu.Unlock()
}

func (t *flightTracker) wait() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.idle == nil {
		t.idle = sync.NewCond(&t.mu)
	}
	for t.running > 0 {
		t.idle.Wait()
	}
}

// waitUntil is wait, giving up at deadline (a write that stalls must not hold what waits).
func (t *flightTracker) waitUntil(deadline time.Time) {
	t.mu.Lock()
	running := t.running
	t.mu.Unlock()
	if running == 0 {
		return // nearly always: no goroutine, no timer
	}
	done := make(chan struct{})
	go func() {
		t.wait()
		close(done)
	}()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	}
}
