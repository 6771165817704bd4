package navercommerce

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// "The periodic function honours its deadline (and stops after 30 s when Vault gives
// none) ... so Vault's seal and step-down never wait on Naver". A token write under way when
// the periodic run starts (storage slow, or stalled) must not hold the run past its deadline:
// the run waited for every token write of the mount, without any bound.
func TestPeriodicHonoursItsDeadlineWhileATokenWriteStalls(t *testing.T) {
	env := newTestEnv(t)
	hs := &hookStorage{Storage: env.storage}
	env.storage = hs
	env.b = env.newBackend()
	env.configure()
	env.mustWrite("roles/store", map[string]any{"type": "SELLER", "account_id": testAccount})
	env.periodic(context.Background()) // the roles are read, storage swept once

	blocked, release := hs.arm("put", tokenStoragePrefix)
	env.readToken("store") // answered; its token's write stalls behind it
	<-blocked
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()

	ctx, cancel := context.WithTimeout(context.Background(), periodicMargin+time.Second)
	defer cancel()
	done := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(done)
		env.periodic(ctx)
	}()
	select {
	case <-done:
		if took := time.Since(start); took > periodicMargin+time.Second {
			t.Errorf("the periodic function took %s with a deadline %s away", took, periodicMargin+time.Second)
		}
	case <-time.After(periodicMargin + 3*time.Second):
		t.Errorf("the periodic function still runs %s after it was called with a deadline %s away, waiting for a token write", periodicMargin+3*time.Second, periodicMargin+time.Second)
		free()
		<-done
	}
}

// "renewing at most 4 keys at once": a periodic run that returns at its deadline leaves its
// renewals waiting for Naver; the next run must count them, not start four more beside them.
func TestPeriodicRunsRenewAtMostFourKeysAtOnce(t *testing.T) {
	env := newTestEnv(t)
	net := &slowNetwork{clock: env.clock}
	env.useTransport(net)
	env.configure()
	const keys = 12
	for i := range keys {
		name := fmt.Sprintf("r%d", i)
		env.mustWrite("roles/"+name, map[string]any{"type": "SELLER", "account_id": "ncp_" + name})
		env.readToken(name)
	}
	env.clock.Advance(2*time.Hour + 35*time.Minute)
	net.release = make(chan struct{}) // Naver does not answer
	defer close(net.release)

	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), periodicMargin+500*time.Millisecond)
		env.periodic(ctx)
		cancel()
		env.clock.Advance(time.Minute)
	}
	if m := net.maxFly.Load(); m > renewConcurrency {
		t.Errorf("%d renewals in flight at once after three periodic runs, want at most %d", m, renewConcurrency)
	}
	env.b.Clean(context.Background())
	waitFor(t, func() bool { return net.flying.Load() == 0 })
}
